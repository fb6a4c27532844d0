"""The API's documentation page: Swagger UI, from the files django-ninja ships (served from here, no CDN), reading
the schema at /api/v1/openapi.json."""

import json

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

# Swagger UI runs with the site's policy except where it must not: it draws its icons as inline SVG with `style`
# attributes and sets element styles from script (React), which `style-src 'self'` refuses, so this one page allows
# inline style attributes ('unsafe-inline' for style attributes only, not for <style> or script). Scripts stay
# 'self' only: its settings travel in a JSON data block, which is not run.
DOCS_CSP = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
}


@require_GET
@csp_override(DOCS_CSP)
def api_docs(request):
    swagger = {"url": reverse("api-v1:openapi-json"), "layout": "BaseLayout", "deepLinking": True}
    return render(request, "api/docs.html", {"swagger_settings": json.dumps(swagger)})
