"""Garbage collection through the API (admins, as on its page): a dry run, then a collection from that dry run
against a real registry (the local bridge, the registry switched read-only by its owner), its status and log, the
audit entry naming the caller; one collection at a time (409), a dry run that is not the latest (409), no bridge
(409), and delete_untagged refused on 2.x (422)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import roles
from catalog import sync
from cleanup.models import AuditEntry
from garbage_collection.models import GcRun
from tests.cleanup.test_deletion_views import fill, pulls

JSON = "application/json"
NO_WORKER = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}


@pytest.fixture
def admin(token_for, bearer):
    return bearer(token_for(roles.ADMIN))


def problem_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    return answer.json()


def done_dry_run(**fields) -> GcRun:
    """A dry run as a worker leaves it: done, finding something."""
    values = {"status": GcRun.DONE, "blobs_eligible": 2, "manifests_eligible": 0, "finished_at": timezone.now()}
    return GcRun.objects.create(registry=sync.current_registry(), requested_by="t", **{**values, **fields})


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_then_a_collection_from_it_frees_what_the_api_deleted(acting, admin, token_for, bearer, settings):
    local, client, registry = acting
    settings.GC_BRIDGE, settings.REGISTRY_BINARY, settings.GC_TIME_LIMIT = "local", "", 60
    settings.REGISTRY_CONFIG_PATH, settings.REGISTRY_STORAGE_PATH = str(local.config_path), str(local.root / "data")
    fill(client, "team/app", 4)
    sync.sync_repository(client, registry, "team/app")
    maintainer = bearer(token_for(roles.MAINTAINER))
    draft = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2", "t3"]}, JSON)
    assert maintainer.post(draft.json()["confirm_url"]).json()["status"] == "done"

    started = admin.generic("POST", "/api/v1/gc/dry-runs")  # no body at all, as `curl -X POST`: the defaults
    assert started.status_code == 202, started.content
    preview = started.json()
    assert started["Location"] == f"/api/v1/gc/runs/{preview['id']}"
    assert (preview["dry_run"], preview["status"], preview["exit_code"]) == (True, "done", 0)
    assert preview["blobs_eligible"] >= 2 and preview["collectable"]  # the two deleted images' configs
    assert preview["collect_url"] == f"/api/v1/gc/runs/{preview['id']}/collect"
    log = admin.get(preview["log_url"])
    assert log["Content-Type"].startswith("text/plain") and "blobs marked" in log.content.decode()

    local.restart(readonly=True)  # GC_BRIDGE=local: the registry's owner switches it (README, "Garbage collection")
    collected = admin.post(preview["collect_url"])
    assert collected.status_code == 202, collected.content
    run = collected.json()
    assert (run["dry_run"], run["status"], run["preview_id"]) == (False, "done", preview["id"]), run["error"]
    assert run["blobs_eligible"] == preview["blobs_eligible"] and run["bytes_freed"] is not None
    assert admin.get(f"/api/v1/gc/runs/{run['id']}").json() == run
    local.restart(readonly=False)
    assert all(pulls(client, "team/app", tag) for tag in ["same", "t1", "t4"])
    entry = AuditEntry.objects.get(action=AuditEntry.GARBAGE_COLLECTION)
    assert (entry.user, entry.address, entry.outcome) == ("carol", "127.0.0.1", AuditEntry.DONE)


@pytest.mark.django_db
def test_a_second_collection_while_one_is_queued_is_a_409(admin, settings):
    settings.GC_BRIDGE, settings.TASKS = "local", NO_WORKER
    first = admin.post("/api/v1/gc/dry-runs", content_type=JSON)
    assert first.status_code == 202 and first.json()["status"] == "queued"
    busy = problem_of(admin.post("/api/v1/gc/dry-runs", content_type=JSON), 409)["detail"]
    assert "already queued or running" in busy and f"/api/v1/gc/runs/{first.json()['id']}" in busy
    GcRun.objects.filter(pk=first.json()["id"]).update(status=GcRun.RUNNING, heartbeat_at=timezone.now())
    assert (
        "already queued or running" in problem_of(admin.post("/api/v1/gc/dry-runs", content_type=JSON), 409)["detail"]
    )
    assert GcRun.objects.count() == 1


@pytest.mark.django_db
def test_a_collection_follows_only_the_latest_recent_dry_run_that_found_something(admin, settings):
    settings.GC_BRIDGE, settings.TASKS = "local", NO_WORKER
    older, latest = done_dry_run(), done_dry_run()
    assert "not the latest dry run" in problem_of(admin.post(f"/api/v1/gc/runs/{older.pk}/collect"), 409)["detail"]
    stale = done_dry_run(finished_at=timezone.now() - timedelta(hours=2))
    problem_of(admin.post(f"/api/v1/gc/runs/{stale.pk}/collect"), 409)
    empty = done_dry_run(blobs_eligible=0)
    problem_of(admin.post(f"/api/v1/gc/runs/{empty.pk}/collect"), 409)
    assert not GcRun.objects.filter(dry_run=False).exists()
    latest = done_dry_run()
    collected = admin.post(f"/api/v1/gc/runs/{latest.pk}/collect")
    assert collected.status_code == 202 and collected.json()["preview_id"] == latest.pk
    assert GcRun.objects.get(dry_run=False).requested_by == "carol"


@pytest.mark.django_db
def test_without_a_bridge_nothing_starts_and_the_detail_says_which_setting(admin, settings):
    settings.GC_BRIDGE = "none"
    detail = problem_of(admin.post("/api/v1/gc/dry-runs", content_type=JSON), 409)["detail"]
    assert "GC_BRIDGE=none" in detail and "garbage-collect --dry-run" in detail
    assert not GcRun.objects.exists()


@pytest.mark.django_db
def test_delete_untagged_is_refused_on_2x(admin, settings):
    settings.GC_BRIDGE = "local"
    answer = admin.post("/api/v1/gc/dry-runs", {"delete_untagged": True}, JSON)
    assert "body.delete_untagged: only on distribution 3.x" in problem_of(answer, 422)["detail"]
    assert (
        "body.delete_untagged"
        in problem_of(admin.post("/api/v1/gc/dry-runs", {"delete_untagged": "maybe"}, JSON), 422)["detail"]
    )
    assert not GcRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_only_admins_collect_and_read_collections(token_for, bearer, settings, role):
    settings.GC_BRIDGE = "local"
    run = done_dry_run(log="1 blobs marked, 2 blobs and 0 manifests eligible for deletion")
    caller = bearer(token_for(role))
    for answer in [
        caller.post("/api/v1/gc/dry-runs", content_type=JSON),
        caller.post(f"/api/v1/gc/runs/{run.pk}/collect"),
        caller.get(f"/api/v1/gc/runs/{run.pk}"),
        caller.get(f"/api/v1/gc/runs/{run.pk}/log"),
    ]:
        assert "admin role" in problem_of(answer, 403)["detail"]
    assert GcRun.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_run_is_a_404_and_a_get_of_a_post_only_path_a_405(admin):
    assert "no garbage collection run 999" in problem_of(admin.get("/api/v1/gc/runs/999"), 404)["detail"]
    problem_of(admin.get("/api/v1/gc/runs/999/log"), 404)
    problem_of(admin.post("/api/v1/gc/runs/999/collect"), 404)
    refused = admin.get("/api/v1/gc/dry-runs")
    assert "GET is not allowed" in problem_of(refused, 405)["detail"] and refused["Allow"] == "POST"
