from django.conf import settings

from browser import auth


def dashboard(request):
    role = auth.role_of(request.user) if hasattr(request, "user") else None
    return {
        "registry_host": settings.REGISTRY_PUBLIC_HOST,
        "user_role": role,
        "is_admin": role == auth.ADMIN,
        "is_maintainer": role in (auth.MAINTAINER, auth.ADMIN),  # may delete tags and read the audit log
    }
