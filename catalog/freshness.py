"""How fresh the index must be for a page, and what a visit does about it: answer from the index at once and queue
a revalidation in the background; Refresh queues one too, and the page shows its progress and outcome. No page
waits for a repository's sync. The sync engine itself is catalog/sync.py; this module sits above
catalog/tasks.py, which queues its work."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from catalog import storage, sync, tasks
from catalog.models import Registry, Repository
from registry.client import RegistryError, get_client

SYNC_LOCK_SECONDS = 300  # a first sync queued for a repository is not queued again for this long


def is_stale(repository: Repository | None) -> bool:
    return (
        repository is None
        or repository.synced_at is None
        or timezone.now() - repository.synced_at >= timedelta(seconds=settings.REGISTRY_CACHE_SECONDS)
    )


def catalog_is_fresh(registry: Registry) -> bool:
    return bool(cache.get(f"catalog-synced:{registry.url}"))


def catalog_read(registry: Registry, names: list[str]) -> None:
    """The catalog was read (names): the index's repositories follow it, and it counts as fresh for a while."""
    sync.apply_catalog(registry, names)
    cache.set(f"catalog-synced:{registry.url}", True, settings.REGISTRY_CACHE_SECONDS)


def revalidate_catalog(registry: Registry, *, force: bool = False) -> RegistryError | None:
    """Bring the index's list of repositories in step with the catalog when it is older than
    REGISTRY_CACHE_SECONDS. A registry failure is returned when the index can still answer, raised otherwise."""
    if not force and catalog_is_fresh(registry):
        return None
    try:
        catalog_read(registry, get_client().catalog())
    except RegistryError as exc:
        if not registry.repositories.exists():
            raise
        return exc
    return None


def revalidated(name: str) -> Repository:
    """The repository's index row, brought up to date as its state needs:
    - never indexed: its sync is queued, and the page says it is being indexed (a first sync of a
      10,000-tag repository reads 30,000 things: no request should wait for that);
    - older than REGISTRY_CACHE_SECONDS: answered from the index at once while a task reads its tags list again
      (one request: tags added and removed; a moved tag is told by its push's notification, and found by the
      reconcile's sweep of HEADs without one).
    A repository the registry does not know is a 404."""
    registry = sync.current_registry()
    repository = registry.repositories.filter(name=name).first()
    if repository is None or repository.synced_at is None:
        get_client().tags(name)  # a repository the registry does not know is a 404, at once
        repository, _created = Repository.objects.get_or_create(registry=registry, name=name)
        queue_sync(registry, name, "first", seconds=SYNC_LOCK_SECONDS)
        repository.refresh_from_db()  # an immediate backend has already run it
    elif is_stale(repository):
        queue_sync(registry, name, "stale", seconds=settings.REGISTRY_CACHE_SECONDS or 1)
        repository.refresh_from_db()
    if repository is None:
        raise Http404(_("The registry has no repository named %(name)s.") % {"name": name})
    return repository


def request_refresh(repository: Repository) -> None:
    """Refresh pressed: a task syncs the repository; the page shows its progress, then its outcome."""
    cache.set(
        tasks.refresh_key(repository.registry, repository.name),
        {"requested": timezone.now(), "error": ""},
        tasks.REFRESH_REMEMBERED_SECONDS,
    )
    tasks.refresh_repository.enqueue(repository.name)


def refresh_state(repository: Repository) -> tuple[bool, str]:
    """Whether a Refresh of the repository is still running, and why the last one failed ("" when it did not)."""
    state = cache.get(tasks.refresh_key(repository.registry, repository.name))
    if not state:
        return False, ""
    if state["error"]:
        return False, state["error"]
    return repository.synced_at is None or repository.synced_at < state["requested"], ""


def queue_sync(registry: Registry, name: str, reason: str, seconds: float) -> None:
    """Queue a sync of the repository unless one was queued for the same reason in the last `seconds`. A stale
    page's costs the registry its tags list (whether a tag moved is the reconcile's sweep to find); a first one
    reads everything."""
    if cache.add(f"sync-queued:{reason}:{registry.url}:{name}", True, seconds):
        (tasks.check_repository if reason == "stale" else tasks.sync_repository).enqueue(name)


def stale_warning(repository: Repository) -> str:
    when = date_format(timezone.localtime(repository.synced_at), "Y-m-d H:i:s")
    return _("The registry could not be reached; showing the index as of %(time)s.") % {"time": when}


def storage_figures(registry: Registry) -> tuple[storage.RegistryStorage | None, bool]:
    """The storage figures as last computed, and whether they are the index's as it is now; when not, they are
    computed again in the background (a list must not wait seconds for them) and the last ones stand meanwhile."""
    figures, current = storage.latest_registry_storage(registry)
    if not current:
        tasks.queue_storage()
        figures, current = storage.latest_registry_storage(registry)  # (done already by an immediate backend)
    return figures, current
