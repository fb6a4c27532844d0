"""Garbage collection from the dashboard, against a real Docker Engine and a registry container built from the
Debian registry binary (tests/docker_engine.py): dry run, preview, confirmed run with the registry read-only,
bytes freed on the volume against the estimate, every kept image still pulling; an empty registry; deletes
waiting for a collection; the time limit; a misconfigured bridge; roles; the command-line entry point."""

import random
import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from catalog import sync
from catalog.models import Blob
from cleanup import plan as delete_plan
from cleanup import run as delete_run
from cleanup import tasks as cleanup_tasks
from cleanup.models import AuditEntry, DeleteJob
from devtools.images import ImageSpec, push_image
from devtools.localregistry import free_port
from garbage_collection import collection, exclusion, views
from garbage_collection import tasks as gc_tasks
from garbage_collection.models import GcRun
from registry import bridge
from registry.client import NotFound, RegistryClient, reset_client, sha256_digest
from tests.docker_engine import registry_config

pytestmark = pytest.mark.django_db(transaction=True)

LAYER_BYTES = 300_000


def image(name: str) -> ImageSpec:
    """A shared base layer and one layer of incompressible bytes of its own, so deleting it frees about
    LAYER_BYTES."""
    return ImageSpec(
        layers=[{"etc/os-release": "ID=gc\n"}, {f"app/{name}": random.Random(name).randbytes(LAYER_BYTES)}]
    )


@pytest.fixture
def gc_registry(settings, monkeypatch, dockerd, registry_container, db):
    """The dashboard pointed at a registry container of the test's own, with the docker bridge."""
    monkeypatch.setenv("DOCKER_HOST", dockerd)
    settings.GC_BRIDGE, settings.REGISTRY_CONTAINER, settings.REGISTRY_BINARY = "docker", registry_container.name, ""
    settings.REGISTRY_URL = registry_container.url
    settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = registry_container.username, registry_container.password
    settings.REGISTRY_STORAGE_PATH, settings.GC_TIME_LIMIT = "/var/lib/registry", 60
    reset_client()
    client = registry_container.client()
    return registry_container, client, sync.current_registry()


def pulls(client: RegistryClient, repository: str, tag: str) -> None:
    manifest = client.manifest(repository, tag)
    for blob in manifest.blobs:
        body = client.request("GET", f"/v2/{repository}/blobs/{blob.digest}").content
        assert sha256_digest(body) == blob.digest


def fill_and_delete(client, registry) -> dict[str, str]:
    """Four images; two of them deleted through a delete job. Returns the kept tags' digests."""
    digests = {tag: push_image(client, "team/app", tag, image(tag)).digest for tag in ["a", "b", "c", "d"]}
    sync.sync_repository(client, registry, "team/app")
    choices = [delete_plan.Choice("team/app", tag, digests[tag]) for tag in ["a", "b"]]
    job = delete_run.run(delete_run.create_job(registry, DeleteJob.TAGS, choices, user="t", address=""), client)
    assert job.status == DeleteJob.DONE and job.failed == 0
    return {tag: digests[tag] for tag in ["c", "d"]}


