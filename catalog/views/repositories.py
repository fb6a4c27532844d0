"""The repository list, a repository's tags, and one tag: read from the index, revalidated as catalog/freshness.py
says."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from catalog import detail, freshness, queries, storage, sync
from catalog.models import Registry, Tag
from catalog.pages import not_modified, page_etag, render_page, without_refresh
from registry.client import (
    DeleteDisabled,
    NotFound,
    ReadOnly,
    RegistryError,
    RegistryTimeout,
    RegistryUnreachable,
    get_client,
)
from registry.explain import explain, refusal

REPOSITORIES_PER_PAGE = 50
ALL_REPOSITORIES = 2000  # "show all": one page for a few hundred, still a bound for a huge registry
TAGS_PER_PAGE = 50


@require_GET
def repository_list(request):
    """Every repository of the index, grouped by namespace, filterable, sortable by its figures, paginated."""
    registry = sync.current_registry()
    failure = freshness.revalidate_catalog(registry, force="refresh" in request.GET)
    warning = _("The registry could not be reached; showing the repositories the index holds.") if failure else ""
    if "refresh" in request.GET:
        if warning:
            messages.warning(request, warning)
        return redirect(without_refresh(request))
    figures, current = freshness.storage_figures(registry)
    etag = page_etag(request, registry, warning, current)
    if unchanged := not_modified(request, etag):
        return unchanged
    query, namespace = request.GET.get("q", "").strip(), request.GET.get("namespace", "").strip()
    sort = request.GET.get("sort") if request.GET.get("sort") in queries.REPOSITORY_SORTS else "name"
    descending = request.GET.get("dir", "asc" if sort == "name" else "desc") == "desc"
    rows = storage.with_sizes(queries.repository_rows(registry, query, namespace), figures)
    per_page = ALL_REPOSITORIES if request.GET.get("per_page") == "all" else REPOSITORIES_PER_PAGE
    page = Paginator(queries.sort_repositories(rows, sort, descending), per_page).get_page(request.GET.get("page"))
    names = registry.repositories.values_list("name", flat=True)
    context = {
        "page": page,
        "query": query,
        "namespace": namespace,
        "namespaces": sorted({name.rpartition("/")[0] for name in names} - {""}, key=queries.natural_key),
        "total": len(names),
        "sort": sort,
        "direction": "desc" if descending else "asc",
        "sizes_current": current,
        "sizes_known": figures is not None,
        "warning": warning,
    }
    return render_page(request, "catalog/repositories.html", context, {"repositories": "table"}, etag=etag)


@require_GET
def repository_detail(request, name):
    """A repository's tags from the index, sorted and filtered across all of them, then paginated."""
    repository = freshness.revalidated(name)
    if "refresh" in request.GET:
        freshness.request_refresh(repository)
        return redirect(without_refresh(request))
    refreshing, refresh_error = freshness.refresh_state(repository)
    marker, seen = queries.tags_marker(repository), request.GET.get("seen", "")
    if request.htmx and seen == marker and not refreshing:
        return HttpResponse(status=204)  # the open page's poll: nothing changed, nothing to swap
    etag = page_etag(request, repository.registry, refreshing, refresh_error, repository.synced_at, marker)
    if unchanged := not_modified(request, etag):
        return unchanged
    sort = request.GET.get("sort") if request.GET.get("sort") in queries.SORTS else "created"
    descending = request.GET.get("dir", "asc" if sort == "name" else "desc") == "desc"
    query = request.GET.get("q", "").strip()
    tags = queries.plain_tags(repository)
    ordered = queries.sort_tags(queries.filter_tags(tags, query), sort, descending)
    page = Paginator(ordered, TAGS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = queries.tag_rows(repository, page.object_list)
    context = {
        "repository": repository,
        "page": page,
        "total": tags.count() if query else page.paginator.count,
        "query": query,
        "sort": sort,
        "direction": "desc" if descending else "asc",
        "shared": any(row.shared_with for row in page.object_list),
        "unknown_pushed": any(not row.pushed_known for row in page.object_list),
        "marker": marker,
        "fresh_since": queries.marker_time(seen) if seen else None,  # rows written since are highlighted
        "refreshing": refreshing,
        "warning": freshness.stale_warning(repository) if refresh_error else "",
        "delete_refusal": delete_refusal(repository.registry),
    }
    return render_page(request, "catalog/repository.html", context, {"tags": "table"}, etag=etag)


def delete_refusal(registry: Registry) -> str:
    """The remembered reason deletes are refused (found by the last delete or preview), for a banner."""
    if registry.delete_status == "disabled":
        return refusal(DeleteDisabled(""))
    if registry.delete_status == "read-only":
        return refusal(ReadOnly(""))
    return ""


@require_GET
def tag_detail(request, name, tag):
    """One tag: its manifest, each platform's layers and config (live), its relations (from the index)."""
    registry = sync.current_registry()
    try:
        image = detail.image_detail(get_client(), name, tag)
    except (RegistryUnreachable, RegistryTimeout) as exc:
        return indexed_tag(request, registry, name, tag, exc)
    except NotFound:
        sync.forget_tag(registry, name, tag)  # deleted behind the index's back: the index agrees now
        return render(request, "catalog/tag_gone.html", {"repository": name, "tag": tag}, status=404)
    # The index's word on this tag is stale when it points elsewhere than the registry does now.
    agrees = registry.repositories.filter(name=name, tags__name=tag, tags__manifest__digest=image.manifest.digest)
    if not agrees.exists():  # pushed or moved since the index last looked: record just this tag
        sync.record_push(get_client(), registry, name, tag, image.manifest.digest)
    repository = registry.repositories.filter(name=name).first()
    shared_with, signatures = queries.index_relations(repository, tag, image.manifest.digest)
    # A multi-platform image shows one platform at a time, chosen by links (tabs) that need no JavaScript.
    chosen = next((one for one in image.images if one.platform == request.GET.get("platform")), None)
    shown = [chosen or image.images[0]] if len(image.images) > 1 else image.images
    context = {
        "repository": name,
        "detail": image,
        "shown_images": shown,
        "shared_with": shared_with,
        "signatures": signatures,
    }
    return render(request, "catalog/tag.html", context)


def indexed_tag(request, registry: Registry, name: str, tag: str, failure: RegistryError):
    """The tag page while the registry does not answer: the index's word on the tag, said as such; the error
    page when the index does not have the tag either."""
    row = Tag.objects.select_related("manifest", "repository").filter(
        repository__registry=registry, repository__name=name, name=tag
    )
    if (indexed := row.first()) is None:
        raise failure
    title, _hint = explain(failure)
    context = {"repository": indexed.repository, "tag": indexed, "error_title": title, "error_message": failure.message}
    return render(request, "catalog/tag_indexed.html", context)
