from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render
from django.views.decorators.http import require_GET

from catalog import freshness, queries, storage, sync
from catalog.models import Tag
from registry.client import RegistryError, get_client
from registry.explain import explain


@require_GET
def home(request):
    """The registry at a glance: reachable or not, API version, whether deleting works (live), counts (index)."""
    client, registry = get_client(), sync.current_registry()
    seconds = settings.REGISTRY_CACHE_SECONDS
    context = {"registry_url": settings.REGISTRY_URL}
    status = 200
    # The registry's answers are asked for at once, side by side: a slow registry costs one wait, not three.
    # A DELETE probe per visit would be noise in the registry's logs: it is asked once per cache period.
    calls = [client.status, lambda: cache.get_or_set(f"delete-status:{client.url}", client.delete_status, seconds)]
    catalog_fresh = freshness.catalog_is_fresh(registry)
    if not catalog_fresh:
        calls.append(client.catalog)
    try:
        context["status"], context["delete_status"], *catalog = client.map(lambda call: call(), calls)
        if catalog:
            freshness.catalog_read(registry, catalog[0])
    except RegistryError as exc:
        context["error"], context["error_title"], context["hint"] = exc, *explain(exc)
        status = exc.status if exc.status >= 500 else 502
    repositories = queries.repositories_with_counts(registry)
    context["repository_count"] = repositories.count()
    context["tag_count"] = Tag.objects.filter(repository__registry=registry).count()
    context["empty_repositories"] = repositories.filter(tag_count=0, synced_at__isnull=False).count()
    context["unindexed_repositories"] = repositories.filter(synced_at__isnull=True).count()
    context["largest"] = repositories.filter(tag_count__gt=0).order_by("-tag_count", "name")[:5]
    context.update(queries.index_state(registry))
    context["volume"] = storage.volume()
    return render(request, "catalog/home.html", context, status=status)
