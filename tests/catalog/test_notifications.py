"""The notifications receiver: a real registry posting its events to the live dashboard, and the
envelopes it must refuse."""

import json
import time
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from catalog import sync
from catalog import tasks as catalog_tasks
from catalog.models import RegistryEvent, Tag
from cleanup.models import AuditEntry
from devtools.images import ImageSpec, push_image
from devtools.localregistry import LocalRegistry
from registry.client import RegistryClient, reset_client
from registry.htpasswd import add_user

SECRET = "notify-secret"
EVENTS_V1 = "application/vnd.docker.distribution.events.v1+json"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def immediate_tasks(settings):
    """Tasks run inside the request that queues them, so a test sees their effect at once."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
    settings.REGISTRY_NOTIFICATIONS_SECRET = SECRET


def image(text: str) -> ImageSpec:
    return ImageSpec(layers=[{"app": text}], created=datetime(2025, 1, 1, tzinfo=UTC))


def post(client, body, secret=SECRET, content_type=EVENTS_V1):
    return client.post(
        reverse("browser-notifications"),
        json.dumps(body) if not isinstance(body, str) else body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {secret}"},
    )


def push_event(event_id: str, repository: str, tag: str, digest: str) -> dict:
    return {
        "id": event_id,
        "timestamp": "2026-01-02T03:04:05Z",
        "action": "push",
        "target": {"mediaType": MANIFEST_V2, "repository": repository, "tag": tag, "digest": digest},
        "actor": {"name": "alice"},
        "request": {"addr": "10.0.0.5:4242"},
    }


@pytest.mark.django_db
def test_without_a_secret_the_endpoint_is_off(client, settings):
    settings.REGISTRY_NOTIFICATIONS_SECRET = ""
    assert post(client, {"events": []}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("secret", "content_type", "body", "status"),
    [
        ("wrong", EVENTS_V1, {"events": []}, 401),
        (SECRET, "text/plain", {"events": []}, 415),
        (SECRET, EVENTS_V1, "not json", 400),
        (SECRET, EVENTS_V1, {"events": "nope"}, 400),
        (SECRET, EVENTS_V1, ["events"], 400),
        (SECRET, EVENTS_V1, {"events": [{**push_event("a1", "x/y", "t", "sha256:" + "a" * 64), "actor": "bob"}]}, 400),
        (SECRET, EVENTS_V1, {"events": [{**push_event("r1", "x/y", "t", "sha256:" + "a" * 64), "request": [1]}]}, 400),
        (SECRET, EVENTS_V1, {"events": [{**push_event("t1", "x/y", "t", "sha256:" + "a" * 64), "target": "x"}]}, 400),
        (SECRET, EVENTS_V1, {"events": [push_event("ok", "x/y", "t", "sha256:" + "a" * 64), 7]}, 400),
        (SECRET, EVENTS_V1, '{"events": ' + "[" * 100_000 + "]" * 100_000 + "}", 400),
        (
            SECRET,
            EVENTS_V1,
            {"events": [push_event(f"e{n}", "x/y", "t", "sha256:" + "a" * 64) for n in range(101)]},
            413,
        ),
    ],
    ids=[
        "secret",
        "type",
        "not-json",
        "events-not-a-list",
        "not-an-object",
        "actor-a-string",
        "request-a-list",
        "target-a-string",
        "one-bad-event",
        "nested-deep",
        "too-many",
    ],
)
def test_bad_envelopes_are_refused_and_change_nothing(client, immediate_tasks, secret, content_type, body, status):
    assert post(client, body, secret=secret, content_type=content_type).status_code == status
    assert RegistryEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_event_is_applied_once_however_often_it_is_delivered(client, immediate_tasks, registry_client):
    pushed = push_image(registry_client, "notify/once", "v1", image("once"))
    event = push_event("event-1", "notify/once", "v1", pushed.digest)
    assert post(client, {"events": [event]}).json() == {"accepted": 1}
    assert post(client, {"events": [event]}).json() == {"accepted": 0}
    tag = Tag.objects.get(repository__name="notify/once", name="v1")
    assert tag.manifest.digest == pushed.digest
    assert tag.pushed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    recorded = RegistryEvent.objects.get()
    assert (recorded.actor, recorded.address, recorded.action) == ("alice", "10.0.0.5:4242", "push")


@pytest.mark.django_db
def test_pulls_layer_pushes_and_bad_names_are_ignored(client, immediate_tasks):
    events = [
        {**push_event("p1", "x/y", "t", "sha256:" + "a" * 64), "action": "pull"},
        {
            **push_event("p2", "x/y", "t", "sha256:" + "a" * 64),
            "target": {"mediaType": "application/octet-stream", "repository": "x/y", "digest": "sha256:" + "a" * 64},
        },
        push_event("p3", "../etc", "t", "sha256:" + "a" * 64),
        push_event("p4", "x/y", "<script>", "sha256:" + "a" * 64),
    ]
    assert post(client, {"events": events}).json() == {"accepted": 0}


@pytest.mark.registry
@pytest.mark.django_db(transaction=True)
def test_a_real_registry_keeps_the_index_fresh_through_notifications(live_server, immediate_tasks, settings, tmp_path):
    """No reconcile runs here: a tag reaches the index (and leaves it) only through the registry's notifications.
    How fast is measured by bench/index.py; on a loaded machine the registry's own retries (2 s timeout, then
    backoff) may take a while, and the registry's log says why."""
    local = LocalRegistry(tmp_path, notifications_url=f"{live_server.url}/notifications/", notifications_secret=SECRET)
    local.write_config()
    add_user(local.htpasswd, "svc", "pw", cost=4)
    log_path = tmp_path / "registry.log"
    with log_path.open("wb") as log:
        local.start(log=log)
    try:
        settings.REGISTRY_URL, settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = local.url, "svc", "pw"
        reset_client()
        client = RegistryClient(local.url, "svc", "pw")
        pushed = push_image(client, "live/app", "1.0", image("live"))
        wait_for(lambda: Tag.objects.filter(repository__name="live/app", name="1.0").exists(), log_path)
        assert Tag.objects.get(name="1.0").manifest.digest == pushed.digest
        assert RegistryEvent.objects.filter(action="push", tag="1.0", actor="svc").exists()

        client.delete_manifest("live/app", pushed.digest)
        wait_for(lambda: not Tag.objects.filter(repository__name="live/app", name="1.0").exists(), log_path)
        assert RegistryEvent.objects.filter(action="delete", digest=pushed.digest).exists()
        assert sync.current_registry().url == local.url
    finally:
        local.stop()