def test_dry_run_preview_confirm_then_the_volume_shrinks_by_the_estimate(gc_registry, client_for):
    container, client, registry = gc_registry
    kept = fill_and_delete(client, registry)
    sync.reconcile(client, registry)  # prunes the deleted images' rows: their blobs' sizes must stay known
    browser = client_for(roles.ADMIN)

    response = browser.post(reverse("browser-gc-dry-run"))
    preview = GcRun.objects.get(dry_run=True)
    assert response.url == reverse("browser-gc-run", args=[preview.pk])
    assert preview.status == GcRun.DONE and preview.exit_code == 0
    assert preview.blobs_eligible >= 4 and preview.manifests_eligible >= 0  # 2 layers, 2 configs (+ manifests)
    assert 2 * LAYER_BYTES <= preview.bytes_estimate < 2 * LAYER_BYTES + 20_000
    page = browser.get(response.url).content.decode()
    assert "Collect now" in page and "blob eligible for deletion" in page  # the raw log, behind a disclosure
    # The blobs it would delete, listed with the sizes the index knows: the two layers among them.
    listed = re.findall(r'<td class="num nowrap">([\d.]+)\xa0KB</td>', page.split('id="eligible"')[1])
    assert sum(1 for size in listed if float(size) * 1024 >= LAYER_BYTES * 0.99) == 2, listed

    assert "make the registry read-only" in page  # what the box to tick says will happen
    unconfirmed = browser.post(reverse("browser-gc-collect", args=[preview.pk]), follow=True)
    assert "Nothing was started" in unconfirmed.content.decode() and not GcRun.objects.filter(dry_run=False).exists()
    response = browser.post(reverse("browser-gc-collect", args=[preview.pk]), {"confirm": "yes"})
    run = GcRun.objects.get(dry_run=False)
    assert run.status == GcRun.DONE, (run.error, run.log)
    assert "Uploads are refused" in run.log and "writable again" in run.log
    # The volume's usage (du of the storage folder) dropped by what the preview said, within du's 4 KB blocks
    # and the manifests' own small files.
    assert abs(run.bytes_freed - preview.bytes_estimate) < 64 * 1024, (run.bytes_freed, preview.bytes_estimate)
    for tag in kept:
        pulls(client, "team/app", tag)
    assert not Blob.objects.filter(digest__in=collection.parse(run.log).eligible).exists()  # forgotten once gone
    entry = AuditEntry.objects.get(action=AuditEntry.GARBAGE_COLLECTION)
    assert (entry.user, entry.outcome, entry.bytes) == ("admin-user", AuditEntry.DONE, run.bytes_freed)
    push_image(client, "team/app", "after", image("after"))  # writable again
    pulls(client, "team/app", "after")
    history = browser.get(reverse("browser-gc")).content.decode()
    assert history.count(reverse("browser-gc-run", args=[run.pk])) == 1
    assert "“Total stored” (" in history and "counts only the layers and configs of tagged images" in history


def test_an_empty_registry_has_nothing_to_collect(gc_registry, client_for):
    browser = client_for(roles.ADMIN)
    browser.post(reverse("browser-gc-dry-run"))
    run = GcRun.objects.get()
    assert run.status == GcRun.DONE and run.blobs_eligible == 0
    page = browser.get(reverse("browser-gc-run", args=[run.pk])).content.decode()
    assert "Nothing to collect" in page and "Collect now" not in page


def test_a_delete_waits_while_a_collection_runs(gc_registry, monkeypatch):
    _container, client, registry = gc_registry
    digest = push_image(client, "team/app", "x", image("x")).digest
    sync.sync_repository(client, registry, "team/app")
    running = GcRun.objects.create(registry=registry, dry_run=False, requested_by="t", status=GcRun.RUNNING)
    monkeypatch.setattr(exclusion, "WAIT_POLL_SECONDS", 0.05)
    monkeypatch.setattr(exclusion, "DELETE_WAIT_FOR_GC_SECONDS", 0.3)

    refused = delete_run.create_job(
        registry, DeleteJob.TAG, [delete_plan.Choice("team/app", "x", digest)], user="t", address=""
    )
    cleanup_tasks.run_delete_job.enqueue(refused.pk)
    refused.refresh_from_db()
    assert refused.status == DeleteJob.FAILED and "still running" in refused.error
    assert client.resolve("team/app", "x") == digest

    monkeypatch.setattr(exclusion, "DELETE_WAIT_FOR_GC_SECONDS", 10)
    finish = threading.Timer(0.5, lambda: GcRun.objects.filter(pk=running.pk).update(status=GcRun.DONE))
    finish.start()
    began = time.monotonic()
    waited = delete_run.create_job(
        registry, DeleteJob.TAG, [delete_plan.Choice("team/app", "x", digest)], user="t", address=""
    )
    cleanup_tasks.run_delete_job.enqueue(waited.pk)
    waited.refresh_from_db()
    assert waited.status == DeleteJob.DONE and time.monotonic() - began >= 0.4
    with pytest.raises(NotFound):
        client.resolve("team/app", "x")


