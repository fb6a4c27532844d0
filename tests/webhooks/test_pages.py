"""The Webhooks page: admins only; adding an endpoint (its secret shown once when generated, never again), editing
it with the secret kept when left blank, a private target refused with a clear message, the test event button, the
delivery log, deleting."""

import pytest
from django.urls import reverse

from accounts import roles
from webhooks import events
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

TYPED_SECRET = "typed-secret-of-24-chars"
# Public addresses as IP literals: checked without asking DNS (nothing is posted to them here).
PUBLIC_URL, OTHER_PUBLIC_URL = "https://1.1.1.1/hook", "https://8.8.8.8/hook"


def form(url: str, **fields) -> dict:
    return {
        "name": "Team chat",
        "url": url,
        "secret": "",
        "events": [events.TAG_PUSHED, events.GC_FAILED],
        "active": "on",
        **fields,
    }


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "browser-webhooks", []),
        ("post", "browser-webhooks", []),
        ("get", "browser-webhook", [1]),
        ("post", "browser-webhook-test", [1]),
        ("post", "browser-webhook-delete", [1]),
    ],
)
@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_only_admins_reach_the_webhooks(client_for, endpoint_for, role, method, name, args):
    endpoint_for(PUBLIC_URL)
    answer = getattr(client_for(role), method)(reverse(name, args=args))
    assert answer.status_code == 403
    assert Endpoint.objects.count() == 1 and not Delivery.objects.exists()


def test_signed_out_people_are_sent_to_sign_in(client):
    answer = client.get(reverse("browser-webhooks"))
    assert answer.status_code == 302 and "/login/" in answer["Location"]


@pytest.mark.parametrize("name", ["browser-webhook-test", "browser-webhook-delete"])
def test_the_buttons_take_only_post(client_for, endpoint_for, name):
    endpoint = endpoint_for(PUBLIC_URL)
    assert client_for(roles.ADMIN).get(reverse(name, args=[endpoint.pk])).status_code == 405


def test_admins_see_the_webhooks_link_and_others_do_not(client_for):
    assert reverse("browser-webhooks") in client_for(roles.ADMIN).get("/").text
    assert reverse("browser-webhooks") not in client_for(roles.MAINTAINER, "maintainer").get("/").text


def test_a_generated_secret_is_shown_once_and_never_again(client_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    admin = client_for(roles.ADMIN)
    answer = admin.post(reverse("browser-webhooks"), form("http://127.0.0.1:8080/hook"))
    assert answer.status_code == 200 and "shown only this once" in answer.text
    assert "no-store" in answer["Cache-Control"]
    endpoint = Endpoint.objects.get()
    assert len(endpoint.secret) >= 40 and endpoint.secret in answer.text
    assert endpoint.events == [events.TAG_PUSHED, events.GC_FAILED] and endpoint.created_by == "admin-user"
    for page in [reverse("browser-webhooks"), reverse("browser-webhook", args=[endpoint.pk])]:
        assert endpoint.secret not in admin.get(page).text


def test_a_typed_secret_is_never_shown_and_a_blank_one_on_edit_keeps_it(client_for):
    admin = client_for(roles.ADMIN)
    answer = admin.post(reverse("browser-webhooks"), form(PUBLIC_URL, secret=TYPED_SECRET))
    endpoint = Endpoint.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("browser-webhook", args=[endpoint.pk])
    page = admin.get(answer["Location"]).text
    assert TYPED_SECRET not in page and "was added" in page and PUBLIC_URL in page

    changed = admin.post(reverse("browser-webhook", args=[endpoint.pk]), form(OTHER_PUBLIC_URL))
    assert changed.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.secret) == (OTHER_PUBLIC_URL, TYPED_SECRET)
    admin.post(reverse("browser-webhook", args=[endpoint.pk]), form(endpoint.url, secret="another-secret-0123456789"))
    endpoint.refresh_from_db()
    assert endpoint.secret == "another-secret-0123456789"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1, a loopback address"),
        ("ftp://hooks.example.com/x", "Only http:// and https:// URLs"),
    ],
)
def test_a_target_that_is_not_public_is_refused_when_saving(client_for, url, message):
    admin = client_for(roles.ADMIN)
    answer = admin.post(reverse("browser-webhooks"), form(url))
    assert answer.status_code == 400 and message in answer.text
    assert not Endpoint.objects.exists()


def test_a_private_target_is_refused_in_spanish_too(client_for):
    admin = client_for(roles.ADMIN)
    answer = admin.post(reverse("browser-webhooks"), form("http://10.0.0.1/hook"), headers={"Accept-Language": "es"})
    assert answer.status_code == 400 and "una dirección privada" in answer.text


def test_the_form_needs_a_name_and_an_event_and_a_long_enough_secret(client_for):
    answer = client_for(roles.ADMIN).post(
        reverse("browser-webhooks"), form(PUBLIC_URL, name="", events=[], secret="short")
    )
    assert answer.status_code == 400 and answer.text.count("This field is required") == 2
    assert "at least 16 characters" in answer.text and not Endpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_test_button_sends_a_test_event_and_the_log_shows_it(client_for, receiver, endpoint_for):
    endpoint = endpoint_for(receiver.url, [events.GC_FAILED], active=False)  # a test goes whatever it chose
    admin = client_for(roles.ADMIN)
    answer = admin.post(reverse("browser-webhook-test", args=[endpoint.pk]), follow=True)
    [received] = receiver.received
    assert received.json["type"] == "test" and "sent by admin-user" in received.json["text"]
    assert "A test event was queued" in answer.text
    assert "Delivered" in answer.text and ">200<" in answer.text and "Test event" in answer.text


def test_the_log_shows_a_retry_with_its_code_and_time(client_for, endpoint_for):
    endpoint = endpoint_for(PUBLIC_URL)
    body = events.test_event("Team hook", "admin")
    Delivery.objects.create(
        endpoint=endpoint,
        event_id=body["id"],
        event_type="tag.pushed",
        payload=body,
        status="retrying",
        attempts=2,
        response_code=502,
        duration_ms=87,
        error="Answered 502.",
        error_reason={"id": "Answered %(status)s.", "params": {"status": 502}},
        response_excerpt="bad gateway",
    )
    page = client_for(roles.ADMIN).get(reverse("browser-webhook", args=[endpoint.pk])).text
    for shown in ["Tag pushed", "Retrying", "502", "87 ms", "Answered 502.", "bad gateway"]:
        assert shown in page


def test_deleting_a_webhook_takes_its_log_along(client_for, endpoint_for):
    endpoint = endpoint_for(PUBLIC_URL)
    admin = client_for(roles.ADMIN)
    answer = admin.post(reverse("browser-webhook-delete", args=[endpoint.pk]), follow=True)
    assert "was deleted" in answer.text
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