def wait_for(condition, log_path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"The registry's event never arrived; its log ends:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)


@pytest.mark.django_db
def test_a_delete_notification_is_one_registry_entry_in_the_audit_log(client, immediate_tasks, registry_client):
    digest = "sha256:" + "d" * 64
    event = {**push_event("delete-1", "notify/audited", "v1", digest), "action": "delete"}
    assert post(client, {"events": [event]}).json() == {"accepted": 1}
    assert post(client, {"events": [event]}).json() == {"accepted": 0}  # delivered again
    entry = AuditEntry.objects.get()
    assert (entry.source, entry.action, entry.outcome) == (AuditEntry.REGISTRY, AuditEntry.REGISTRY_DELETE, "done")
    assert (entry.user, entry.address) == ("alice", "10.0.0.5:4242")
    assert (entry.repository, entry.tags, entry.digest) == ("notify/audited", ["v1"], digest)
    assert entry.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    anonymous = {**event, "id": "delete-2", "actor": {}, "target": {**event["target"], "tag": ""}}
    del anonymous["timestamp"]
    assert post(client, {"events": [anonymous]}).json() == {"accepted": 1}
    second = AuditEntry.objects.exclude(pk=entry.pk).get()
    assert (second.user, second.tags) == ("", [])
    assert second.timestamp > entry.timestamp  # when it arrived


@pytest.mark.django_db
def test_a_push_notification_is_not_audited(client, immediate_tasks, registry_client):
    pushed = push_image(registry_client, "notify/unaudited", "v1", image("unaudited"))
    assert post(client, {"events": [push_event("push-1", "notify/unaudited", "v1", pushed.digest)]}).json() == {
        "accepted": 1
    }
    assert RegistryEvent.objects.filter(event_id="push-1").exists()
    assert not AuditEntry.objects.exists()


def test_an_impossible_timestamp_is_dropped_not_a_500(client, settings):
    from catalog.views.notifications import event_time

    assert event_time({"timestamp": "2026-13-40T10:00:00Z"}) is None
    assert event_time({"timestamp": "2026-01-02T03:04:05"}).tzinfo is not None
    assert event_time({}) is None


def test_a_late_push_event_does_not_bring_back_a_deleted_or_moved_tag(own):
    """Events arrive late: the push of a tag deleted or moved since is applied as the registry is now."""

    from catalog.models import Tag
    from devtools.images import ImageSpec, push_image

    _local, client, registry = own
    first = push_image(client, "late/app", "gone", ImageSpec(layers=[{"a": "1"}])).digest
    push_image(client, "late/app", "moved", ImageSpec(layers=[{"a": "1"}]))
    second = push_image(client, "late/app", "moved", ImageSpec(layers=[{"a": "2"}])).digest
    sync.sync_repository(client, registry, "late/app")
    client.remove_tag("late/app", "gone", "throwaway", first)

    catalog_tasks.apply_push.enqueue("late/app", "gone", first)
    catalog_tasks.apply_push.enqueue("late/app", "moved", first)

    tags = dict(Tag.objects.filter(repository__name="late/app").values_list("name", "manifest__digest"))
    assert tags == {"moved": second}


@pytest.mark.django_db
def test_a_nul_in_an_event_is_kept_as_text_any_database_can_store(client, immediate_tasks, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    event = {**push_event("nul-1", "x/y", "t", "sha256:" + "a" * 64), "actor": {"name": "bo\x00b"}}
    assert post(client, {"events": [event]}).json() == {"accepted": 1}
    assert RegistryEvent.objects.get().actor == "bo\\u0000b"
