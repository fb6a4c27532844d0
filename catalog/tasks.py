"""The index's background work on Django's Tasks framework: reconciles and the updates notifications ask for.

Tasks take only JSON-friendly arguments and always build their registry client from settings, so the
same code runs in the database backend's worker, in RQ's, or immediately in tests. This module calls the
sync engine; nothing below it imports it (the freshness policy and the views queue work through it).
"""

import time
from datetime import datetime

from django.core.cache import cache
from django.tasks import task
from django.utils.dateparse import parse_datetime

from catalog import storage, sync
from catalog.models import Registry, SyncRun
from registry import counters
from registry.client import RegistryError, get_client

REFRESH_REMEMBERED_SECONDS = 600
TAG_LINK_PAUSES = (
    0.1,
    0.3,
    1.0,
)  # seconds between asks about a pushed tag that answers 404  # how long a Refresh's outcome is kept for its page


QUEUED_KEY = "reconcile-queued"  # a full reconcile asked for from a page, until its run starts (the card says so)
QUEUED_SECONDS = 120


@task
def reconcile_registry(verify: bool = True) -> int:
    """A reconcile (see sync.reconcile); returns the SyncRun's id."""
    if verify:
        cache.delete(QUEUED_KEY)
    return sync.reconcile(get_client(), sync.current_registry(), verify=verify).pk


@task
def sync_repository(name: str) -> int:
    """Bring one repository in step (tags list, a HEAD per tag, new digests only)."""
    return sync.sync_repository(get_client(), sync.current_registry(), name)


@task
def check_repository(name: str) -> int:
    """A stale page's check: the tags list only (tags added and removed), one request when nothing was added.
    Moved tags reach the index by the push's notification, or at the next reconcile."""
    return sync.sync_repository(get_client(), sync.current_registry(), name, verify=False)


def refresh_key(registry: Registry, name: str) -> str:
    return f"refresh:{registry.url}:{name}"


@task
def refresh_repository(name: str) -> int:
    """A repository's Refresh button: sync it, and keep a failure for the page to tell (see freshness.py)."""
    registry = sync.current_registry()
    try:
        return sync.sync_repository(get_client(), registry, name)
    except RegistryError as exc:
        key = refresh_key(registry, name)
        cache.set(key, {**(cache.get(key) or {}), "error": exc.message}, REFRESH_REMEMBERED_SECONDS)
        return 0


@task(queue_name="notifications")
def apply_push(repository: str, tag: str, digest: str, timestamp: str = "") -> None:
    """A tag was pushed: index its digest if new and point the tag at it. Events arrive late and out of
    order, so the tag is asked about first (one HEAD): a tag deleted or moved since is recorded as it is now,
    not as the event says."""
    client, registry = get_client(), sync.current_registry()
    try:
        current = sync.resolve_or_none(client, repository, tag)
        for pause in TAG_LINK_PAUSES:  # the registry posts a push before it writes the tag: a 404 may be too early
            if current is not None:
                break
            time.sleep(pause)
            current = sync.resolve_or_none(client, repository, tag)
        if current is None:
            sync.forget_tag(registry, repository, tag)
            counters.count_applied("push")
            return
        pushed_at = parse_datetime(timestamp or "") if current == digest else None
        sync.record_push(client, registry, repository, tag, current, pushed_at)
        counters.count_applied("push")
    except RegistryError:  # read the whole repository again, in the queue for long work
        sync_repository.enqueue(repository)


@task(queue_name="notifications")
def apply_delete(repository: str, digest: str, tag: str = "") -> None:
    sync.record_delete(get_client(), sync.current_registry(), repository, digest, tag)
    counters.count_applied("delete")


def start_reconcile(*, verify: bool = True, not_since: datetime | None = None) -> bool:
    """Queue a reconcile (full, or the tags lists only) unless one of its kind is running, or, with `not_since`,
    began since then; says whether one was queued. A run whose worker stopped does not count, and is marked
    failed."""
    registry = sync.current_registry()
    sync.end_abandoned(registry)
    runs = registry.sync_runs.filter(kind=SyncRun.FULL if verify else SyncRun.LISTS)
    if runs.filter(status=SyncRun.RUNNING).exists():
        return False
    if not_since and runs.filter(started_at__gte=not_since).exists():
        return False
    if verify:
        cache.set(QUEUED_KEY, True, QUEUED_SECONDS)
    reconcile_registry.enqueue(verify=verify)
    return True


STORAGE_QUEUED_SECONDS = 300  # one computation queued at a time (it takes seconds at 100,000 tags)


@task
def compute_storage() -> None:
    """The storage figures for the index as it is now, for the pages that only read them (the repository list)."""
    cache.delete("storage-queued")
    storage.registry_storage(sync.current_registry())


def queue_storage() -> None:
    if cache.add("storage-queued", True, STORAGE_QUEUED_SECONDS):
        compute_storage.enqueue()


VOLUME_QUEUED_SECONDS = 300  # one measurement queued at a time


@task
def measure_volume() -> None:
    """The registry's disk, measured for the readers that only take the last measurement (/metrics)."""
    cache.delete("volume-queued")
    storage.volume()


def queue_volume() -> None:
    if cache.add("volume-queued", True, VOLUME_QUEUED_SECONDS):
        measure_volume.enqueue()