def test_one_collection_at_a_time(gc_registry, client_for):
    _container, _client, registry = gc_registry
    GcRun.objects.create(registry=registry, dry_run=True, requested_by="t", status=GcRun.RUNNING)
    with pytest.raises(exclusion.Busy):
        gc_tasks.start_gc(registry, dry_run=True, user="t")
    response = client_for(roles.ADMIN).post(reverse("browser-gc-dry-run"), follow=True)
    assert "already queued or running" in response.content.decode()
    assert GcRun.objects.count() == 1


def test_the_time_limit_stops_a_run_and_the_registry_is_writable_after(gc_registry, settings, monkeypatch):
    """A command that never ends (the registry binary serving another port, in the real container) in place of
    garbage-collect, with a one-second limit."""
    container, client, registry = gc_registry
    (container.etc / "slow.yml").write_text(registry_config(free_port()))
    monkeypatch.setattr(collection, "command", lambda *_: ["serve", "/etc/docker/registry/slow.yml"])
    settings.GC_TIME_LIMIT = 1
    run = collection.run(GcRun.objects.create(registry=registry, dry_run=False, requested_by="t"))
    assert run.status == GcRun.FAILED and "GC_TIME_LIMIT" in run.error
    push_image(client, "team/app", "after", image("after"))


def test_a_missing_container_fails_the_run_with_the_setting_to_fix(gc_registry, settings):
    _container, _client, registry = gc_registry
    settings.REGISTRY_CONTAINER = "no-such-registry"
    run = collection.run(GcRun.objects.create(registry=registry, dry_run=True, requested_by="t"))
    assert run.status == GcRun.FAILED and "REGISTRY_CONTAINER" in run.error


def test_delete_untagged_is_never_used_on_2x(gc_registry, client_for):
    _container, client, registry = gc_registry
    delete_run.delete_mode(client, registry)  # 2.8: throwaway
    with pytest.raises(ValueError):
        gc_tasks.start_gc(registry, dry_run=True, user="t", delete_untagged=True)
    client_for(roles.ADMIN).post(reverse("browser-gc-dry-run"), {"delete_untagged": "on"})
    run = GcRun.objects.get()
    assert run.delete_untagged is False and "--delete-untagged" not in run.log


def test_the_command_line_runs_a_dry_run(gc_registry, capsys):
    _container, client, registry = gc_registry
    fill_and_delete(client, registry)
    call_command("registry_gc", "--dry-run")
    out = capsys.readouterr().out
    assert "blobs marked" in out and "done:" in out
    assert GcRun.objects.get().requested_by == "cli"


def test_a_daily_schedule_queues_one_run_a_day(gc_registry, settings):
    _container, _client, registry = gc_registry
    settings.GC_SCHEDULE = "off"
    assert gc_tasks.queue_due_gc() is None
    settings.GC_SCHEDULE = "daily"
    first = gc_tasks.queue_due_gc()
    assert first is not None and not first.dry_run
    assert gc_tasks.queue_due_gc() is None


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_only_admins_see_and_start_garbage_collection(client_for, role, settings):
    settings.GC_BRIDGE = "none"
    browser = client_for(role)
    assert browser.get(reverse("browser-gc")).status_code == 403
    assert browser.post(reverse("browser-gc-dry-run")).status_code == 403
    assert reverse("browser-gc") not in browser.get(reverse("browser-home")).content.decode()
    assert GcRun.objects.count() == 0


def test_without_a_bridge_the_page_shows_the_commands(client_for, settings):
    settings.GC_BRIDGE, settings.REGISTRY_CONTAINER, settings.REGISTRY_BINARY = "none", "registry", ""
    browser = client_for(roles.ADMIN)
    page = browser.get(reverse("browser-gc")).content.decode()
    assert "docker exec registry /bin/registry garbage-collect --dry-run /etc/docker/registry/config.yml" in page
    assert browser.get(reverse("browser-gc-dry-run")).status_code == 405
    response = browser.post(reverse("browser-gc-dry-run"), follow=True)
    assert "GC_BRIDGE=none" in response.content.decode() and GcRun.objects.count() == 0


