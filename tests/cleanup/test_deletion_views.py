"""The delete pages against a real registry: one tag, one image, a selection across pages, a repository;
roles, CSRF and methods on every view that changes something; the audit rows each delete leaves."""

import re
import shutil
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from catalog import sync
from catalog.models import Manifest, Tag
from cleanup.models import AuditEntry, DeleteJob
from devtools.images import ImageSpec, push_config_image, push_image
from registry.client import DOCKER_MANIFEST, NotFound
from tests.conftest import LAYER_TYPE, XSS

pytestmark = pytest.mark.django_db(transaction=True)


def fill(client, repository: str, count: int) -> dict[str, str]:
    """`count` distinct images tagged t1…tN, plus `same` on t1's image; returns tag -> digest."""
    base = client.upload_blob(repository, b"base-layer-" + repository.encode(), LAYER_TYPE)
    start = timezone.now() - timedelta(days=count)
    for n in range(1, count + 1):
        push_config_image(client, repository, f"t{n}", start + timedelta(days=n), base, {"n": str(n)})
    body = client.request("GET", f"/v2/{repository}/manifests/t1", headers={"Accept": DOCKER_MANIFEST}).content
    client.put_manifest(repository, "same", body, DOCKER_MANIFEST)
    return {tag: client.resolve(repository, tag) for tag in client.tags(repository)}


def pulls(client, repository: str, tag: str) -> bool:
    manifest = client.manifest(repository, tag)
    return all(client.blob_exists(repository, blob.digest) for blob in manifest.blobs)


@pytest.fixture
def shop(own):
    local, client, registry = own
    digests = fill(client, "team/app", 5)
    sync.sync_repository(client, registry, "team/app")
    return client, registry, digests


def job_for(registry, digests: dict[str, str], status: str, user: str = "maintainer-user") -> DeleteJob:
    """A job for t2 as the pages would have made it."""
    selection = [["team/app", "t2", digests["t2"]]]
    return DeleteJob.objects.create(
        registry=registry,
        kind=DeleteJob.TAGS,
        requested_by=user,
        status=status,
        selection=selection,
        total=1,
        repository="team/app",
    )


MUTATIONS = [
    ("browser-tag-delete", ["team/app", "t1"]),
    ("browser-selection", ["team/app"]),
    ("browser-delete-preview", ["team/app"]),
    ("browser-repository-delete", ["team/app"]),
]


@pytest.mark.parametrize(("url_name", "args"), MUTATIONS)
def test_a_viewer_gets_403_on_every_delete_post(shop, client_for, url_name, args):
    client, _registry, digests = shop
    response = client_for(roles.VIEWER).post(reverse(url_name, args=args), {"choice": "image", "digest": digests["t1"]})
    assert response.status_code == 403
    assert sorted(client.tags("team/app")) == sorted(digests)


def test_a_maintainer_may_not_delete_a_repository(shop, client_for):
    client, _registry, digests = shop
    browser = client_for(roles.MAINTAINER)
    assert browser.get(reverse("browser-repository-delete", args=["team/app"])).status_code == 403
    response = browser.post(reverse("browser-repository-delete", args=["team/app"]), {"confirm_name": "team/app"})
    assert response.status_code == 403
    assert sorted(client.tags("team/app")) == sorted(digests)


@pytest.mark.parametrize("url_name", ["browser-selection", "browser-delete-preview"])
def test_changes_are_post_only(shop, client_for, url_name):
    assert client_for(roles.MAINTAINER).get(reverse(url_name, args=["team/app"])).status_code == 405


def test_confirming_is_post_only_and_needs_csrf(shop, client_for, django_user_model):
    client, registry, digests = shop
    job = job_for(registry, digests, DeleteJob.DRAFT)
    browser = client_for(roles.MAINTAINER)
    assert browser.get(reverse("browser-delete-confirm", args=[job.pk])).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(django_user_model.objects.get(username="maintainer-user"))
    assert strict.post(reverse("browser-delete-confirm", args=[job.pk])).status_code == 403
    assert (
        strict.post(reverse("browser-tag-delete", args=["team/app", "t2"]), {"digest": digests["t2"]}).status_code
        == 403
    )
    job.refresh_from_db()
    assert job.status == DeleteJob.DRAFT
    assert "t2" in client.tags("team/app")


