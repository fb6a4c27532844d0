"""What /metrics reads from the database at scrape time: the index's sizes, the storage figures, reconciles,
notifications, delete jobs, garbage collection, the registry's disk and the task queues.

Computed on each scrape rather than kept in counters, so every web process answers the same whichever one
Prometheus reaches, and nothing has to be kept in step when a worker writes. Each figure is one small query (or a
cache read: the storage figures are the Storage page's, computed once per change of the index), so a scrape stays
fast at any size of registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from catalog import storage, sync, tasks
from catalog.models import Manifest, Registry, Repository, SyncRun, Tag
from cleanup.models import Job
from registry import reachability

PREFIX = "registry_ui_"


def gauge(name: str, documentation: str, value: float | None = None, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=labels or None)
    if value is not None:
        family.add_metric([], value)
    return family


def seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


class IndexCollector:
    """A prometheus_client collector: every figure that lives in the database, read when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        registry = sync.current_registry()
        yield from self.index(registry)
        yield from self.repository_bytes(registry)
        yield from self.reconciles(registry)
        yield from self.notifications(registry)
        yield from self.deletes(registry)
        yield from self.collections(registry)
        yield from self.disk()
        yield from self.queues()

    def index(self, registry: Registry) -> Iterator[Metric]:
        yield gauge("repositories", "Repositories in the index.", Repository.objects.filter(registry=registry).count())
        yield gauge("tags", "Tags in the index.", Tag.objects.filter(repository__registry=registry).count())
        yield gauge(
            "manifests", "Manifests in the index (images, indexes and their platform images).", Manifest.objects.count()
        )
        down_since = reachability.down_since()
        yield gauge(
            "registry_up", "1 while the registry answers the dashboard, 0 since it stopped.", int(not down_since)
        )

    def repository_bytes(self, registry: Registry) -> Iterator[Metric]:
        """The Storage page's figures, computed once per change of the index by the task worker and shared by every
        process: a scrape reads the last ones and, when the index has changed since, queues their computation."""
        figures, current = storage.latest_registry_storage(registry)
        if not current:
            tasks.queue_storage()
            figures, current = storage.latest_registry_storage(registry)  # (done already by an immediate backend)
        yield gauge(
            "storage_figures_current",
            "1 when the storage figures are those of the index as it is now; 0 while they are being computed again.",
            int(current),
        )
        if figures is None:
            return
        yield gauge(
            "stored_bytes", "Bytes of the distinct blobs the tags use (each blob counted once).", figures.total_bytes
        )
        yield gauge("stored_blobs", "Distinct blobs the tags use.", figures.total_blobs)
        referenced = gauge(
            "repository_referenced_bytes",
            "Bytes of the blobs a repository's tags use, each counted once (the largest repositories only: "
            "METRICS_TOP_REPOSITORIES).",
            labels=("repository",),
        )
        unique = gauge(
            "repository_unique_bytes",
            "Bytes of the blobs only this repository uses: what deleting it would free after garbage collection "
            "(the largest repositories only).",
            labels=("repository",),
        )
        for usage in figures.repositories[: settings.METRICS_TOP_REPOSITORIES]:
            referenced.add_metric([usage.name], usage.referenced)
            unique.add_metric([usage.name], usage.unique)
        yield referenced
        yield unique

    def reconciles(self, registry: Registry) -> Iterator[Metric]:
        runs = registry.sync_runs.filter(kind__in=[SyncRun.FULL, SyncRun.LISTS])
        last = gauge(
            "reconcile_last_success_timestamp_seconds",
            "When the last successful reconcile ended (full: every tag asked about; lists: the tags lists only).",
            labels=("kind",),
        )
        duration = gauge(
            "reconcile_last_success_duration_seconds", "How long the last successful reconcile took.", labels=("kind",)
        )
        latest = None
        for kind in (SyncRun.FULL, SyncRun.LISTS):
            run = runs.filter(kind=kind, status=SyncRun.DONE).order_by("-started_at").first()
            if run and run.finished_at:
                last.add_metric([kind], run.finished_at.timestamp())
                duration.add_metric([kind], (run.finished_at - run.started_at).total_seconds())
                latest = max(latest or run.finished_at, run.finished_at)
        yield last
        yield duration
        if latest:
            yield gauge(
                "reconcile_last_success_age_seconds",
                "Seconds since the last successful reconcile ended.",
                (timezone.now() - latest).total_seconds(),
            )
        failed = runs.filter(status=SyncRun.FAILED)
        if latest:
            failed = failed.filter(started_at__gt=latest)
        yield gauge("reconcile_failures", "Reconciles that failed since the last successful one.", failed.count())
        yield gauge("reconcile_running", "1 while a reconcile runs.", int(runs.filter(status=SyncRun.RUNNING).exists()))
        yield gauge(
            "reconcile_interval_seconds",
            "REGISTRY_SYNC_INTERVAL: how often a reconcile should start (0: never by itself).",
            settings.REGISTRY_SYNC_INTERVAL,
        )

    def notifications(self, registry: Registry) -> Iterator[Metric]:
        latest = registry.events.order_by("-pk").values_list("received_at", flat=True).first()
        if latest:
            yield gauge(
                "notifications_last_received_timestamp_seconds",
                "When the last recorded notification (push or delete) arrived.",
                latest.timestamp(),
            )
        pushed = (
            Tag.objects.filter(repository__registry=registry, pushed_known=True)
            .order_by("-pushed_at")
            .values_list("pushed_at", flat=True)
            .first()
        )
        if pushed:
            yield gauge(
                "last_push_timestamp_seconds",
                "When a tag was last seen pushed or moved (by a notification or a reconcile).",
                pushed.timestamp(),
            )

    def deletes(self, registry: Registry) -> Iterator[Metric]:
        jobs = gauge(
            "delete_jobs",
            "Delete jobs (a selection, a filter, a repository, a retention run), by status.",
            labels=("status",),
        )
        found = dict(registry.delete_jobs.values_list("status").annotate(n=Count("pk")))
        for status in (Job.QUEUED, Job.RUNNING, Job.DONE, Job.FAILED):
            jobs.add_metric([status], found.get(status, 0))
        yield jobs
        # From the jobs' own tallies, not the audit log: a scrape's cost must not grow with the log.
        tally = registry.delete_jobs.aggregate(handled=Sum("done", default=0), failed=Sum("failed", default=0))
        tags = gauge(
            "deleted_tags",
            "Tags the dashboard's delete jobs handled, by outcome: done (removed, found gone already, or left alone "
            "because the tag had moved) or failed.",
            labels=("outcome",),
        )
        tags.add_metric(["done"], tally["handled"] - tally["failed"])
        tags.add_metric(["failed"], tally["failed"])
        yield tags

    def collections(self, registry: Registry) -> Iterator[Metric]:
        runs = registry.gc_runs.filter(dry_run=False)
        yield gauge("gc_running", "1 while a garbage collection runs.", int(runs.filter(status=Job.RUNNING).exists()))
        last = runs.filter(status__in=[Job.DONE, Job.FAILED]).order_by("-created_at").first()
        if last is None:
            return
        yield gauge(
            "gc_last_run_timestamp_seconds",
            "When the last garbage collection (not a dry run) ended.",
            seconds(last.finished_at),
        )
        yield gauge(
            "gc_last_run_success",
            "1 when the last garbage collection succeeded, 0 when it failed.",
            int(last.status == Job.DONE),
        )
        yield gauge("gc_last_run_duration_seconds", "How long the last garbage collection took.", last.seconds)
        yield gauge(
            "gc_last_run_freed_bytes",
            "Bytes the last garbage collection freed (the storage folder's size before minus after).",
            last.bytes_freed,
        )

    def disk(self) -> Iterator[Metric]:
        yield gauge(
            "disk_warning_percent",
            "GC_DISK_WARN_PERCENT: the registry's disk is flagged from this share used.",
            settings.GC_DISK_WARN_PERCENT,
        )
        # Measuring takes seconds on a large storage folder (du): the task worker does it, a scrape reads the last
        # measurement and has a new one queued once it is over a minute old.
        volume, fresh = storage.latest_volume()
        if not fresh:
            tasks.queue_volume()
            volume, fresh = storage.latest_volume()  # (done already by an immediate backend)
        if volume is None or volume.usage is None:
            return
        yield gauge("disk_used_bytes", "Bytes used on the registry's disk.", volume.usage.used_bytes)
        yield gauge(
            "disk_free_bytes", "Bytes free on the registry's disk (for ordinary users).", volume.usage.free_bytes
        )
        yield gauge("disk_used_percent", "Share of the registry's disk used, as df counts it.", volume.used_percent)
        yield gauge("disk_storage_bytes", "Bytes the registry's storage folder takes.", volume.usage.storage_bytes)

    def queues(self) -> Iterator[Metric]:
        queued = gauge("tasks_queued", "Background tasks waiting for a worker, by queue.", labels=("queue",))
        for queue, count in queued_tasks().items():
            queued.add_metric([queue], count)
        yield queued


def queued_tasks() -> dict[str, int]:
    """Tasks waiting in each queue, from the task backend in use."""
    counts = dict.fromkeys(settings.TASK_QUEUES, 0)
    if settings.TASKS_BACKEND == "database":
        from django_tasks_db.models import DBTaskResult

        counts |= dict(DBTaskResult.objects.ready().values_list("queue_name").annotate(n=Count("pk")))
    elif settings.TASKS_BACKEND == "rq":
        import django_rq

        counts |= {queue: django_rq.get_queue(queue).count for queue in settings.TASK_QUEUES}
    return counts
