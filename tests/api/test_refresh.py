"""Refreshing the index through the API, as the home page's button does: any signed-in role queues a full reconcile,
which reads the registry; one already running goes on instead; a session needs its CSRF token; the rate limit
counts these calls too."""

import pytest
from django.utils import timezone

from accounts import roles
from catalog import sync
from catalog.models import SyncRun
from devtools.images import push_image
from tests.cleanup.test_retention import image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER, roles.ADMIN])
def test_every_role_refreshes_the_index_from_the_registry(acting, token_for, bearer, role):
    _local, client, registry = acting
    push_image(client, "fresh/app", "1.0", image("fresh"))
    assert not registry.repositories.filter(name="fresh/app").exists()
    answer = bearer(token_for(role)).post("/api/v1/sync")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["queued"] and body["status"]["latest_run"]["kind"] == "full"  # tests run tasks at once
    assert body["status"]["latest_run"]["status"] == "done" and body["status"]["last_reconciled_at"]
    assert list(registry.repositories.get(name="fresh/app").tags.values_list("name", flat=True)) == ["1.0"]


def test_a_refresh_already_running_goes_on_and_none_is_queued(acting, token_for, bearer):
    running = SyncRun.objects.create(
        registry=sync.current_registry(), kind=SyncRun.FULL, heartbeat_at=timezone.now(), repositories_total=3
    )
    answer = bearer(token_for(roles.VIEWER)).post("/api/v1/sync")
    assert answer.status_code == 200 and answer.json()["queued"] is False
    assert answer.json()["status"]["latest_run"]["repositories_total"] == 3
    assert list(SyncRun.objects.values_list("pk", flat=True)) == [running.pk]


def test_a_session_s_refresh_needs_its_csrf_token(acting, csrf_session):
    browser, csrf = csrf_session(roles.VIEWER)
    refused = browser.post("/api/v1/sync")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not SyncRun.objects.exists()
    assert browser.post("/api/v1/sync", headers={"X-CSRFToken": csrf}).status_code == 202


def test_refreshes_count_toward_the_rate_limit(acting, token_for, bearer, settings):
    settings.API_RATE_LIMIT = 1
    caller = bearer(token_for(roles.VIEWER))
    assert caller.post("/api/v1/sync").status_code == 202
    refused = caller.post("/api/v1/sync")
    assert refused.status_code == 429 and refused["Retry-After"]
    assert SyncRun.objects.filter(kind=SyncRun.FULL).count() == 1