def test_a_viewer_sees_no_delete_controls(shop, client_for):
    browser = client_for(roles.VIEWER)
    page = browser.get(reverse("browser-repository", args=["team/app"])).content.decode()
    assert 'name="tag"' not in page and reverse("browser-selection", args=["team/app"]) not in page
    assert "Delete repository" not in page
    assert "Select tags to delete" not in page
    tag_page = browser.get(reverse("browser-tag", args=["team/app", "t1"])).content.decode()
    assert reverse("browser-tag-delete", args=["team/app", "t1"]) not in tag_page
    assert browser.get(reverse("browser-tag-delete", args=["team/app", "t1"])).status_code == 403


def test_removing_one_tag_keeps_its_sibling_and_is_audited(shop, client_for):
    client, _registry, digests = shop
    browser = client_for(roles.MAINTAINER)
    page = browser.get(reverse("browser-tag-delete", args=["team/app", "t1"])).content.decode()
    assert digests["t1"] in page and ">same<" in page  # the sibling is named
    # The image stays: removing the tag is the safer choice, not painted as red as deleting the image.
    assert '<button type="submit" class="btn btn-primary">Remove t1</button>' in page
    alone = browser.get(reverse("browser-tag-delete", args=["team/app", "t2"])).content.decode()
    assert '<button type="submit" class="btn btn-danger">Remove t2</button>' in alone  # its image goes with it
    response = browser.post(
        reverse("browser-tag-delete", args=["team/app", "t1"]),
        {"choice": "tag", "digest": digests["t1"]},
        REMOTE_ADDR="10.1.2.3",
    )
    job = DeleteJob.objects.get()
    assert response.url == reverse("browser-delete-job", args=[job.pk])
    assert job.status == DeleteJob.DONE and job.done == 1 and job.failed == 0
    assert "t1" not in client.tags("team/app")
    assert client.resolve("team/app", "same") == digests["t1"] and pulls(client, "team/app", "same")
    entry = AuditEntry.objects.get(job=job)
    assert (entry.user, entry.address, entry.action, entry.tags, entry.digest, entry.outcome, entry.bytes) == (
        "maintainer-user",
        "10.1.2.3",
        AuditEntry.REMOVE_TAG,
        ["t1"],
        digests["t1"],
        AuditEntry.DONE,
        0,
    )
    result = browser.get(response.url).content.decode()
    assert "tag removed" in result and "Finished" in result
    # Its old address: a 404 in the app's frame, saying what became of it and where to go.
    gone = browser.get(reverse("browser-tag", args=["team/app", "t1"]))
    page = gone.content.decode()
    assert gone.status_code == 404 and "<nav" in page  # the app's navigation, not a bare error page
    assert f'href="{reverse("browser-repository", args=["team/app"])}"' in page
    assert "maintainer-user" in page and 'href="/audit/?repository=team/app"' in page


def test_deleting_the_image_takes_its_named_tags_only(shop, client_for):
    client, _registry, digests = shop
    browser = client_for(roles.MAINTAINER)
    browser.post(
        reverse("browser-tag-delete", args=["team/app", "t1"]),
        {"choice": "image", "digest": digests["t1"], "sibling": ["same"]},
    )
    assert sorted(client.tags("team/app")) == ["t2", "t3", "t4", "t5"]
    with pytest.raises(NotFound):
        client.resolve("team/app", digests["t1"])
    entry = AuditEntry.objects.get(action=AuditEntry.DELETE_MANIFEST)
    assert sorted(entry.tags) == ["same", "t1"] and entry.bytes > 0


def test_an_image_whose_sibling_was_not_shown_is_only_untagged(shop, client_for):
    """A tag pushed onto the image after the page was shown is not deleted with it."""
    client, _registry, digests = shop
    body = client.request("GET", "/v2/team/app/manifests/t1", headers={"Accept": DOCKER_MANIFEST}).content
    client.put_manifest("team/app", "late", body, DOCKER_MANIFEST)
    client_for(roles.MAINTAINER).post(
        reverse("browser-tag-delete", args=["team/app", "t1"]),
        {"choice": "image", "digest": digests["t1"], "sibling": ["same"]},
    )
    assert client.resolve("team/app", "late") == digests["t1"] and pulls(client, "team/app", "late")
    assert "t1" not in client.tags("team/app") and "same" not in client.tags("team/app")


