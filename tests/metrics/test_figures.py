"""The figures /metrics reads from the database: reconciles, delete jobs, garbage collection, the disk, the queues.
No registry: the rows are made here as the engines write them."""

from datetime import timedelta

import pytest
from django.tasks import task
from django.utils import timezone

from catalog import sync
from catalog.models import SyncRun
from cleanup.models import DeleteJob, Job
from garbage_collection.models import GcRun
from tests.metrics.helpers import TOKEN, scrape, value


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


@task
def nothing() -> None:
    """A task to queue."""


def run(kind: str, status: str, minutes_ago: float, took: float = 30) -> SyncRun:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return SyncRun.objects.create(
        registry=sync.current_registry(),
        kind=kind,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=took),
    )


@pytest.mark.django_db
def test_reconciles_tell_when_one_last_succeeded_and_how_often_they_failed_since(client, metrics_on, settings):
    settings.REGISTRY_SYNC_INTERVAL = 600
    samples = scrape(client)
    assert value(samples, "registry_ui_reconcile_failures") == 0
    assert value(samples, "registry_ui_reconcile_last_success_age_seconds") is None  # never succeeded: no age

    full = run(SyncRun.FULL, SyncRun.DONE, minutes_ago=120, took=42)
    run(SyncRun.FULL, SyncRun.FAILED, minutes_ago=200)  # before the success: forgotten
    lists = run(SyncRun.LISTS, SyncRun.DONE, minutes_ago=60, took=3)
    run(SyncRun.LISTS, SyncRun.FAILED, minutes_ago=50)
    run(SyncRun.FULL, SyncRun.FAILED, minutes_ago=40)
    run(SyncRun.REPOSITORY, SyncRun.FAILED, minutes_ago=30)  # one repository's sync is no reconcile
    samples = scrape(client)
    assert value(samples, "registry_ui_reconcile_failures") == 2
    assert value(samples, "registry_ui_reconcile_last_success_duration_seconds", kind="full") == 42
    assert value(samples, "registry_ui_reconcile_last_success_duration_seconds", kind="lists") == 3
    assert value(samples, "registry_ui_reconcile_last_success_timestamp_seconds", kind="full") == pytest.approx(
        full.finished_at.timestamp()
    )
    age = value(samples, "registry_ui_reconcile_last_success_age_seconds")
    assert (
        (timezone.now() - lists.finished_at).total_seconds() - 5
        < age
        <= (timezone.now() - lists.finished_at).total_seconds()
    )
    assert value(samples, "registry_ui_reconcile_interval_seconds") == 600
    assert value(samples, "registry_ui_reconcile_running") == 0


@pytest.mark.django_db
def test_delete_jobs_and_their_tags_are_counted_by_outcome(client, metrics_on):
    registry = sync.current_registry()
    DeleteJob.objects.create(
        registry=registry, kind=DeleteJob.TAGS, requested_by="alice", status=Job.DONE, total=6, done=6, failed=1
    )
    DeleteJob.objects.create(
        registry=registry, kind=DeleteJob.TAG, requested_by="bob", status=Job.FAILED, total=1, done=1, failed=1
    )
    DeleteJob.objects.create(
        registry=registry, kind=DeleteJob.TAGS, requested_by="bob", status=Job.RUNNING, total=9, done=4
    )
    DeleteJob.objects.create(registry=registry, kind=DeleteJob.TAG, requested_by="bob", status=Job.QUEUED, total=1)
    DeleteJob.objects.create(registry=registry, kind=DeleteJob.TAGS, requested_by="bob", status=DeleteJob.DRAFT)
    samples = scrape(client)
    jobs = {
        status: value(samples, "registry_ui_delete_jobs", status=status)
        for status in ("queued", "running", "done", "failed")
    }
    assert jobs == {"queued": 1, "running": 1, "done": 1, "failed": 1}  # a draft is no job yet
    tags = {outcome: value(samples, "registry_ui_deleted_tags", outcome=outcome) for outcome in ("done", "failed")}
    assert tags == {"done": 5 + 0 + 4, "failed": 2}


