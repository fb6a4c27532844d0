from django.conf import settings

from accounts import roles, theme
from registry import reachability


def dashboard(request):
    role = roles.role_of(request.user) if hasattr(request, "user") else None
    signed_in = hasattr(request, "user") and request.user.is_authenticated
    return {
        "registry_host": settings.REGISTRY_PUBLIC_HOST,
        "registry_down_since": reachability.down_since() if signed_in else None,
        "user_role": role,
        "is_admin": role == roles.ADMIN,
        "is_maintainer": role in (roles.MAINTAINER, roles.ADMIN),  # may delete tags and read the audit log
        "theme": theme.theme_of(request),
        "theme_choices": theme.CHOICES,
    }
