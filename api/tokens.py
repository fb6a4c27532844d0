"""Making personal API tokens and telling whose a presented token is.

A token is "rui_" and 32 random bytes (URL-safe base64). It stops working when revoked, when expired, when its
user is made inactive, and when the registry's htpasswd file no longer lists its user (as the user's sessions do:
accounts/backends.py). Its role is read at each request, so a changed role applies at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from accounts.backends import entry_password
from api.models import ApiToken

TOKEN_START = "rui_"  # lets secret scanners and people recognise a token of this dashboard
PREFIX_LENGTH = len(TOKEN_START) + 8
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often: no write per request
MAX_EXPIRY_DAYS = 3650


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user, name: str, expires_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for the user, and the token itself: the only time it exists outside the request that uses it."""
    raw = TOKEN_START + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:PREFIX_LENGTH], token_hash=digest(raw), expires_at=expires_at
    )
    return token, raw


def authenticate(raw: str) -> ApiToken | None:
    """The usable token `raw` is, with its user, or None."""
    if not raw.startswith(TOKEN_START) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(token_hash=digest(raw)).first()
    if token is None or not token.usable or not token.user.is_active or removed_from_htpasswd(token.user):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def removed_from_htpasswd(user) -> bool:
    """Whether a registry user's htpasswd entry is gone (local Django users, e.g. createsuperuser's, have none)."""
    return not user.has_usable_password() and entry_password(user.username) == ""
