"""Registry failures become a page that says what went wrong and what to change, never a traceback."""

import logging

from django.shortcuts import render
from django.utils.translation import gettext as _

from browser.registry import (
    NotFound,
    RegistryError,
    RegistryTimeout,
    RegistryUnauthorized,
    RegistryUnreachable,
    UnsupportedManifest,
)

logger = logging.getLogger(__name__)


def explain(error: RegistryError) -> tuple[str, str]:
    """A title and a hint naming the setting to fix, for a registry error."""
    if isinstance(error, RegistryUnreachable) and error.code == "TLS":
        return _("The registry's TLS certificate was not accepted"), _(
            "Give the registry's CA with REGISTRY_CA_BUNDLE, or set REGISTRY_VERIFY_TLS=false for a test set-up."
        )
    if isinstance(error, RegistryUnreachable):
        return _("The registry cannot be reached"), _(
            "Check that the registry is running and that REGISTRY_URL points at it."
        )
    if isinstance(error, RegistryTimeout):
        return _("The registry is too slow to answer"), _(
            "The registry may be overloaded. REGISTRY_READ_TIMEOUT sets how long the dashboard waits."
        )
    if isinstance(error, RegistryUnauthorized):
        return _("The registry rejected the dashboard's account"), _(
            "Set REGISTRY_USERNAME and REGISTRY_PASSWORD (or REGISTRY_PASSWORD_FILE) to a user of the "
            "registry's htpasswd file, with read access to every repository."
        )
    if isinstance(error, UnsupportedManifest):
        return _("This image cannot be shown"), ""
    return _("The registry sent an answer the dashboard cannot read"), _(
        "Check that REGISTRY_URL points at a Docker registry (API v2) and not at another service."
    )


class RegistryErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotFound):
            return render(request, "404.html", {"message": exception.message}, status=404)
        if not isinstance(exception, RegistryError):
            return None
        logger.warning("Registry error on %s: %s", request.path, exception.message)
        title, hint = explain(exception)
        context = {
            "error_title": title,
            "error_message": exception.message,
            "hint": hint,
            "status_code": exception.status,
        }
        return render(request, "browser/registry_error.html", context, status=exception.status)