def test_bulk_selection_by_filter_then_one_confirmation(shop, client_for):
    client, registry, digests = shop
    browser = client_for(roles.MAINTAINER)
    url = reverse("browser-repository", args=["team/app"])
    found = browser.post(
        reverse("browser-selection", args=["team/app"]),
        {"action": "filter", "keep_newest": "2", "by": "pushed", "next": url},
        follow=True,
    )
    # Found at the first reading, no tag has a known push time: the page says what stood in for it.
    assert "6 tags have no known push time" in found.content.decode()
    # Set them apart as notifications of a registry's pushes would.
    for n, tag in enumerate(["t1", "t2", "t3", "t4", "t5", "same"]):
        Tag.objects.filter(name=tag).update(pushed_at=timezone.now() - timedelta(days=10 - n), pushed_known=True)
    browser.post(reverse("browser-selection", args=["team/app"]), {"action": "clear", "next": url})
    browser.post(
        reverse("browser-selection", args=["team/app"]),
        {"action": "filter", "keep_newest": "2", "by": "pushed", "next": url},
    )
    assert browser.session["delete-selection:team/app"] == ["t1", "t2", "t3", "t4"]
    # By hand on this page: uncheck t4 (the page lists all six tags).
    browser.post(
        reverse("browser-selection", args=["team/app"]),
        {"action": "page", "page_tags": ["t1", "t2", "t3", "t4", "t5", "same"], "tag": ["t1", "t2", "t3"], "next": url},
    )
    preview = browser.post(reverse("browser-delete-preview", args=["team/app"]))
    job = DeleteJob.objects.get()
    assert job.status == DeleteJob.DRAFT and sorted(row[1] for row in job.selection) == ["t1", "t2", "t3"]
    page = browser.get(preview.url).content.decode()
    assert "Delete 3 tags" in page and "Other tags keep this image: same" in page
    assert sorted(client.tags("team/app")) == sorted(digests)  # nothing before the confirmation
    browser.post(reverse("browser-delete-confirm", args=[job.pk]))
    assert sorted(client.tags("team/app")) == ["same", "t4", "t5"]
    assert all(pulls(client, "team/app", tag) for tag in ["same", "t4", "t5"])
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (DeleteJob.DONE, 3, 0)
    assert "delete-selection:team/app" not in browser.session


def test_a_bad_filter_changes_nothing_and_keeps_the_input_with_one_precise_error(shop, client_for):
    """Seen: a bad regular expression collapsed the form, lost the input and added a second, wrong error."""
    browser = client_for(roles.MAINTAINER)
    response = browser.post(
        reverse("browser-selection", args=["team/app"]),
        {"action": "filter", "pattern": "([", "keep_newest": "3", "by": "pushed"},
        follow=True,
    )
    page = response.content.decode()
    assert '<details class="card" id="select-by-filter" open>' in page
    assert page.count("Not a valid regular expression") == 1 and "Give at least one criterion" not in page
    assert 'value="(["' in page and 'value="3"' in page and '<option value="pushed" selected>' in page
    assert re.search(r'name="pattern"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*name="pattern"', page)
    again = browser.get(reverse("browser-repository", args=["team/app"])).content.decode()
    assert "Not a valid regular expression" not in again  # shown once
    response = browser.post(reverse("browser-selection", args=["team/app"]), {"action": "filter"}, follow=True)
    assert response.content.decode().count("Give at least one criterion") == 1
    assert browser.session.get("delete-selection:team/app", []) == []


def test_someone_elses_draft_is_not_found(shop, client_for):
    _client, registry, digests = shop
    job = job_for(registry, digests, DeleteJob.DRAFT, user="someone-else")
    browser = client_for(roles.MAINTAINER)
    assert browser.get(reverse("browser-delete-job", args=[job.pk])).status_code == 404
    assert browser.post(reverse("browser-delete-confirm", args=[job.pk])).status_code == 404


def test_maintainers_see_each_others_jobs_and_retention_runs_stay_with_admins(shop, client_for):
    _client, registry, digests = shop
    done = job_for(registry, digests, DeleteJob.DONE, user="someone-else")
    run = job_for(registry, digests, DeleteJob.DONE, user="schedule")
    DeleteJob.objects.filter(pk=run.pk).update(kind=DeleteJob.RETENTION)
    maintainer = client_for(roles.MAINTAINER)
    assert maintainer.get(reverse("browser-delete-job", args=[done.pk])).status_code == 200
    assert maintainer.get(reverse("browser-delete-job", args=[run.pk])).status_code == 403
    assert client_for(roles.ADMIN, "an-admin").get(reverse("browser-delete-job", args=[run.pk])).status_code == 200


def test_deleting_a_repository_needs_its_name_typed(shop, client_for):
    client, _registry, digests = shop
    browser = client_for(roles.ADMIN)
    url = reverse("browser-repository-delete", args=["team/app"])
    page = browser.get(url).content.decode()
    assert "stays in the catalog" in page and "All 6 tags" in page
    response = browser.post(url, {"confirm_name": "team/ap"})
    assert response.status_code == 400 and sorted(client.tags("team/app")) == sorted(digests)
    browser.post(url, {"confirm_name": "team/app"})
    assert client.tags("team/app") == [] and "team/app" in client.catalog()
    assert DeleteJob.objects.get().kind == DeleteJob.REPOSITORY


