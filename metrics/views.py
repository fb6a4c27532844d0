"""GET /metrics for Prometheus (see README, "Metrics")."""

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from metrics.collector import IndexCollector
from registry import counters


class ProcessCounters:
    """This process's own counters, when there is no multiprocess folder to add up (one process)."""

    def collect(self):
        return counters.REGISTRY.collect()


@login_not_required  # Prometheus is no browser: the bearer token is the protection
@require_GET
def metrics(request):
    """Every metric in Prometheus' text format: the processes' counters and the figures read from the database."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Metrics are off: set METRICS_TOKEN.", status=404, content_type="text/plain")
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        response = HttpResponse("Wrong or missing Authorization header.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    if counters.MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        registry.register(ProcessCounters())
    registry.register(IndexCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
