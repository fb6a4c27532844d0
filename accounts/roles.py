"""Roles live in the dashboard, as Django groups, because every htpasswd user may push and delete in the registry
itself: viewer (browse), maintainer (also delete tags and images, read the audit log), admin (also delete
repositories, manage retention, garbage collection and roles)."""

from __future__ import annotations

import functools

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.utils.translation import pgettext_lazy

VIEWER, MAINTAINER, ADMIN = "viewer", "maintainer", "admin"
ROLES = [VIEWER, MAINTAINER, ADMIN]  # each role may do what the ones before it may
ROLE_LABELS = {
    VIEWER: pgettext_lazy("user role", "Viewer"),
    MAINTAINER: pgettext_lazy("user role", "Maintainer"),
    ADMIN: pgettext_lazy("user role", "Admin"),
}


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