def test_delete_disabled_is_explained_and_nothing_happens(own, client_for):
    local, client, registry = own
    digests = fill(client, "team/app", 2)
    sync.sync_repository(client, registry, "team/app")
    local.restart(delete_enabled=False)
    browser = client_for(roles.MAINTAINER)
    page = browser.get(reverse("browser-tag-delete", args=["team/app", "t2"])).content.decode()
    assert "REGISTRY_STORAGE_DELETE_ENABLED" in page and "disabled" in page
    browser.post(reverse("browser-tag-delete", args=["team/app", "t2"]), {"choice": "tag", "digest": digests["t2"]})
    job = DeleteJob.objects.get()
    assert job.status == DeleteJob.FAILED and "REGISTRY_STORAGE_DELETE_ENABLED" in job.error
    assert "t2" in client.tags("team/app")
    result = browser.get(reverse("browser-delete-job", args=[job.pk])).content.decode()
    assert "not attempted" in result
    banner = browser.get(reverse("browser-repository", args=["team/app"])).content.decode()
    assert "REGISTRY_STORAGE_DELETE_ENABLED" in banner


def test_read_only_registry_is_in_maintenance(own, client_for):
    local, client, registry = own
    digests = fill(client, "team/app", 2)
    sync.sync_repository(client, registry, "team/app")
    local.restart(readonly=True)
    browser = client_for(roles.MAINTAINER)
    browser.post(reverse("browser-tag-delete", args=["team/app", "t2"]), {"choice": "tag", "digest": digests["t2"]})
    job = DeleteJob.objects.get()
    assert job.status == DeleteJob.FAILED and "maintenance" in job.error
    assert "t2" in client.tags("team/app")


def test_tag_names_from_the_registry_are_escaped_on_the_job_page(own, client_for):
    _local, client, registry = own
    push_image(client, "team/xss", "v1", ImageSpec(layers=[{"a": XSS}], labels={"x": XSS}))
    sync.sync_repository(client, registry, "team/xss")
    job = DeleteJob.objects.create(
        registry=registry,
        kind=DeleteJob.TAGS,
        requested_by="maintainer-user",
        status=DeleteJob.DONE,
        selection=[["team/xss", "v1", "sha256:" + "1" * 64]],
        total=1,
        error=XSS,
    )
    AuditEntry.objects.create(
        user="maintainer-user",
        action=AuditEntry.REMOVE_TAG,
        repository="team/xss",
        tags=["v1"],
        outcome=AuditEntry.FAILED,
        message=XSS,
        job=job,
    )
    page = client_for(roles.MAINTAINER).get(reverse("browser-delete-job", args=[job.pk])).content.decode()
    assert XSS not in page and "&lt;script&gt;" in page