def test_the_home_page_shows_the_registry_disk(gc_registry, client_for, settings):
    settings.GC_DISK_WARN_PERCENT = 1  # any real disk is fuller than that
    page = client_for(roles.ADMIN).get(reverse("browser-home")).content.decode()
    assert 'id="volume"' in page and "filling up" in page and bridge.disk_usage().total_bytes > 0


def test_the_local_bridge_collects_only_once_the_owner_made_the_registry_read_only(own, settings):
    """With GC_BRIDGE=local the dashboard cannot restart the registry: it checks that uploads are refused
    (the registry's owner switched it), collects, and says to switch back and restart."""
    local, client, registry = own
    settings.GC_BRIDGE, settings.REGISTRY_BINARY, settings.GC_TIME_LIMIT = "local", "", 60
    settings.REGISTRY_CONFIG_PATH, settings.REGISTRY_STORAGE_PATH = str(local.config_path), str(local.root / "data")
    kept = fill_and_delete(client, registry)

    refused = collection.run(GcRun.objects.create(registry=registry, dry_run=False, requested_by="t"))
    assert refused.status == GcRun.FAILED and "switch it to read-only first" in refused.error
    assert refused.exit_code is None and "marking" not in refused.log  # garbage-collect never ran
    assert refused.used_after >= refused.used_before

    local.restart(readonly=True)
    run = collection.run(GcRun.objects.create(registry=registry, dry_run=False, requested_by="t"))
    assert run.status == GcRun.DONE, (run.error, run.log)
    assert run.blobs_eligible >= 4 and run.bytes_freed >= 2 * LAYER_BYTES
    assert "switch the registry back to writable and restart it" in run.log
    local.restart(readonly=False)
    for tag in kept:
        pulls(client, "team/app", tag)


