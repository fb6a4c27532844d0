"""Garbage collection's background work on Django's Tasks framework: every run is queued here.

Nothing below this module imports it: views and the scheduler queue through it, and it calls collection.py.
"""

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from catalog import schedule, sync
from catalog.models import Registry
from garbage_collection import collection, exclusion
from garbage_collection.exclusion import Busy
from garbage_collection.models import GcRun


@task
def run_gc(run_id: int) -> str:
    """A garbage collection (dry or real) through the bridge; returns its final status."""
    run = GcRun.objects.select_related("registry").get(pk=run_id)
    if run.status != GcRun.QUEUED:
        return run.status
    return collection.run(run).status


def start_gc(registry: Registry, **options) -> GcRun:
    """Queue a run (options as collection.new_run takes them); Busy when one is queued or running already. The run
    and its task, or neither: a server that dies between the two must not leave a run nothing starts."""
    with transaction.atomic():
        run = collection.new_run(registry, **options)
        run_gc.enqueue(run.pk)
    return run


def queue_due_gc(now=None, **signal) -> GcRun | None:
    """The scheduler's tick (catalog.signals.scheduler_tick): runs whose worker stopped are marked failed, and a
    real run is queued when GC_SCHEDULE says one is due."""
    registry = sync.current_registry()
    exclusion.expire_abandoned(registry)
    if settings.GC_BRIDGE == "none":
        return None
    last = registry.gc_runs.filter(dry_run=False).order_by("-created_at").first()
    if not schedule.is_due(settings.GC_SCHEDULE, last.created_at if last else None, now or timezone.now()):
        return None
    try:
        return start_gc(registry, dry_run=False, user="schedule")
    except Busy:
        return None
