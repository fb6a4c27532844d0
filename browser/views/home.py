from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render
from django.views.decorators.http import require_GET

from browser import collection, images, index
from browser.middleware import explain
from browser.models import Tag
from browser.registry import RegistryError, get_client
from browser.views.repositories import revalidate_catalog


@require_GET
def home(request):
    """The registry at a glance: reachable or not, API version, whether deleting works (live), counts (index)."""
    client = get_client()
    registry = index.current_registry()
    context = {"registry_url": settings.REGISTRY_URL}
    status = 200
    try:
        context["status"] = client.status()
        # A DELETE probe per visit would be noise in the registry's logs: ask once per cache period.
        context["delete_status"] = cache.get_or_set(
            f"delete-status:{client.url}", client.delete_status, settings.REGISTRY_CACHE_SECONDS
        )
        revalidate_catalog(registry)
    except RegistryError as exc:
        context["error"], context["error_title"], context["hint"] = exc, *explain(exc)
        status = exc.status if exc.status >= 500 else 502
    repositories = images.repositories_with_counts(registry)
    context["repository_count"] = repositories.count()
    context["tag_count"] = Tag.objects.filter(repository__registry=registry).count()
    context["empty_repositories"] = repositories.filter(tag_count=0, synced_at__isnull=False).count()
    context["unindexed_repositories"] = repositories.filter(synced_at__isnull=True).count()
    context["largest"] = repositories.filter(tag_count__gt=0).order_by("-tag_count", "name")[:5]
    context["registry"], context["run"] = registry, registry.sync_runs.order_by("-started_at").first()
    context["volume"] = collection.volume()
    return render(request, "browser/home.html", context, status=status)
