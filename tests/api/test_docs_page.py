"""The API's documentation page is served from the dashboard (Swagger UI's files come with django-ninja: no CDN)
under a CSP that stays strict for scripts, and the menu links it."""

import pytest
from django.contrib.staticfiles import finders

from accounts import roles

pytestmark = pytest.mark.django_db


def test_the_documentation_page_loads_swagger_ui_from_the_dashboard_under_a_strict_script_policy(client_for):
    answer = client_for(roles.VIEWER).get("/api/v1/docs/")
    assert answer.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in answer.text and "/api/v1/openapi.json" in answer.text
    assert "cdn" not in answer.text.lower()
    policy = dict(part.strip().split(" ", 1) for part in answer["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["style-src-attr"] == "'unsafe-inline'"  # Swagger UI's style attributes, this page only
    assert finders.find("ninja/swagger-ui-bundle.js") and finders.find("ninja/swagger-ui.css")


def test_the_rest_of_the_site_keeps_its_strict_policy(client_for):
    policy = client_for(roles.VIEWER).get("/api-tokens/")["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy


def test_the_documentation_page_is_for_signed_in_users(client):
    answer = client.get("/api/v1/docs/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_the_menu_links_the_tokens_and_the_documentation_for_signed_in_users(client_for):
    page = client_for(roles.VIEWER).get("/api-tokens/").text
    assert 'href="/api/v1/docs/"' in page and 'href="/api-tokens/"' in page
