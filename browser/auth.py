"""Who may use the dashboard: the registry's own htpasswd users, with roles kept in Django groups.

A password is checked with bcrypt against the registry's htpasswd file when REGISTRY_HTPASSWD_PATH is set
(the file is read again whenever it changes), otherwise by asking the registry itself. The password is
never stored: Django keeps the user with an unusable password and its role.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading

import bcrypt
from django.conf import settings
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import pgettext_lazy

from browser.registry import RegistryError, get_client

logger = logging.getLogger(__name__)

VIEWER, MAINTAINER, ADMIN = "viewer", "maintainer", "admin"
ROLES = [VIEWER, MAINTAINER, ADMIN]  # each role may do what the ones before it may
ROLE_LABELS = {
    VIEWER: pgettext_lazy("user role", "Viewer"),
    MAINTAINER: pgettext_lazy("user role", "Maintainer"),
    ADMIN: pgettext_lazy("user role", "Admin"),
}
USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,150}$")


# --- htpasswd -------------------------------------------------------------------------------


class Htpasswd:
    """The registry's htpasswd file, parsed again only when its size or modification time changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._entries: dict[str, bytes] = {}

    def entries(self, path: str) -> dict[str, bytes]:
        try:
            stat = os.stat(path)
        except OSError:
            logger.error("REGISTRY_HTPASSWD_PATH %s cannot be read", path)
            return {}
        key = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key != self._key:
                with open(path, encoding="utf-8", errors="replace") as file:
                    self._entries = parse_htpasswd(file.read())
                self._key = key
            return self._entries


def parse_htpasswd(text: str) -> dict[str, bytes]:
    """user -> bcrypt hash. Other hash kinds are left out: the registry accepts only bcrypt."""
    entries = {}
    for line in text.splitlines():
        user, _, hashed = line.strip().partition(":")
        if user and hashed.startswith(("$2y$", "$2b$", "$2a$")):
            entries[user] = hashed.encode()
    return entries


htpasswd = Htpasswd()


def check_htpasswd(path: str, username: str, password: str) -> bool:
    hashed = htpasswd.entries(path).get(username)
    if hashed is None:
        return False
    try:
        # The registry's bcrypt looks at the first 72 bytes only; so does this check, to agree with it.
        return bcrypt.checkpw(password.encode()[:72], hashed)
    except ValueError:  # a damaged hash
        return False


def check_password(username: str, password: str) -> bool:
    """Whether the registry would accept this user name and password."""
    if settings.REGISTRY_HTPASSWD_PATH:
        return check_htpasswd(settings.REGISTRY_HTPASSWD_PATH, username, password)
    try:
        return get_client().check_credentials(username, password)
    except RegistryError as exc:
        logger.warning("Cannot check a password with the registry: %s", exc.message)
        return False


def is_registry_user(username: str) -> bool | None:
    """Whether the htpasswd file still lists the user; None when there is no file to ask."""
    if not settings.REGISTRY_HTPASSWD_PATH:
        return None
    return username in htpasswd.entries(settings.REGISTRY_HTPASSWD_PATH)


class RegistryUserBackend(BaseBackend):
    """Logs in the registry's users. Users it created have no usable Django password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password or not USERNAME_RE.match(username):
            return None
        if not check_password(username, password):
            return None
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        if username in settings.DASHBOARD_ADMINS:
            set_role(user, ADMIN)
        elif created or role_of(user) is None:
            set_role(user, VIEWER)
        return user if user.is_active else None

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id, is_active=True).first()
        # Someone removed from the registry's htpasswd loses the dashboard too, sessions included.
        if user and not user.has_usable_password() and is_registry_user(user.username) is False:
            return None
        return user


# --- Roles ----------------------------------------------------------------------------------


def role_of(user) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = {group.name for group in user.groups.all()}
    return next((role for role in reversed(ROLES) if role in names), None)


def has_role(user, role: str) -> bool:
    current = role_of(user)
    return current is not None and ROLES.index(current) >= ROLES.index(role)


def set_role(user, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get_or_create(name=role)[0])


def role_required(role: str):
    """View decorator: 403 unless the user has at least `role`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --- Throttling failed logins ---------------------------------------------------------------


def client_address(request: HttpRequest) -> str:
    if settings.TRUST_PROXY_HEADERS and (forwarded := request.headers.get("X-Forwarded-For")):
        return forwarded.split(",")[-1].strip()  # the address the proxy itself saw
    return request.META.get("REMOTE_ADDR", "")


def _throttle_keys(request: HttpRequest, username: str) -> list[tuple[str, int]]:
    return [
        (f"login-failures:user:{username.lower()}", settings.LOGIN_FAILURES_PER_USER),
        (f"login-failures:address:{client_address(request)}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def login_blocked(request: HttpRequest, username: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _throttle_keys(request, username))


def record_failed_login(request: HttpRequest, username: str) -> None:
    for key, _limit in _throttle_keys(request, username):
        cache.add(key, 0, settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_LOCKOUT_SECONDS)
    logger.warning("Failed login for %r from %s", username[:150], client_address(request))


def clear_failed_logins(request: HttpRequest, username: str) -> None:
    cache.delete(f"login-failures:user:{username.lower()}")
