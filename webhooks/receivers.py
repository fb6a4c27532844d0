"""What the apps below announce (their signals, sent once their transaction has committed), turned into queued
deliveries. A receiver gathers the facts for the event's body (events.py) and queues it (tasks.py); it never stops
the work that announced it: a failure here is logged, and the delete, collection or reconcile goes on."""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.urls import reverse

from catalog import signals as catalog_signals
from catalog.models import Manifest, RegistryEvent, SyncRun
from cleanup import signals as cleanup_signals
from cleanup.models import DeleteJob
from garbage_collection import signals as gc_signals
from webhooks import events, tasks
from webhooks.models import Endpoint

logger = logging.getLogger(__name__)


def connect() -> None:
    """Called from the app's ready()."""
    post_save.connect(registry_event_saved, sender=RegistryEvent, dispatch_uid="webhooks-registry-event")
    catalog_signals.tag_pushed.connect(tag_pushed, dispatch_uid="webhooks-tag-pushed")
    catalog_signals.reconcile_failed.connect(reconcile_failed, dispatch_uid="webhooks-reconcile-failed")
    catalog_signals.disk_above_warning.connect(disk_above_warning, dispatch_uid="webhooks-disk")
    catalog_signals.scheduler_tick.connect(tasks.queue_due_attempts, dispatch_uid="webhooks-due")
    cleanup_signals.tags_deleted.connect(tags_deleted, dispatch_uid="webhooks-tags-deleted")
    cleanup_signals.delete_job_finished.connect(delete_job_finished, dispatch_uid="webhooks-job-finished")
    gc_signals.collection_finished.connect(collection_finished, dispatch_uid="webhooks-gc")


def wanted(*event_types: str) -> bool:
    """Whether an active endpoint receives any of these types: no facts are gathered for an event nobody wants."""
    return any(set(event_types) & set(point.events) for point in Endpoint.objects.filter(active=True))


def never_raises(receiver):
    @functools.wraps(receiver)
    def wrapped(*args, **kwargs):
        try:
            receiver(*args, **kwargs)
        except Exception:  # a webhook must never fail the work it reports
            logger.exception("Queuing a webhook from %s failed", receiver.__name__)

    return wrapped


def own_account(actor: str) -> bool:
    """The dashboard's own registry account: its writes are the dashboard's deletes (announced by the delete job)
    and the placeholder tags a tag removal on 2.x pushes and deletes at once."""
    return bool(settings.REGISTRY_USERNAME) and actor == settings.REGISTRY_USERNAME


def tag_path(repository: str, tag: str) -> str:
    return reverse("browser-tag", args=[repository, tag])


@never_raises
def tag_pushed(sender, repository: str, tag: str, digest: str, size: int, **signal) -> None:
    if not wanted(events.TAG_PUSHED):
        return
    # Who pushed, as the notification said; the dashboard's own account pushes only 2.x's placeholder tags.
    pushes = RegistryEvent.objects.filter(action="push", repository=repository, tag=tag, digest=digest)
    actor = pushes.order_by("-received_at").values_list("actor", flat=True).first() or ""
    if not own_account(actor):
        tasks.queue_event(events.tag_pushed(repository, tag, digest, size, actor, tag_path(repository, tag)))


@never_raises
def registry_event_saved(sender, instance: RegistryEvent, created: bool, **kwargs) -> None:
    """A delete the registry reported, made past the dashboard (its own deletes are announced by their job)."""
    if not created or instance.action != "delete" or own_account(instance.actor) or not wanted(events.TAG_DELETED):
        return
    size = Manifest.objects.filter(digest=instance.digest).values_list("size", flat=True).first()
    body = events.tag_deleted(instance.repository, instance.tag, instance.digest, size, instance.actor, "registry")
    # Saved in the notification's transaction; robust: a failure is logged, the notification stays recorded.
    transaction.on_commit(lambda: tasks.queue_event(body), robust=True)


@never_raises
def tags_deleted(sender, job: DeleteJob, deleted: list, **signal) -> None:
    """Tags a delete job took from the registry: `deleted` is [(repository, tag, digest, bytes), …]."""
    if not wanted(events.TAG_DELETED):
        return
    for repository, tag, digest, size in deleted:
        tasks.queue_event(events.tag_deleted(repository, tag, digest, size, job.requested_by, "dashboard"))


@never_raises
def delete_job_finished(sender, job: DeleteJob, **signal) -> None:
    kind = events.RETENTION_RUN_FINISHED if job.kind == DeleteJob.RETENTION else events.DELETE_JOB_FINISHED
    if not wanted(kind):
        return
    job.refresh_from_db()  # done and failed are counted in the database
    counts = {"total": job.total, "done": job.done, "failed": job.failed}
    policy = job.policy.repositories if job.policy else ""
    path = reverse("browser-delete-job", args=[job.pk])
    body = events.job_finished(kind, job.pk, job.repository, job.status, counts, job.bytes_estimate, path, policy)
    tasks.queue_event(body)


@never_raises
def collection_finished(sender, run, **signal) -> None:
    if not wanted(events.GC_FINISHED, events.GC_FAILED):
        return
    error = run.error if run.status != run.DONE else ""
    body = events.gc_finished(
        run.pk, run.status, run.blobs_eligible, run.bytes_freed, error, reverse("browser-gc-run", args=[run.pk])
    )
    tasks.queue_event(body)


@never_raises
def disk_above_warning(sender, volume, **signal) -> None:
    if wanted(events.DISK_WARNING):
        usage = volume.usage
        body = events.disk_warning(
            volume.used_percent, volume.warn_percent, usage.used_bytes, usage.free_bytes, reverse("browser-gc")
        )
        tasks.queue_event(body)


@never_raises
def reconcile_failed(sender, run: SyncRun, error: str, **signal) -> None:
    """Once when reconciles start failing: a run that fails after a failed one tells nothing new (a registry down
    for an hour would otherwise post every few minutes). The next success ends the streak."""
    if not wanted(events.RECONCILE_FAILING):
        return
    runs = run.registry.sync_runs.filter(kind__in=[SyncRun.FULL, SyncRun.LISTS]).exclude(pk=run.pk)
    previous = runs.filter(status__in=[SyncRun.DONE, SyncRun.FAILED]).order_by("-finished_at").first()
    if previous is None or previous.status != SyncRun.FAILED:
        tasks.queue_event(events.reconcile_failing(run.pk, run.kind, error, reverse("browser-home")))
