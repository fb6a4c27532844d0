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


def is_registry_user(username: str) -> bool | None:
    """Whether the htpasswd file still lists the user; None when there is no file to ask."""
    if not settings.REGISTRY_HTPASSWD_PATH:
        return None
    return username in htpasswd.users(settings.REGISTRY_HTPASSWD_PATH)


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
            roles.set_role(user, roles.ADMIN)
        elif created or roles.role_of(user) is None:
            roles.set_role(user, roles.VIEWER)
        return user if user.is_active else None

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id, is_active=True).first()
        # Someone removed from the registry's htpasswd loses the dashboard too, sessions included.
        if user and not user.has_usable_password() and is_registry_user(user.username) is False:
            return None
        return user
