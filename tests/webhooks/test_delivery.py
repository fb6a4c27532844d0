"""Delivering an event to a real HTTP server: signed, retried with backoff after a failure, never to a private
address (unless allowed), never past a redirect, within the timeouts, and never reading more than the cap."""

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks import delivery, events, tasks
from webhooks.models import Delivery

from .conftest import SECRET, Answer, Receiver

pytestmark = pytest.mark.django_db(transaction=True)  # deliveries are queued once their transaction commits


def pushed_event() -> dict:
    return events.tag_pushed("shop/api", "1.10.0", "sha256:" + "a" * 64, 12_345_678, "alice", "/repositories/x/")


def verify(received, secret: str = SECRET) -> dict:
    """What a receiving service does (README, "Webhooks"): check the signature over "TIMESTAMP.BODY"."""
    parts = dict(item.split("=", 1) for item in received.headers["X-Registry-UI-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(time.time() - int(parts["t"])) < 60
    return received.json


def test_an_event_reaches_a_real_server_signed_with_the_endpoints_secret(receiver, endpoint_for):
    endpoint = endpoint_for(receiver.url)
    body = pushed_event()
    tasks.queue_event(body)

    [received] = receiver.received
    payload = verify(received)
    assert received.path == "/hook" and received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Registry-UI-Event"] == "tag.pushed"
    assert received.headers["X-Registry-UI-Delivery"] == payload["id"] == body["id"]
    assert payload["type"] == "tag.pushed" and payload["time"].endswith("Z")
    assert payload["data"] == {
        "repository": "shop/api",
        "tag": "1.10.0",
        "digest": "sha256:" + "a" * 64,
        "bytes": 12_345_678,
        "by": "alice",
        "link": "/repositories/x/",
    }
    assert "shop/api:1.10.0 was pushed by alice" in payload["text"] and "11.8 MB" in payload["text"]
    sent = Delivery.objects.get()
    assert (sent.endpoint, sent.status, sent.attempts, sent.response_code) == (endpoint, "delivered", 1, 200)
    assert sent.duration_ms is not None and sent.next_attempt_at is None and sent.error == ""


def test_a_wrong_secret_does_not_verify(receiver, endpoint_for):
    endpoint_for(receiver.url)
    tasks.queue_event(pushed_event())
    with pytest.raises(AssertionError):
        verify(receiver.received[0], secret="another-secret-entirely")


def test_only_endpoints_that_chose_the_event_and_are_active_get_it(receiver, endpoint_for):
    endpoint_for(receiver.url, [events.TAG_PUSHED])
    endpoint_for(receiver.url + "/deleted-only", [events.TAG_DELETED])
    endpoint_for(receiver.url + "/inactive", [events.TAG_PUSHED], active=False)
    tasks.queue_event(pushed_event())
    assert [received.path for received in receiver.received] == ["/hook"]


def test_a_server_answering_500_gets_the_same_event_again_after_the_backoff(receiver, endpoint_for, settings):
    settings.WEBHOOK_RETRY_SECONDS = 0.3
    endpoint_for(receiver.url)
    receiver.answers = [Answer(500, b"database is down")]
    tasks.queue_event(pushed_event())

    failed = Delivery.objects.get()
    assert (failed.status, failed.attempts, failed.response_code) == ("retrying", 1, 500)
    assert (failed.error, failed.response_excerpt) == ("Answered 500.", "database is down")
    assert timedelta(0) < failed.next_attempt_at - timezone.now() <= timedelta(seconds=0.3)
    assert tasks.queue_due_attempts() == 0  # not due yet: nothing sent
    assert len(receiver.received) == 1

    time.sleep(0.35)
    assert tasks.queue_due_attempts() == 1  # the scheduler's tick (this backend can't defer a task)
    retried = Delivery.objects.get()
    assert (retried.status, retried.attempts, retried.response_code, retried.error) == ("delivered", 2, 200, "")
    first, second = receiver.received
    assert first.body == second.body and verify(second)["id"] == verify(first)["id"]


def test_the_pauses_grow_five_times_and_the_last_attempt_gives_up(receiver, endpoint_for, settings):
    settings.WEBHOOK_RETRY_SECONDS, settings.WEBHOOK_MAX_ATTEMPTS = 0.1, 3
    endpoint_for(receiver.url)
    receiver.answers = [Answer(503)] * 3
    tasks.queue_event(pushed_event())
    pauses = []
    for _ in range(2):
        waiting = Delivery.objects.get()
        # From the attempt's start: the pause itself, plus the attempt's few milliseconds.
        pauses.append((waiting.next_attempt_at - waiting.last_attempt_at).total_seconds())
        time.sleep(pauses[-1] + 0.05)
        tasks.queue_due_attempts()
    gave_up = Delivery.objects.get()
    assert (gave_up.status, gave_up.attempts, gave_up.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.received) == 3
    assert 0.1 <= pauses[0] < 0.2 and 0.5 <= pauses[1] < 0.6


def test_a_retry_is_deferred_to_the_task_backend_when_it_can_wait(receiver, endpoint_for, settings):
    """The database backend (and RQ's) can hold a task until `run_after`: the retry is queued there."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}
    from django_tasks_db.models import DBTaskResult

    endpoint_for(receiver.url)
    receiver.answers = [Answer(500)]
    queued = tasks.queue_event(pushed_event())[0]
    tasks.attempt_delivery.call(queued.pk)  # what the worker does with the first task
    retry = Delivery.objects.get()
    deferred = DBTaskResult.objects.filter(task_path="webhooks.tasks.attempt_delivery").order_by("-enqueued_at")[0]
    assert deferred.run_after == retry.next_attempt_at and deferred.args_kwargs["args"] == [retry.pk]
    assert tasks.queue_due_attempts(now=retry.next_attempt_at) == 0  # the task is there: the tick leaves it


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://10.0.0.1/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[::1]:{port}/hook", "a loopback address"),
        ("http://127.0.0.1:{port}/hook", "a loopback address"),
        ("http://localhost:{port}/hook", "a loopback address"),
        ("http://[::ffff:10.1.2.3]/hook", "a private address"),
        ("http://100.64.0.1/hook", "not a public address"),
    ],
)
def test_a_private_loopback_or_link_local_target_is_refused_when_sending_and_nothing_is_sent(
    endpoint_for, settings, url, kind
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    server = Receiver()  # listening on loopback: it must hear nothing
    try:
        endpoint_for(url.format(port=server.server.server_port))  # saved past the form, as by an older version
        tasks.queue_event(pushed_event())
    finally:
        server.stop()
    refused = Delivery.objects.get()
    assert (refused.status, refused.attempts, refused.response_code) == ("failed", 1, None)
    assert kind in refused.error and "WEBHOOK_ALLOW_PRIVATE_TARGETS" in refused.error
    assert server.received == []


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "151.101.1.69"])
def test_public_addresses_pass_the_check(address):
    import ipaddress

    assert delivery.why_not_public(ipaddress.ip_address(address)) == ""


def test_a_redirect_is_not_followed(receiver, endpoint_for):
    elsewhere = Receiver()
    try:
        endpoint_for(receiver.url)
        receiver.answers = [Answer(302, b"", {"Location": elsewhere.url})]
        tasks.queue_event(pushed_event())
    finally:
        elsewhere.stop()
    assert len(receiver.received) == 1 and elsewhere.received == []
    moved = Delivery.objects.get()
    assert (moved.status, moved.response_code) == ("retrying", 302)
    assert "redirects are not followed" in moved.error


def test_a_slow_server_times_out(receiver, endpoint_for, settings):
    settings.WEBHOOK_READ_TIMEOUT = 0.3
    endpoint_for(receiver.url)
    receiver.answers = [Answer(200, delay=1.5)]
    started = time.monotonic()
    tasks.queue_event(pushed_event())
    assert time.monotonic() - started < 1.2
    slow = Delivery.objects.get()
    assert (slow.status, slow.response_code) == ("retrying", None)
    assert slow.error == "No answer within 0.3 s (WEBHOOK_READ_TIMEOUT)."


def test_an_endless_answer_is_read_only_up_to_the_cap(receiver, settings):
    """The server would send a terabyte; the attempt reads the cap and hangs up, long before its read timeout."""
    settings.WEBHOOK_READ_TIMEOUT = 5
    receiver.answers = [Answer(200, b"x" * 65_536, endless=True)]
    started = time.monotonic()
    answer = delivery.post(receiver.url, b"{}", {"Content-Type": "application/json"})
    assert time.monotonic() - started < 2
    assert answer.status == 200 and len(answer.body) == delivery.RESPONSE_MAX_BYTES


def test_a_server_that_is_not_there_is_a_failed_attempt_to_retry(endpoint_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint_for("http://127.0.0.1:9/hook")  # the discard port: nothing listens
    tasks.queue_event(pushed_event())
    failed = Delivery.objects.get()
    assert failed.status == "retrying" and "Could not connect to 127.0.0.1" in failed.error


def test_a_delivery_another_task_has_claimed_is_not_sent_twice(receiver, endpoint_for):
    endpoint_for(receiver.url)
    sent = tasks.queue_event(pushed_event())[0]
    assert tasks.attempt_delivery.call(sent.pk) == "not due"
    assert len(receiver.received) == 1


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_the_body():
    header = delivery.signature_header("s3cret", b'{"a":1}', timestamp=1700000000)
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
