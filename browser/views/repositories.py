from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from browser import deletion, images, index, tasks
from browser.models import Registry, Repository
from browser.registry import DeleteDisabled, ReadOnly, RegistryError, get_client

REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 50
SYNC_LOCK_SECONDS = 300  # a first sync queued for a repository is not queued again for this long


def render_table_or_page(request, template: str, context: dict, partial: str = "table"):
    """The table alone for htmx's filter, sort and page links; the whole page otherwise (including when
    htmx restores a page from history)."""
    # An htmx request for the whole main area (the "being indexed" poll) wants the page, too.
    use_partial = request.htmx and not request.htmx.history_restore_request and request.htmx.target != "main"
    response = render(request, f"{template}#{partial}" if use_partial else template, context)
    patch_vary_headers(response, ["HX-Request"])  # a cache must not answer a full-page request with a table
    return response


def without_refresh(request) -> str:
    """The same page without ?refresh, so reloading or sorting afterwards reads the fresh index."""
    query = request.GET.copy()
    query.pop("refresh", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


def is_stale(repository: Repository | None) -> bool:
    return (
        repository is None
        or repository.synced_at is None
        or timezone.now() - repository.synced_at >= timedelta(seconds=settings.REGISTRY_CACHE_SECONDS)
    )


def revalidate_catalog(registry: Registry, *, force: bool = False) -> RegistryError | None:
    """Bring the index's list of repositories in step with the catalog when it is older than
    REGISTRY_CACHE_SECONDS. A registry failure is returned when the index can still answer, raised otherwise."""
    key = f"catalog-synced:{registry.url}"
    if not force and cache.get(key):
        return None
    try:
        index.sync_catalog(get_client(), registry)
    except RegistryError as exc:
        if not registry.repositories.exists():
            raise
        return exc
    cache.set(key, True, settings.REGISTRY_CACHE_SECONDS)
    return None


def revalidated(name: str, *, force: bool = False) -> tuple[Repository, RegistryError | None]:
    """The repository's index row, brought up to date as its state needs:
    - Refresh pressed: synced in the request (the user asked to wait for it);
    - never indexed: its sync is queued, and the page says it is being indexed (a first sync of a
      10,000-tag repository reads 30,000 things: no request should wait for that);
    - older than REGISTRY_CACHE_SECONDS: answered from the index at once while a task revalidates it.
    A registry failure is returned when the index has the repository's tags, raised otherwise (the middleware
    shows it); a repository the registry does not know is a 404."""
    registry = index.current_registry()
    repository = registry.repositories.filter(name=name).first()
    indexed = repository is not None and repository.synced_at is not None
    if force:
        try:
            index.sync_repository(get_client(), registry, name)
        except RegistryError as exc:
            if not indexed:
                raise
            return repository, exc
        repository = registry.repositories.filter(name=name).first()
    elif not indexed:
        get_client().tags(name)  # a repository the registry does not know is a 404, at once
        repository, _ = Repository.objects.get_or_create(registry=registry, name=name)
        queue_sync(registry, name, "first", seconds=SYNC_LOCK_SECONDS)
        repository.refresh_from_db()  # an immediate backend has already run it
    elif is_stale(repository):
        queue_sync(registry, name, "stale", seconds=settings.REGISTRY_CACHE_SECONDS or 1)
        repository.refresh_from_db()
    if repository is None:
        raise Http404(_("The registry has no repository named %(name)s.") % {"name": name})
    return repository, None


def queue_sync(registry: Registry, name: str, reason: str, seconds: float) -> None:
    """Queue a sync of the repository unless one was queued for the same reason in the last `seconds`."""
    if cache.add(f"sync-queued:{reason}:{registry.url}:{name}", True, seconds):
        tasks.sync_repository.enqueue(name)


def stale_warning(repository: Repository) -> str:
    when = date_format(timezone.localtime(repository.synced_at), "Y-m-d H:i:s")
    return _("The registry could not be reached; showing the index as of %(time)s.") % {"time": when}


@require_GET
def repository_list(request):
    """Every repository of the index, grouped by namespace, filterable and paginated."""
    registry = index.current_registry()
    failure = revalidate_catalog(registry, force="refresh" in request.GET)
    warning = _("The registry could not be reached; showing the repositories the index holds.") if failure else ""
    if "refresh" in request.GET:
        if warning:
            messages.warning(request, warning)
        return redirect(without_refresh(request))
    query = request.GET.get("q", "").strip()
    repositories = images.repositories_with_counts(registry)
    matching = repositories.filter(name__icontains=query) if query else repositories
    page = Paginator(matching, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "total": registry.repositories.count(), "warning": warning}
    return render_table_or_page(request, "browser/repositories.html", context)


@require_GET
def repository_detail(request, name):
    """A repository's tags from the index, sorted and filtered across all of them, then paginated."""
    repository, failure = revalidated(name, force="refresh" in request.GET)
    if "refresh" in request.GET:
        if failure:
            messages.warning(request, stale_warning(repository))
        return redirect(without_refresh(request))
    sort = request.GET.get("sort") if request.GET.get("sort") in images.SORTS else "created"
    descending = request.GET.get("dir", "asc" if sort == "name" else "desc") == "desc"
    query = request.GET.get("q", "").strip()
    tags = images.plain_tags(repository)
    ordered = images.sort_tags(images.filter_tags(tags, query), sort, descending)
    page = Paginator(ordered, TAGS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = images.tag_rows(repository, page.object_list)
    context = {
        "repository": repository,
        "page": page,
        "total": tags.count() if query else page.paginator.count,
        "query": query,
        "sort": sort,
        "direction": "desc" if descending else "asc",
        "shared": any(row.shared_with for row in page.object_list),
        "warning": stale_warning(repository) if failure else "",
        "selection": request.session.get(f"delete-selection:{repository.name}", []),
        "delete_refusal": delete_refusal(repository.registry),
    }
    return render_table_or_page(request, "browser/repository.html", context)


def delete_refusal(registry: Registry) -> str:
    """The remembered reason deletes are refused (found by the last delete or preview), for a banner."""
    if registry.delete_status == "disabled":
        return deletion.refusal(DeleteDisabled(""))
    if registry.delete_status == "read-only":
        return deletion.refusal(ReadOnly(""))
    return ""


@require_GET
def tag_detail(request, name, tag):
    """One tag: its manifest, each platform's layers and config (live), its relations (from the index)."""
    detail = images.image_detail(get_client(), name, tag)
    registry = index.current_registry()
    # The index's word on this tag is stale when it points elsewhere than the registry does now.
    agrees = registry.repositories.filter(name=name, tags__name=tag, tags__manifest__digest=detail.manifest.digest)
    if not agrees.exists():  # pushed or moved since the index last looked: record just this tag
        index.record_push(get_client(), registry, name, tag, detail.manifest.digest)
    repository = registry.repositories.filter(name=name).first()
    shared_with, signatures = images.index_relations(repository, tag, detail.manifest.digest)
    context = {"repository": name, "detail": detail, "shared_with": shared_with, "signatures": signatures}
    return render(request, "browser/tag.html", context)