@pytest.mark.django_db
def test_the_last_collection_tells_its_time_result_duration_and_bytes_freed(client, metrics_on):
    registry = sync.current_registry()
    assert value(scrape(client), "registry_ui_gc_last_run_success") is None  # none yet
    now = timezone.now()
    GcRun.objects.create(
        registry=registry,
        requested_by="carol",
        dry_run=False,
        status=Job.DONE,
        created_at=now - timedelta(hours=2),
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2) + timedelta(seconds=5),
        used_before=10_000,
        used_after=4_000,
    )
    samples = scrape(client)
    assert value(samples, "registry_ui_gc_last_run_success") == 1
    assert value(samples, "registry_ui_gc_last_run_duration_seconds") == 5
    assert value(samples, "registry_ui_gc_last_run_freed_bytes") == 6_000
    failed = GcRun.objects.create(
        registry=registry,
        requested_by="carol",
        dry_run=False,
        status=Job.FAILED,
        created_at=now - timedelta(minutes=5),
        started_at=now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=4),
    )
    GcRun.objects.create(
        registry=registry,
        requested_by="carol",
        dry_run=True,
        status=Job.DONE,
        created_at=now,
        started_at=now,
        finished_at=now,
    )  # a dry run collects nothing: not the last one
    samples = scrape(client)
    assert value(samples, "registry_ui_gc_last_run_success") == 0
    assert value(samples, "registry_ui_gc_last_run_timestamp_seconds") == pytest.approx(failed.finished_at.timestamp())
    assert value(samples, "registry_ui_gc_last_run_duration_seconds") == 60
    assert value(samples, "registry_ui_gc_last_run_freed_bytes") is None


@pytest.mark.django_db
def test_the_registry_disk_is_measured_through_the_bridge(client, metrics_on, settings, tmp_path):
    settings.GC_DISK_WARN_PERCENT = 75
    settings.GC_BRIDGE = "none"
    samples = scrape(client)
    assert value(samples, "registry_ui_disk_used_bytes") is None  # nothing can measure it
    assert value(samples, "registry_ui_disk_warning_percent") == 75
    settings.GC_BRIDGE, settings.REGISTRY_BINARY, settings.REGISTRY_STORAGE_PATH = "local", "", str(tmp_path)
    (tmp_path / "blob").write_bytes(b"x" * 100_000)
    samples = scrape(client)
    used, free = value(samples, "registry_ui_disk_used_bytes"), value(samples, "registry_ui_disk_free_bytes")
    assert used > 0 and free > 0
    assert value(samples, "registry_ui_disk_used_percent") == pytest.approx(100 * used / (used + free))
    assert value(samples, "registry_ui_disk_storage_bytes") >= 100_000


@pytest.mark.django_db
def test_queued_tasks_are_counted_by_queue(client, metrics_on, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    before = scrape(client)  # (which queues the storage figures' computation once)
    nothing.enqueue()
    nothing.enqueue()
    nothing.using(queue_name="notifications").enqueue()
    after = scrape(client)
    for queue, added in (("default", 2), ("notifications", 1)):
        grew = value(after, "registry_ui_tasks_queued", queue=queue) - value(
            before, "registry_ui_tasks_queued", queue=queue
        )
        assert grew == added


@pytest.mark.django_db
def test_a_scrape_never_waits_for_the_disk_to_be_measured(client, metrics_on, settings, tmp_path):
    """du over a large storage folder takes seconds: the task worker measures, a scrape gives the last measurement
    and has a new one queued once it is over a minute old."""
    from django.core.cache import cache
    from django_tasks_db.models import DBTaskResult

    from catalog import tasks as catalog_tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    settings.GC_BRIDGE, settings.REGISTRY_BINARY, settings.REGISTRY_STORAGE_PATH = "local", "", str(tmp_path)

    def measurements_queued() -> int:
        return DBTaskResult.objects.filter(task_path__endswith="measure_volume").count()

    assert value(scrape(client), "registry_ui_disk_used_bytes") is None  # never measured: nothing to give yet
    assert measurements_queued() == 1
    catalog_tasks.measure_volume.call()  # what the task worker does
    assert value(scrape(client), "registry_ui_disk_used_bytes") > 0
    assert measurements_queued() == 1  # fresh: nothing queued

    cache.delete("registry-volume")  # a minute later
    assert value(scrape(client), "registry_ui_disk_used_bytes") > 0  # the last measurement, meanwhile
    assert measurements_queued() == 2
