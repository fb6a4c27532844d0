"""Events fire from the real flows: a push a real registry notifies, a delete made past the dashboard, a delete job
and a retention run finishing (with the tags they took), a reconcile starting to fail, a collection failing, the
disk going above its warning level. Each reaches the test's own HTTP server."""

import time
from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from catalog import storage, sync
from catalog import tasks as catalog_tasks
from catalog.models import SyncRun
from cleanup import run as delete_run
from cleanup import tasks as cleanup_tasks
from cleanup.models import DeleteJob, RetentionPolicy
from cleanup.plan import Choice
from devtools.images import ImageSpec, push_image
from devtools.localregistry import LocalRegistry
from garbage_collection import tasks as gc_tasks
from registry.client import RegistryClient, reset_client
from registry.htpasswd import add_user
from webhooks import events

pytestmark = pytest.mark.django_db(transaction=True)  # signals are sent once the work's transaction commits
NOTIFY_SECRET = "notify-secret"


def image(text: str) -> ImageSpec:
    return ImageSpec(layers=[{"app.txt": text * 40}], created=datetime(2025, 1, 1, tzinfo=UTC))


def types(receiver) -> list[str]:
    return [received.json["type"] for received in receiver.received]


def wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} never arrived")
        time.sleep(0.05)


@pytest.mark.registry
def test_a_push_and_a_delete_a_real_registry_notifies_are_announced(
    live_server, receiver, endpoint_for, settings, tmp_path
):
    """The registry posts its events to the live dashboard; a push (by alice) becomes "tag pushed" with the image's
    bytes, alice's delete by digest "tag deleted" through the registry."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
    settings.REGISTRY_NOTIFICATIONS_SECRET = NOTIFY_SECRET
    endpoint_for(receiver.url, [events.TAG_PUSHED, events.TAG_DELETED])
    local = LocalRegistry(
        tmp_path, notifications_url=f"{live_server.url}/notifications/", notifications_secret=NOTIFY_SECRET
    )
    local.write_config()
    add_user(local.htpasswd, "svc", "pw", cost=4)
    add_user(local.htpasswd, "alice", "alice-pw", cost=4)
    local.start()
    try:
        settings.REGISTRY_URL, settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = local.url, "svc", "pw"
        reset_client()
        alice = RegistryClient(local.url, "alice", "alice-pw")
        pushed = push_image(alice, "live/app", "1.0", image("live"))
        wait_for(lambda: types(receiver) == [events.TAG_PUSHED], "the push's webhook")
        data = receiver.received[0].json["data"]
        assert (data["repository"], data["tag"], data["digest"], data["by"]) == (
            "live/app",
            "1.0",
            pushed.digest,
            "alice",
        )
        assert data["bytes"] == alice.manifest("live/app", pushed.digest).image_size > 0
        assert data["link"] == "/repositories/live/app/-/1.0/"

        alice.delete_manifest("live/app", pushed.digest)
        # 2.8 tells a delete by digest twice: the manifest (its digest, no tag), then each tag (no digest).
        wait_for(lambda: len(receiver.received) == 3, "the delete's webhooks")
        told = sorted((body["data"]["tag"], body["data"]["digest"]) for body in (r.json for r in receiver.received[1:]))
        assert told == [("", pushed.digest), ("1.0", "")]
        for received in receiver.received[1:]:
            assert received.json["type"] == events.TAG_DELETED
            assert (received.json["data"]["by"], received.json["data"]["source"]) == ("alice", "registry")
    finally:
        local.stop()


def test_a_delete_job_finishing_announces_the_tags_it_deleted_and_its_end(own, receiver, endpoint_for):
    _, client, registry = own
    endpoint_for(receiver.url, [events.TAG_DELETED, events.DELETE_JOB_FINISHED, events.TAG_PUSHED])
    digest = push_image(client, "shop/api", "1.0", image("one")).digest
    push_image(client, "shop/api", "2.0", image("two"))
    sync.sync_repository(client, registry, "shop/api")
    job = delete_run.create_job(
        registry,
        DeleteJob.TAGS,
        [Choice("shop/api", "1.0", digest)],
        user="maria",
        address="127.0.0.1",
        repository="shop/api",
    )
    cleanup_tasks.queue_delete_job(job)

    assert types(receiver) == [events.TAG_DELETED, events.DELETE_JOB_FINISHED]
    deleted, finished = (received.json for received in receiver.received)
    assert deleted["data"] == {
        "repository": "shop/api",
        "tag": "1.0",
        "digest": digest,
        "bytes": deleted["data"]["bytes"],
        "by": "maria",
        "source": "dashboard",
    }
    assert deleted["data"]["bytes"] > 0
    assert finished["data"]["job"] == job.pk and finished["data"]["status"] == "done"
    assert (finished["data"]["total"], finished["data"]["done"], finished["data"]["failed"]) == (1, 1, 0)
    assert finished["data"]["link"] == f"/deletes/{job.pk}/"
    assert f"Delete job #{job.pk} in shop/api finished: 1 of 1 tags handled, 0 failed" in finished["text"]


def test_the_registrys_report_of_the_dashboards_own_delete_is_not_announced_again(
    client, receiver, endpoint_for, settings
):
    """The dashboard's deletes are announced by their job; the registry's notification of each comes from the
    dashboard's own account, and is not told twice. Anyone else's delete is."""
    settings.REGISTRY_NOTIFICATIONS_SECRET = NOTIFY_SECRET
    endpoint_for(receiver.url, [events.TAG_DELETED])
    digest = "sha256:" + "d" * 64
    for event_id, actor in [("by-dashboard", settings.REGISTRY_USERNAME), ("by-someone", "mallory")]:
        event = {
            "id": event_id,
            "action": "delete",
            "actor": {"name": actor},
            "target": {"repository": "shop/api", "digest": digest},
        }
        answer = client.post(
            "/notifications/",
            {"events": [event]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {NOTIFY_SECRET}"},
        )
        assert answer.json() == {"accepted": 1}
    [received] = receiver.received
    assert received.json["data"]["by"] == "mallory" and received.json["data"]["source"] == "registry"


def test_a_retention_run_finishing_is_announced_with_its_policy(own, receiver, endpoint_for, settings):
    _, client, registry = own
    settings.DASHBOARD_URL = "https://registry-ui.example.com"
    endpoint_for(receiver.url, [events.RETENTION_RUN_FINISHED])
    for tag in ["v1", "v2", "v3"]:
        push_image(client, "app/web", tag, image(tag))
    sync.sync_repository(client, registry, "app/web")
    policy = RetentionPolicy.objects.create(registry=registry, repositories="app/*", keep_regex="^v3$")
    job = cleanup_tasks.start_retention_run(policy, "schedule")

    [received] = receiver.received
    body = received.json
    assert body["type"] == events.RETENTION_RUN_FINISHED and body["data"]["policy"] == "app/*"
    assert (body["data"]["total"], body["data"]["done"]) == (2, 2)
    assert body["data"]["link"] == f"https://registry-ui.example.com/deletes/{job.pk}/"
    assert f"Retention run #{job.pk} (app/*)" in body["text"]


def test_a_reconcile_starting_to_fail_is_announced_once_until_one_succeeds(receiver, endpoint_for):
    """Nothing listens at the registry's address here: every reconcile fails."""
    endpoint_for(receiver.url, [events.RECONCILE_FAILING])
    catalog_tasks.reconcile_registry.enqueue(verify=False)
    catalog_tasks.reconcile_registry.enqueue(verify=True)
    assert types(receiver) == [events.RECONCILE_FAILING]
    body = receiver.received[0].json
    assert body["data"]["kind"] == "lists" and "Cannot connect to http://127.0.0.1:9" in body["data"]["error"]
    assert body["text"].startswith("[registry.invalid] Reconciling the index with the registry failed:")

    registry = sync.current_registry()
    SyncRun.objects.create(registry=registry, kind=SyncRun.FULL, status=SyncRun.DONE, finished_at=datetime.now(UTC))
    catalog_tasks.reconcile_registry.enqueue(verify=False)
    assert types(receiver) == [events.RECONCILE_FAILING] * 2


