from django.views.decorators.http import require_GET

from browser import images, index
from browser.views.repositories import render_table_or_page

MAX_QUERY_LENGTH = 200


@require_GET
def search(request):
    """One box for the whole index: repositories and tags by name, images by digest prefix or label value."""
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    results = images.search(index.current_registry(), query) if query else None
    context = {"query": query, "results": results, "limit": images.SEARCH_LIMIT}
    return render_table_or_page(request, "browser/search.html", context, partial="results")
