from django.views.decorators.http import require_GET

from catalog import queries, sync
from catalog.pages import not_modified, page_etag, render_page

MAX_QUERY_LENGTH = 200


@require_GET
def search(request):
    """One box for the whole index: repositories and tags by name, images by digest prefix or label value."""
    registry = sync.current_registry()
    etag = page_etag(request, registry)
    if unchanged := not_modified(request, etag):
        return unchanged
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    results = queries.search(registry, query) if query else None
    context = {"query": query, "results": results, "limit": queries.SEARCH_LIMIT}
    return render_page(request, "catalog/search.html", context, {"results": "results"}, etag=etag)
