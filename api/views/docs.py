"""The API's documentation page: Swagger UI, from the files django-ninja ships (served from here, no CDN), reading
the schema at /api/v1/openapi.json."""

import json

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET


@require_GET
def api_docs(request):
    """Under the site's own strict policy, with nothing loosened: Swagger UI's settings travel in a JSON data block
    (data, not script) read by django-ninja's swagger-ui-init.js, and the styles it sets from script go through the
    DOM, which `style-src 'self'` allows (a real browser shows no violation: tests/api/test_docs_page.py)."""
    swagger = {"url": reverse("api-v1:openapi-json"), "layout": "BaseLayout", "deepLinking": True}
    return render(request, "api/docs.html", {"swagger_settings": json.dumps(swagger)})
