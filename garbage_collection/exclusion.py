"""Collections and deletes keep out of each other's way: one collection at a time; a real collection starts once
no delete job is running, and a delete job queued meanwhile waits until the collection ends. A run or job whose
worker stopped giving signs of life (catalog/heartbeat.py) blocks nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from catalog import heartbeat
from catalog.models import Registry
from cleanup import run as delete_run
from cleanup.models import DeleteJob
from cleanup.reasons import english, reason, shown
from garbage_collection.models import GcRun

WAIT_POLL_SECONDS = 1.0
QUEUED_ABANDONED_AFTER = timedelta(hours=1)  # no worker took it
DELETES_WAIT_SECONDS = 600  # a real collection waits this long for running deletes
DELETE_WAIT_FOR_GC_SECONDS = 3600  # a delete queued during a garbage collection starts after it


class Busy(Exception):
    """Another collection is queued or running, or a delete would not end. `why` is a stored reason
    (cleanup/reasons.py): a run records it, and str() says it in the current language."""

    def __init__(self, why) -> None:
        super().__init__(english(why))
        self.why = why

    def __str__(self) -> str:
        return shown(self.why)


def expire_abandoned(registry: Registry) -> None:
    """A run whose worker stopped giving signs of life, or queued for an hour with no worker taking it, is marked
    failed."""
    GcRun.end_abandoned(
        registry,
        Q(status=GcRun.RUNNING) & heartbeat.silent(),
        reason(
            gettext_noop(
                "Abandoned: the worker running it stopped. Check the registry: it may still be read-only, or its "
                "container stopped and renamed …-before-restart-…."
            )
        ),
    )
    GcRun.end_abandoned(
        registry,
        Q(status=GcRun.QUEUED, created_at__lt=timezone.now() - QUEUED_ABANDONED_AFTER),
        reason(gettext_noop("No task worker took it within an hour: is the worker running?")),
    )


def active(registry: Registry) -> GcRun | None:
    """The collection queued or running now, if any."""
    expire_abandoned(registry)
    return registry.gc_runs.filter(status__in=[GcRun.QUEUED, GcRun.RUNNING]).order_by("created_at").first()


def wait_for_deletes(registry: Registry, note: Callable[[dict], None], limit: float = DELETES_WAIT_SECONDS) -> None:
    """A real run starts only once no delete job is running (they change what the registry holds). `note` takes a
    stored reason."""
    deadline = time.monotonic() + limit
    noted = False
    while delete_run.running_jobs(registry).exists():  # a job whose worker died is no reason to wait
        if not noted:
            note(reason(gettext_noop("Waiting for a delete to finish.")))
            noted = True
        if time.monotonic() > deadline:
            kept_running = gettext_noop("A delete kept running for %(minutes)d minutes: not collecting.")
            raise Busy(reason(kept_running, minutes=int(limit // 60)))
        time.sleep(WAIT_POLL_SECONDS)


def wait_for_collection(registry: Registry, limit: float) -> bool:
    """True once no real collection is running; False if one still runs after `limit` seconds."""
    deadline = time.monotonic() + limit
    expire_abandoned(registry)
    while registry.gc_runs.filter(status=GcRun.RUNNING, dry_run=False).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(WAIT_POLL_SECONDS)
    return True


def delete_waits_for_collection(sender, job: DeleteJob, **kwargs) -> dict | None:
    """cleanup.signals.delete_job_starting: a delete job starts once no real collection runs, or fails (the stored
    reason returned)."""
    if not wait_for_collection(job.registry, limit=DELETE_WAIT_FOR_GC_SECONDS):
        return reason(gettext_noop("Garbage collection was still running after an hour."))
    return None
