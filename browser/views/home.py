from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render
from django.views.decorators.http import require_GET

from browser import images
from browser.middleware import explain
from browser.registry import RegistryError, get_client


@require_GET
def home(request):
    """The registry at a glance: reachable or not, API version, whether deleting works, counts."""
    client = get_client()
    context = {"registry_url": settings.REGISTRY_URL}
    try:
        context["status"] = client.status()
        # A DELETE probe per visit would be noise in the registry's logs: ask once per cache period.
        context["delete_status"] = cache.get_or_set(
            f"delete-status:{client.url}", client.delete_status, settings.REGISTRY_CACHE_SECONDS
        )
        summaries = images.repository_summaries(client)
    except RegistryError as exc:
        context["error"], context["error_title"], context["hint"] = exc, *explain(exc)
        return render(request, "browser/home.html", context, status=exc.status if exc.status >= 500 else 502)
    context["repository_count"] = len(summaries)
    context["tag_count"] = sum(summary.tag_count for summary in summaries)
    context["empty_repositories"] = sum(1 for summary in summaries if summary.tag_count == 0)
    context["largest"] = sorted(summaries, key=lambda summary: -summary.tag_count)[:5]
    return render(request, "browser/home.html", context)
