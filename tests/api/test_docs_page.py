"""The API's documentation page is served from the dashboard (Swagger UI's files come with django-ninja: no CDN)
under the site's strict CSP, and the menu links it."""

import pytest
from django.contrib.staticfiles import finders

from accounts import roles

pytestmark = pytest.mark.django_db


def test_the_documentation_page_loads_swagger_ui_from_the_dashboard_under_the_strict_policy(client_for):
    answer = client_for(roles.VIEWER).get("/api/v1/docs/")
    assert answer.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in answer.text and "/api/v1/openapi.json" in answer.text
    assert "cdn" not in answer.text.lower()
    policy = dict(part.strip().split(" ", 1) for part in answer["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "unsafe" not in answer["Content-Security-Policy"]
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


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_shows_every_endpoint_in_a_real_browser_without_breaking_the_policy(
    live_server, chromium, django_user_model
):
    from django.conf import settings
    from django.test import Client

    user = django_user_model.objects.create(username="alice")
    roles.set_role(user, roles.VIEWER)
    browser = Client()
    browser.force_login(user)
    session = {"name": settings.SESSION_COOKIE_NAME, "value": browser.cookies[settings.SESSION_COOKIE_NAME].value}
    shown = []

    def steps(page):
        page.goto(f"{live_server.url}/api/v1/docs/")
        page.locator(".opblock-summary-path").first.wait_for()
        shown.extend(page.locator(".opblock-summary-path").all_inner_texts())
        page.get_by_text("/api/v1/repositories/{name}/-/tags", exact=True).click()  # parameters, examples
        page.locator(".parameters-container").first.wait_for()
        page.locator(".responses-table").first.wait_for()

    problems = chromium.run(steps, cookies=[{**session, "url": live_server.url}])
    assert problems == []  # no CSP violation, console error or page error
    operations = [method for path in browser.get("/api/v1/openapi.json").json()["paths"].values() for method in path]
    assert len(shown) == len(operations) >= 23  # reading, acting and the webhooks'
    assert any("/-/tags/" in path for path in shown) and "/api/v1/deletes/{job_id}/confirm" in shown
    assert any(path.startswith("/api/v1/webhooks") for path in shown)
