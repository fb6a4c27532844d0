"""Registry failures become a page that says what went wrong and what to change, never a traceback."""

import logging

from django.shortcuts import render

from registry.client import NotFound, RegistryError
from registry.explain import explain

logger = logging.getLogger(__name__)


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
        return render(request, "registry_error.html", context, status=exception.status)