def test_the_history_pages_answer_htmx_with_the_history_only(client_for, settings, db):
    settings.GC_BRIDGE = "none"
    registry = sync.current_registry()
    GcRun.objects.bulk_create(
        GcRun(registry=registry, requested_by=f"user-{n}", status=GcRun.DONE) for n in range(views.RUNS_PER_PAGE + 1)
    )
    url = reverse("browser-gc")
    page = client_for(roles.ADMIN).get(url, {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="gc-history")
    body = page.content.decode()
    assert body.lstrip().startswith('<section class="card" id="gc-history">') and "<html" not in body
    assert "user-0" in body and "Page 2 of 2" in body


def test_htmx_polls_a_running_collection(client_for, db):
    registry = sync.current_registry()
    run = GcRun.objects.create(
        registry=registry, dry_run=False, requested_by="t", status=GcRun.RUNNING, log="# Switching the registry"
    )
    browser = client_for(roles.ADMIN)
    poll = browser.get(reverse("browser-gc-run", args=[run.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="gc-run")
    body = poll.content.decode()
    assert poll.status_code == 200 and body.lstrip().startswith('<div id="gc-run"')
    assert 'hx-trigger="every 1s"' in body and "# Switching the registry" in body
    run.status = GcRun.DONE
    run.save()
    body = browser.get(reverse("browser-gc-run", args=[run.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="gc-run")
    assert "hx-trigger" not in body.content.decode()  # finished: the polling stops


def test_a_long_log_shows_its_end_and_downloads_whole(client_for, db, monkeypatch):

    monkeypatch.setattr(views, "LOG_LINES_SHOWN", 3)
    log = "\n".join(f"line {n} <b>" for n in range(10))
    run = GcRun.objects.create(registry=sync.current_registry(), requested_by="t", status=GcRun.DONE, log=log)
    browser = client_for(roles.ADMIN)
    page = browser.get(reverse("browser-gc-run", args=[run.pk])).content.decode()
    assert "line 9 &lt;b&gt;" in page and "line 6 " not in page and "7 earlier lines" in page
    download = browser.get(reverse("browser-gc-log", args=[run.pk]))
    assert download["Content-Type"].startswith("text/plain") and download.content.decode() == log
    assert client_for(roles.MAINTAINER, username="m").get(reverse("browser-gc-log", args=[run.pk])).status_code == 403


def test_a_run_whose_worker_died_does_not_block_the_next(db):
    registry = sync.current_registry()
    silent_since = timezone.now() - timedelta(minutes=2)  # no sign of life for two minutes: its worker is gone
    stuck = GcRun.objects.create(
        registry=registry, requested_by="t", dry_run=False, status=GcRun.RUNNING, heartbeat_at=silent_since
    )
    alive = GcRun.objects.create(
        registry=registry,
        requested_by="t",
        status=GcRun.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    assert exclusion.active(registry) == alive  # its worker is alive: it blocks
    alive.delete()
    assert exclusion.active(registry) is None and exclusion.wait_for_collection(registry, limit=0.1)
    stuck.refresh_from_db()
    assert stuck.status == GcRun.FAILED and "Abandoned" in stuck.error


def test_a_delete_job_whose_worker_died_does_not_hold_up_collection_and_is_ended_by_the_scheduler(db):
    registry = sync.current_registry()
    stuck = DeleteJob.objects.create(
        registry=registry,
        kind=DeleteJob.TAGS,
        requested_by="t",
        status=DeleteJob.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=2),
    )
    log = collection.LogWriter(GcRun.objects.create(registry=registry, requested_by="t"))
    exclusion.wait_for_deletes(registry, log.note, limit=0.1)  # would raise Busy while the job counted as running
    assert cleanup_tasks.end_abandoned_jobs() == [stuck.pk]  # the scheduler's tick
    stuck.refresh_from_db()
    assert stuck.status == DeleteJob.FAILED and "Abandoned" in stuck.error


def test_only_a_collection_that_ran_reports_what_it_freed_and_never_below_zero():
    """A failed run's storage folder still changes (the registry's own files): seen as "Freed -16.0 KB"."""
    failed = GcRun(dry_run=False, status=GcRun.FAILED, used_before=100_000, used_after=116_384)
    grew = GcRun(dry_run=False, status=GcRun.DONE, used_before=100_000, used_after=104_096)
    freed = GcRun(dry_run=False, status=GcRun.DONE, used_before=100_000, used_after=40_000)
    assert (failed.bytes_freed, grew.bytes_freed, freed.bytes_freed) == (None, 0, 60_000)


def test_the_eligible_blobs_name_the_deleted_tags_whose_images_used_them():
    from catalog.models import Manifest, ManifestBlob

    layer = Blob.objects.create(
        digest="sha256:" + "1" * 64, size=5_000_000, media_type="application/vnd.oci.image.layer.v1.tar+gzip"
    )
    image = Manifest.objects.create(digest="sha256:" + "2" * 64, media_type="m", size=5_000_000)
    ManifestBlob.objects.create(manifest=image, blob=layer, position=0)
    AuditEntry.objects.create(
        user="t", action=AuditEntry.DELETE_MANIFEST, repository="team/app", tags=["1.0", "old"], digest=image.digest
    )
    # Deleted by digest outside the dashboard: the registry's report names no tag, so the image is named by digest.
    other = Blob.objects.create(digest="sha256:" + "4" * 64, size=300, media_type="application/octet-stream")
    untagged = Manifest.objects.create(digest="sha256:" + "5" * 64, media_type="m", size=300)
    ManifestBlob.objects.create(manifest=untagged, blob=other, position=0)
    AuditEntry.objects.create(
        user="ci", action=AuditEntry.REGISTRY_DELETE, repository="team/job", tags=[], digest=untagged.digest
    )
    unknown = "sha256:" + "3" * 64
    eligible = [layer.digest, other.digest, image.digest, unknown]
    run = GcRun(log="".join(f"blob eligible for deletion: {blob}\n" for blob in eligible))
    rows = collection.eligible_blobs(run)
    assert [(row.digest, row.size, row.media_type, row.images) for row in rows] == [
        (layer.digest, 5_000_000, layer.media_type, ["team/app:1.0", "team/app:old"]),
        (other.digest, 300, other.media_type, ["team/job@sha256:555555555555"]),
        # The deleted image's own manifest: its length is not indexed, what it was is.
        (image.digest, None, "m", ["team/app:1.0", "team/app:old"]),
        (unknown, None, "", []),
    ]
