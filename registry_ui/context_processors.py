from django.conf import settings

from accounts import roles


def dashboard(request):
    role = roles.role_of(request.user) if hasattr(request, "user") else None
    return {
        "registry_host": settings.REGISTRY_PUBLIC_HOST,
        "user_role": role,
        "is_admin": role == roles.ADMIN,
        "is_maintainer": role in (roles.MAINTAINER, roles.ADMIN),  # may delete tags and read the audit log
    }
