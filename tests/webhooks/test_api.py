"""/api/v1/webhooks: admins list, add, change and delete endpoints, read their delivery logs and send a test event,
with a token; the secret is answered once when generated, never listed; the same rules as the page."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts import roles
from api import tokens
from webhooks import events
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://1.1.1.1/hook"  # a public address as an IP literal: no DNS asked, nothing posted


@pytest.fixture
def api_as(db):
    def make(role: str) -> Client:
        user = User.objects.create_user(f"{role}-script", password="local-user-password")
        roles.set_role(user, role)
        raw = tokens.create_token(user, "script")[1]
        return Client(headers={"Authorization": f"Bearer {raw}"})

    return make


def test_an_admin_adds_an_endpoint_and_gets_its_generated_secret_once(api_as):
    admin = api_as(roles.ADMIN)
    answer = admin.post(
        "/api/v1/webhooks",
        {"name": "CI", "url": PUBLIC_URL, "events": [events.TAG_PUSHED]},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    endpoint = Endpoint.objects.get()
    assert created["secret"] == endpoint.secret and len(endpoint.secret) >= 40
    assert (created["name"], created["url"], created["events"], created["active"]) == (
        "CI",
        PUBLIC_URL,
        [events.TAG_PUSHED],
        True,
    )
    assert created["created_by"] == "admin-script"
    listed = admin.get("/api/v1/webhooks")
    assert listed.status_code == 200 and [item["id"] for item in listed.json()] == [endpoint.pk]
    assert endpoint.secret not in listed.text and "secret" not in listed.json()[0]
    assert endpoint.secret not in admin.get(f"/api/v1/webhooks/{endpoint.pk}").text


def test_a_given_secret_is_kept_and_never_answered(api_as):
    admin = api_as(roles.ADMIN)
    body = {"name": "CI", "url": PUBLIC_URL, "events": [events.TAG_PUSHED], "secret": "given-secret-0123456789"}
    answer = admin.post("/api/v1/webhooks", body, content_type="application/json")
    assert answer.status_code == 201 and answer.json()["secret"] is None
    assert "given-secret-0123456789" not in answer.text
    assert Endpoint.objects.get().secret == "given-secret-0123456789"


def test_a_change_keeps_what_it_does_not_name(api_as):
    endpoint = Endpoint.objects.create(name="CI", url=PUBLIC_URL, secret="s" * 20, events=[events.TAG_PUSHED])
    answer = api_as(roles.ADMIN).patch(
        f"/api/v1/webhooks/{endpoint.pk}",
        {"active": False, "events": [events.GC_FAILED]},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.text
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.url, endpoint.secret) == ("CI", PUBLIC_URL, "s" * 20)
    assert (endpoint.active, endpoint.events) == (False, [events.GC_FAILED])


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"url": "http://10.0.0.1/hook"}, "10.0.0.1, a private address"),
        ({"url": "http://169.254.169.254/"}, "a link-local address"),
        ({"events": ["tag.renamed"]}, "events: Select a valid choice"),
        ({"secret": "short"}, "secret: Ensure this value has at least 16 characters"),
    ],
)
def test_what_the_page_refuses_the_api_refuses_with_a_problem(api_as, body, detail):
    full = {"name": "CI", "url": PUBLIC_URL, "events": [events.TAG_PUSHED], **body}
    answer = api_as(roles.ADMIN).post("/api/v1/webhooks", full, content_type="application/json")
    assert answer.status_code == 422 and answer["Content-Type"] == "application/problem+json"
    assert detail in answer.json()["detail"]
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_other_roles_get_403(api_as, role):
    endpoint = Endpoint.objects.create(name="CI", url=PUBLIC_URL, secret="s" * 20, events=[events.TAG_PUSHED])
    script = api_as(role)
    for method, path in [
        ("get", "/api/v1/webhooks"),
        ("post", f"/api/v1/webhooks/{endpoint.pk}/test"),
        ("delete", f"/api/v1/webhooks/{endpoint.pk}"),
        ("get", f"/api/v1/webhooks/{endpoint.pk}/deliveries"),
    ]:
        answer = getattr(script, method)(path)
        assert answer.status_code == 403 and "admin role" in answer.json()["detail"], (method, path)
    assert Endpoint.objects.exists() and not Delivery.objects.exists()


def test_without_a_token_it_is_401(client):
    assert client.get("/api/v1/webhooks").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_test_event_is_delivered_and_its_log_read(api_as, receiver):
    endpoint = Endpoint.objects.create(name="CI", url=receiver.url, secret="s" * 20, events=[events.TAG_PUSHED])
    admin = api_as(roles.ADMIN)
    answer = admin.post(f"/api/v1/webhooks/{endpoint.pk}/test")
    assert answer.status_code == 202
    assert answer.json()["status"] == "delivered" and receiver.received[0].json["type"] == "test"
    log = admin.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries").json()
    assert [(item["event_type"], item["response_code"], item["attempts"]) for item in log] == [("test", 200, 1)]


def test_deleting_an_endpoint(api_as):
    endpoint = Endpoint.objects.create(name="CI", url=PUBLIC_URL, secret="s" * 20, events=[events.TAG_PUSHED])
    admin = api_as(roles.ADMIN)
    assert admin.delete(f"/api/v1/webhooks/{endpoint.pk}").status_code == 204
    assert not Endpoint.objects.exists()
    assert admin.delete(f"/api/v1/webhooks/{endpoint.pk}").status_code == 404
