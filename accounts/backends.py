"""Who may sign in: the registry's own htpasswd users.

A password is checked with bcrypt against the registry's htpasswd file when REGISTRY_HTPASSWD_PATH is set
(the file is read again whenever it changes), otherwise by asking the registry itself. The password is
never stored: Django keeps the user with an unusable password and its role (accounts/roles.py).
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import User

from accounts import roles
from registry import htpasswd
from registry.client import RegistryError, get_client

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,150}$")


def check_password(username: str, password: str) -> bool:
    """Whether the registry would accept this user name and password."""
    if settings.REGISTRY_HTPASSWD_PATH:
        return htpasswd.check(settings.REGISTRY_HTPASSWD_PATH, username, password)
    try:
        return get_client().check_credentials(username, password)
    except RegistryError as exc:
        logger.warning("Cannot check a password with the registry: %s", exc.message)
        return False


def entry_password(username: str) -> str | None:
    """What the Django user's (unusable) password is while the htpasswd entry stays as it is: "!" and a keyed
    digest of the entry. Django signs sessions with the password field, so a changed password in the file ends
    the user's sessions. "" when the file no longer lists the user; None when there is no file to ask."""
    if not settings.REGISTRY_HTPASSWD_PATH:
        return None
    found = htpasswd.fingerprint(settings.REGISTRY_HTPASSWD_PATH, username)
    return f"{UNUSABLE_PASSWORD_PREFIX}{found}" if found else ""


class RegistryUserBackend(BaseBackend):
    """Logs in the registry's users. Users it created have no usable Django password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password or not USERNAME_RE.match(username):
            return None
        if not check_password(username, password):
            return None
        user, created = User.objects.get_or_create(username=username)
        password = entry_password(username)
        if created or (password and user.password != password and not user.has_usable_password()):
            if password:
                user.password = password
            else:
                user.set_unusable_password()
            user.save(update_fields=["password"])
        if username in settings.DASHBOARD_ADMINS:
            roles.set_role(user, roles.ADMIN)
        elif created or roles.role_of(user) is None:
            roles.set_role(user, roles.VIEWER)
        return user if user.is_active else None

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is None or user.has_usable_password():  # a local Django user (createsuperuser)
            return user
        password = entry_password(user.username)
        if password == "":  # removed from the registry's htpasswd: the dashboard's sessions end too
            return None
        if password is not None and user.password != password:
            user.password = password  # its password changed: the session's signature no longer matches
        return user
