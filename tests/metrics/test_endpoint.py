"""GET /metrics: who may read it, and what it says about an index of the real registry."""

import json

import pytest
from django.urls import reverse

from catalog import storage, sync
from registry.client import get_client
from tests.metrics.helpers import TOKEN, scrape, value


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.mark.django_db
def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert b"METRICS_TOKEN" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, f"bearer  {TOKEN}"],
)
def test_a_missing_or_wrong_token_is_refused(client, metrics_on, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"registry_ui" not in response.content


@pytest.mark.django_db
def test_only_get_reads_the_metrics(client, metrics_on):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


@pytest.mark.django_db
def test_the_index_figures_are_the_registry_s_own(client, metrics_on, registry, settings):
    """Tags and repositories as the registry lists them; bytes as the Storage page counts them, for the largest
    repositories only."""
    registry_client = get_client()
    sync.reconcile(registry_client, sync.current_registry())
    names = registry_client.catalog()
    tags = sum(len(registry_client.tags(name)) for name in names)
    settings.METRICS_TOP_REPOSITORIES = 3
    samples = scrape(client)
    assert tags > 1500  # the fixtures' big repository is in it
    assert value(samples, "registry_ui_tags") == tags
    assert value(samples, "registry_ui_repositories") == len(names)
    assert value(samples, "registry_ui_manifests") > 1500
    assert value(samples, "registry_ui_registry_up") == 1

    figures = storage.registry_storage(sync.current_registry())
    referenced = {
        dict(labels)["repository"]: number
        for (name, labels), number in samples.items()
        if name == "registry_ui_repository_referenced_bytes"
    }
    assert referenced == {usage.name: usage.referenced for usage in figures.repositories[:3]}
    assert len(referenced) == 3
    largest = figures.repositories[0]
    assert value(samples, "registry_ui_repository_unique_bytes", repository=largest.name) == largest.unique
    assert value(samples, "registry_ui_stored_bytes") == figures.total_bytes > 0
    assert value(samples, "registry_ui_storage_figures_current") == 1


@pytest.mark.django_db
def test_each_registry_request_is_counted_with_its_time(client, metrics_on, registry):
    before = scrape(client)
    get_client().tags("shop/api")
    get_client().tags("shop/api")
    with pytest.raises(Exception):  # noqa: B017  any error: the request is what is counted
        get_client().tags("no/such-repository")
    after = scrape(client)

    def grew(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grew("registry_ui_registry_requests_total", method="GET", operation="tags", status="200") == 2
    assert grew("registry_ui_registry_requests_total", method="GET", operation="tags", status="404") == 1
    assert grew("registry_ui_registry_request_duration_seconds_count", operation="tags") == 3
    assert grew("registry_ui_registry_request_duration_seconds_bucket", operation="tags", le="+Inf") == 3


@pytest.mark.django_db
def test_an_unreachable_registry_is_counted_as_such(client, metrics_on):
    before = scrape(client)
    with pytest.raises(Exception):  # noqa: B017
        get_client().catalog()  # the discard port: nothing listens
    after = scrape(client)
    labels = {"method": "GET", "operation": "catalog", "status": "unreachable"}
    assert (value(after, "registry_ui_registry_requests_total", **labels) or 0) - (
        value(before, "registry_ui_registry_requests_total", **labels) or 0
    ) == 1
    assert value(after, "registry_ui_registry_up") == 0


@pytest.mark.django_db
def test_notifications_received_applied_and_duplicated_are_counted(
    client, metrics_on, registry, registry_fixtures, settings
):
    settings.REGISTRY_NOTIFICATIONS_SECRET = "notify-secret"
    event = {
        "id": "metrics-event-1",
        "timestamp": "2026-01-02T03:04:05Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "repository": "shop/api",
            "tag": "1.10.0",
            "digest": registry_fixtures.api_digest,
        },
    }
    pull = {**event, "id": "metrics-event-2", "action": "pull"}
    before = scrape(client)
    for body in ({"events": [event, pull]}, {"events": [event]}):
        response = client.post(
            reverse("browser-notifications"),
            json.dumps(body),
            content_type="application/vnd.docker.distribution.events.v1+json",
            headers={"Authorization": "Bearer notify-secret"},
        )
        assert response.status_code == 200
    after = scrape(client)

    def grew(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grew("registry_ui_notifications_received_total", action="push") == 2
    assert grew("registry_ui_notifications_received_total", action="pull") == 1
    assert grew("registry_ui_notifications_duplicates_total") == 1
    assert grew("registry_ui_notifications_applied_total", action="push") == 1
    assert value(after, "registry_ui_notifications_last_received_timestamp_seconds") > 0
