from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from browser import images
from browser.registry import get_client

REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 50


def render_table_or_page(request, template: str, context: dict):
    """The table alone for htmx's filter, sort and page links; the whole page otherwise (including when
    htmx restores a page from history)."""
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, f"{template}#table" if partial else template, context)
    patch_vary_headers(response, ["HX-Request"])  # a cache must not answer a full-page request with a table
    return response


def without_refresh(request) -> str:
    """The same page without ?refresh, so reloading or sorting afterwards reads the fresh cache."""
    query = request.GET.copy()
    query.pop("refresh", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


@require_GET
def repository_list(request):
    """Every repository of the catalog, grouped by namespace, filterable and paginated."""
    if "refresh" in request.GET:
        images.repository_summaries(get_client(), refresh=True)
        return redirect(without_refresh(request))
    query = request.GET.get("q", "").strip()
    summaries = images.repository_summaries(get_client())
    matching = [summary for summary in summaries if query.lower() in summary.name]
    page = Paginator(matching, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "total": len(summaries)}
    return render_table_or_page(request, "browser/repositories.html", context)


@require_GET
def repository_detail(request, name):
    """A repository's tags, sorted and filtered across all of them, then paginated."""
    listing = images.repository_listing(get_client(), name, refresh="refresh" in request.GET)
    if "refresh" in request.GET:
        return redirect(without_refresh(request))
    sort = request.GET.get("sort") if request.GET.get("sort") in images.SORTS else "created"
    descending = request.GET.get("dir", "desc" if sort != "name" else "asc") == "desc"
    query = request.GET.get("q", "")
    rows = images.sort_rows(images.filter_rows(listing.rows, query), sort, descending)
    page = Paginator(rows, TAGS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "repository": name,
        "listing": listing,
        "page": page,
        "query": query,
        "sort": sort,
        "direction": "desc" if descending else "asc",
        "shared_count": sum(1 for row in listing.rows if row.shared_with),
    }
    return render_table_or_page(request, "browser/repository.html", context)


@require_GET
def tag_detail(request, name, tag):
    """One tag: its manifest, each platform's layers and config, and how to pull it."""
    detail = images.image_detail(get_client(), name, tag)
    return render(request, "browser/tag.html", {"repository": name, "detail": detail})