def test_htmx_polls_a_running_job_and_pages_a_preview(shop, client_for):
    _client, registry, digests = shop
    running = job_for(registry, digests, DeleteJob.RUNNING)
    browser = client_for(roles.MAINTAINER)
    poll = browser.get(
        reverse("browser-delete-job", args=[running.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-progress"
    )
    body = poll.content.decode()
    assert poll.status_code == 200 and body.lstrip().startswith('<section class="card" id="job-progress"')
    assert 'hx-trigger="every 1s"' in body and "Reading the registry" in body
    draft = job_for(registry, digests, DeleteJob.DRAFT)
    page = browser.get(
        reverse("browser-delete-job", args=[draft.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="preview-steps"
    )
    assert page.status_code == 200 and page.content.decode().lstrip().startswith('<div id="preview-steps">')


def test_a_repository_delete_takes_every_tag_the_registry_has_when_it_runs(shop, client_for):
    """Typing the name chooses the whole repository: a tag pushed after the page was shown goes too."""
    client, _registry, _digests = shop
    browser = client_for(roles.ADMIN)
    url = reverse("browser-repository-delete", args=["team/app"])
    assert "All 6 tags" in browser.get(url).content.decode()
    push_image(client, "team/app", "late", ImageSpec(layers=[{"late": "1"}]))
    browser.post(url, {"confirm_name": "team/app"})
    assert client.tags("team/app") == []
    assert DeleteJob.objects.get().total == 7


def test_half_deleted_tags_are_shown_and_a_maintainer_finishes_deleting_them(own, client_for):
    """A delete cut off half way can leave a tag the registry still lists but whose image is gone (made here on the
    registry's disk: the tag's image revision removed, its tag folder left)."""
    local, client, registry = own
    broken = push_image(client, "team/app", "broken", ImageSpec(layers=[{"a": "broken"}])).digest
    push_image(client, "team/app", "fine", ImageSpec(layers=[{"a": "fine"}]))
    revisions = local.root / "data/docker/registry/v2/repositories/team/app/_manifests/revisions/sha256"
    shutil.rmtree(revisions / broken[7:])
    assert "broken" in client.tags("team/app")
    with pytest.raises(NotFound):
        client.resolve("team/app", "broken")
    sync.sync_repository(client, registry, "team/app")

    page = client_for(roles.VIEWER, "a-viewer").get(reverse("browser-repository", args=["team/app"])).text
    assert "1 tag is half-deleted" in page and "broken" in page and "Finish deleting them" not in page
    maintainer = client_for(roles.MAINTAINER)
    page = maintainer.get(reverse("browser-repository", args=["team/app"])).text
    assert "Finish deleting them" in page
    assert maintainer.get(reverse("browser-half-deleted", args=["team/app"])).status_code == 405

    response = maintainer.post(reverse("browser-half-deleted", args=["team/app"]))
    job = DeleteJob.objects.get()
    assert response.url == reverse("browser-delete-job", args=[job.pk]) and job.status == DeleteJob.DONE
    assert [(entry.tags, entry.outcome) for entry in job.entries.all()] == [(["broken"], AuditEntry.DONE)]
    assert client.tags("team/app") == ["fine"]
    page = maintainer.get(reverse("browser-repository", args=["team/app"])).text
    assert "half-deleted" not in page and pulls(client, "team/app", "fine")


class ServerDied(BaseException):
    """What the process sees of a kill between two statements: nothing after it runs."""


@pytest.fixture
def dying_queue(monkeypatch):
    """A task queue whose enqueue never returns, as when the web server dies while queuing."""

    class Dying:
        def enqueue(self, *args):
            raise ServerDied

    monkeypatch.setattr("cleanup.tasks.run_delete_job", Dying())


def test_a_server_dying_while_queuing_a_confirmed_delete_leaves_the_draft(client_for, dying_queue):
    registry = sync.current_registry()
    job = job_for(registry, {"t2": "sha256:" + "2" * 64}, DeleteJob.DRAFT)
    with pytest.raises(ServerDied):
        client_for(roles.MAINTAINER).post(reverse("browser-delete-confirm", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == DeleteJob.DRAFT  # not "queued" with nothing to run it: it can be confirmed again


def test_a_server_dying_while_queuing_a_new_delete_leaves_no_job(client_for, dying_queue):
    registry = sync.current_registry()
    repository = registry.repositories.create(name="team/app")
    manifest = Manifest.objects.create(digest="sha256:" + "3" * 64, media_type=DOCKER_MANIFEST, size=1)
    repository.tags.create(name="t3", manifest=manifest)
    with pytest.raises(ServerDied):
        client_for(roles.MAINTAINER).post(
            reverse("browser-tag-delete", args=["team/app", "t3"]), {"digest": manifest.digest, "choice": "tag"}
        )
    assert not DeleteJob.objects.exists()


def test_delete_old_tags_is_an_obvious_control_that_opens_the_filter(shop, client_for):
    url = reverse("browser-repository", args=["team/app"])
    browser = client_for(roles.MAINTAINER)
    page = browser.get(url).content.decode()
    assert 'href="?delete=old#select-by-filter">Delete old tags…</a>' in page
    assert '<details class="card" id="select-by-filter">' in page  # closed until asked for
    assert '<details class="card" id="select-by-filter" open>' in browser.get(url, {"delete": "old"}).content.decode()
    assert "Delete old tags…" not in client_for(roles.VIEWER).get(url).content.decode()


def test_a_finished_delete_leads_on_to_garbage_collection_with_what_it_would_free(shop, client_for):
    _client, registry, digests = shop
    job = job_for(registry, digests, DeleteJob.DONE, user="admin-user")
    job.bytes_estimate, job.finished_at = 123_456, timezone.now()
    job.save()
    page = client_for(roles.ADMIN).get(reverse("browser-delete-job", args=[job.pk])).content.decode()
    assert "About 120.6\xa0KB will be freed by the next garbage collection" in page
    assert f'href="{reverse("browser-gc")}">Free it: garbage collection</a>' in page
    # A delete's pages belong to the repositories it deleted from, not to the audit log (seen: "Audit log" lit).
    assert re.search(r'<a href="/repositories/" class="active" aria-current="page">', page)
    assert not re.search(r'<a href="/audit/" class="active"', page)
