"""The Refresh button: queues a full reconcile and shows its progress."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog import sync
from catalog.models import SyncRun, Tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}


@pytest.mark.slow
def test_refresh_reconciles_the_registry_and_reports_it(client_for, immediate_tasks, registry_fixtures):
    client = client_for()
    response = client.post(reverse("browser-sync"), follow=True)
    assert "The index is being refreshed" in response.text
    run = SyncRun.objects.get()
    assert run.status == SyncRun.DONE and run.repositories_done == run.repositories_total >= 7
    assert Tag.objects.filter(repository__name="big/many").count() == 1500
    status = client.get(reverse("browser-sync-status"))
    assert "Tags lists read from the registry" in status.text and "digest checked since" in status.text


def test_a_running_refresh_is_not_started_twice_and_is_polled(client_for, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    SyncRun.objects.create(
        registry=sync.current_registry(), kind=SyncRun.FULL, repositories_total=10, repositories_done=3
    )
    client = client_for()
    response = client.post(reverse("browser-sync"), headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in response.text
    assert "3 of 10 repositories" in response.text
    assert SyncRun.objects.count() == 1


def test_a_queued_refresh_says_so_at_once_and_is_polled_until_its_run_starts(client_for, settings):
    """Seen: the home page's Refresh gave no feedback while the task waited for the worker."""
    from django.core.cache import cache

    cache.clear()
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    client = client_for()
    response = client.post(reverse("browser-sync"), headers={"HX-Request": "true"})
    assert "Refresh queued" in response.text and 'hx-trigger="every 1s"' in response.text
    assert re.search(r'<button type="submit" class="btn btn-small btn-secondary" disabled>', response.text)
    assert "Refresh queued" in client.get(reverse("browser-sync-status")).text  # the poll
    SyncRun.objects.create(registry=sync.current_registry(), kind=SyncRun.FULL, repositories_total=4)
    assert "0 of 4 repositories" in client.get(reverse("browser-sync-status")).text  # running now
    # On the home page the card sits above the figures, not below the fold.
    home = client.get(reverse("browser-home")).text
    assert '<div class="stats">' not in home or home.index('id="sync-status"') < home.index('<div class="stats">')


def test_refresh_takes_a_post_with_csrf_and_a_sign_in(client, db):
    assert client.post(reverse("browser-sync")).status_code == 302  # to the sign-in page
    from django.contrib.auth.models import User

    user = User.objects.create(username="csrf-check")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(reverse("browser-sync")).status_code == 403
    assert strict.get(reverse("browser-sync")).status_code == 405


def test_what_could_not_be_read_is_listed_and_said_to_be_read_again(client_for):
    registry = sync.current_registry()
    registry.last_reconciled_at = timezone.now()
    registry.save()
    errors = [
        {"repository": "team/app", "error": "sha256:abc: The manifest does not match its digest <script>."},
        {"repository": "team/app", "error": "broken: The registry answered 500 to HEAD /v2/team/app/manifests/x."},
    ]
    SyncRun.objects.create(registry=registry, kind=SyncRun.FULL, status=SyncRun.DONE, errors=errors)
    status = client_for().get(reverse("browser-sync-status")).text
    assert "2 items could not be read" in status and "Each is read again by the next refresh." in status
    assert "does not match its digest &lt;script&gt;." in status and "answered 500 to HEAD" in status
