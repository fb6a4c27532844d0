from django.views.decorators.http import require_GET

from catalog import queries, sync
from catalog.pages import render_page

MAX_QUERY_LENGTH = 200


@require_GET
def search(request):
    """One box for the whole index: repositories and tags by name, images by digest prefix or label value."""
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    results = queries.search(sync.current_registry(), query) if query else None
    context = {"query": query, "results": results, "limit": queries.SEARCH_LIMIT}
    return render_page(request, "catalog/search.html", context, {"results": "results"})