def test_a_collection_that_fails_is_announced(receiver, endpoint_for):
    """No registry answers, so the check that it refuses uploads fails: nothing is collected."""
    endpoint_for(receiver.url, [events.GC_FINISHED, events.GC_FAILED])
    run = gc_tasks.start_gc(sync.current_registry(), dry_run=False, user="maria")
    run.refresh_from_db()
    assert run.status == "failed"
    [received] = receiver.received
    assert received.json["type"] == events.GC_FAILED
    assert received.json["data"]["run"] == run.pk and received.json["data"]["error"] == run.error
    assert f"/gc/{run.pk}/" in received.json["text"]


def test_a_dry_run_is_not_announced(receiver, endpoint_for):
    endpoint_for(receiver.url, [events.GC_FINISHED, events.GC_FAILED])
    gc_tasks.start_gc(sync.current_registry(), dry_run=True, user="maria")
    assert receiver.received == []


def test_the_disk_going_above_its_warning_level_is_announced_once(receiver, endpoint_for, settings, tmp_path):
    """Measured for real (df and du, GC_BRIDGE=local): above 1 % used, below 100 %."""
    settings.GC_BRIDGE, settings.REGISTRY_STORAGE_PATH = "local", str(tmp_path)
    settings.GC_DISK_WARN_PERCENT = 1
    endpoint_for(receiver.url, [events.DISK_WARNING])

    def measure():
        cache.delete("registry-volume")  # a new measurement, as a minute later
        return storage.volume()

    volume = measure()
    measure()  # still above: nothing new to tell
    assert types(receiver) == [events.DISK_WARNING]
    data = receiver.received[0].json["data"]
    assert data["used_percent"] == round(volume.used_percent, 1) and data["warn_percent"] == 1
    assert data["free_bytes"] == volume.usage.free_bytes

    settings.GC_DISK_WARN_PERCENT = 100
    measure()  # below: the next crossing is news again
    settings.GC_DISK_WARN_PERCENT = 1
    measure()
    assert types(receiver) == [events.DISK_WARNING] * 2
