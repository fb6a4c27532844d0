from dataclasses import dataclass

from django.core.paginator import Paginator
from django.http import Http404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from catalog import storage, sync
from catalog.pages import not_modified, page_etag, render_page

REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 50
CHART_BARS = 10

# The chart's geometry, in SVG user units: names right-aligned left of the bars, sizes right of them.
CHART_WIDTH, BARS_LEFT, BARS_WIDTH, ROW_HEIGHT, BAR_HEIGHT = 800, 230, 470, 30, 18
# On a phone the same chart is drawn narrow, each name and size on a line above its bar, so that it fits the screen
# without shrinking its text.
NARROW_WIDTH, NARROW_ROW_HEIGHT, NARROW_TEXT_Y, NARROW_BAR_Y = 340, 44, 13, 20


@dataclass(frozen=True)
class Bar:
    usage: storage.RepositoryUsage
    y: int
    unique_width: float
    shared_width: float

    @property
    def middle(self) -> float:
        return self.y + BAR_HEIGHT / 2

    @property
    def shared_x(self) -> float:
        return BARS_LEFT + self.unique_width

    @property
    def value_x(self) -> float:
        return BARS_LEFT + self.unique_width + self.shared_width + 8


@dataclass(frozen=True)
class NarrowBar:
    usage: storage.RepositoryUsage
    top: int
    unique_width: float
    shared_width: float

    @property
    def text_y(self) -> int:
        return self.top + NARROW_TEXT_Y

    @property
    def y(self) -> int:
        return self.top + NARROW_BAR_Y


def chart(usages: list[storage.RepositoryUsage]) -> dict | None:
    """Bars for the largest repositories (usages come largest first), scaled to the largest."""
    largest = [usage for usage in usages[:CHART_BARS] if usage.referenced]
    if not largest:
        return None
    scale = BARS_WIDTH / largest[0].referenced
    bars = [
        Bar(usage, 6 + n * ROW_HEIGHT, round(usage.unique * scale, 1), round(usage.shared * scale, 1))
        for n, usage in enumerate(largest)
    ]
    narrow_scale = NARROW_WIDTH / largest[0].referenced
    narrow = [
        NarrowBar(
            usage, n * NARROW_ROW_HEIGHT, round(usage.unique * narrow_scale, 1), round(usage.shared * narrow_scale, 1)
        )
        for n, usage in enumerate(largest)
    ]
    return {
        "bars": bars,
        "narrow": {"bars": narrow, "width": NARROW_WIDTH, "height": len(narrow) * NARROW_ROW_HEIGHT},
        "width": CHART_WIDTH,
        "height": len(bars) * ROW_HEIGHT,
        "bars_left": BARS_LEFT,
        "names_right": BARS_LEFT - 10,
        "bar_height": BAR_HEIGHT,
    }


@require_GET
def storage_overview(request):
    """Bytes each repository uses, unique and shared, and the registry's total, from the index."""
    registry = sync.current_registry()
    etag = page_etag(request, registry)
    if unchanged := not_modified(request, etag):
        return unchanged
    summary = storage.registry_storage(registry)
    page = Paginator(summary.repositories, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "registry": registry,
        "summary": summary,
        "page": page,
        "chart": chart(summary.repositories),
        "layers": summary.layers,
    }
    return render_page(request, "catalog/storage.html", context, {"storage-table": "table"}, etag=etag)


@require_GET
def storage_repository_detail(request, name):
    """One repository's tags with their size and what deleting each would free, the most first."""
    registry = sync.current_registry()
    etag = page_etag(request, registry)
    if unchanged := not_modified(request, etag):
        return unchanged
    detail = storage.repository_storage(registry, name)
    if detail is None:
        raise Http404(_("The index has no repository named %(name)s.") % {"name": name})
    page = Paginator(detail.tags, TAGS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"registry": registry, "repository": name, "detail": detail, "page": page, "layers": detail.layers}
    return render_page(request, "catalog/storage.html", context, {"storage-table": "table"}, etag=etag)
