"""Deleting through the API against a real registry: a plan first (a draft job: what goes with its image, what is
only untagged, the bytes), then its confirmation, which really removes the tags; each tag's outcome read back; the
same audit entries as the pages; roles, CSRF and bad input, which changes nothing."""

import pytest

from accounts import roles
from catalog import sync
from cleanup.models import AuditEntry, DeleteJob
from registry.client import NotFound
from tests.cleanup.test_deletion_views import fill, pulls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(acting):
    """team/app: t1…t5, each its own image, created a day apart, and `same` on t1's image."""
    _local, client, registry = acting
    digests = fill(client, "team/app", 5)
    sync.sync_repository(client, registry, "team/app")
    return client, digests


def problem_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    return answer.json()


def test_a_plan_then_its_confirmation_deletes_the_tags_from_the_registry(shop, token_for, bearer):
    client, digests = shop
    maintainer = bearer(token_for(roles.MAINTAINER))

    planned = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2", "t3"]}, "application/json")
    assert planned.status_code == 201, planned.content
    draft = planned.json()
    assert draft["status"] == "draft" and planned["Location"] == f"/api/v1/deletes/{draft['id']}"
    plan = draft["plan"]
    assert {(step["digest"], tuple(step["tags"])) for step in plan["deleted"]} == {
        (digests["t2"], ("t2",)),
        (digests["t3"], ("t3",)),
    }
    assert plan["untagged"] == [] and plan["tag_count"] == 2 and plan["bytes"] > 0
    assert draft["registry_refusal"] == "" and draft["results"] == []
    assert sorted(client.tags("team/app")) == sorted(digests)  # nothing before the confirmation
    assert maintainer.get(f"/api/v1/deletes/{draft['id']}").json()["plan"] == plan

    confirmed = maintainer.post(draft["confirm_url"])
    assert confirmed.status_code == 202, confirmed.content
    job = confirmed.json()
    assert job["status"] == "done" and job["plan"] is None and job["confirm_url"] is None  # tests run tasks at once
    assert {(row["tag"], row["outcome"]) for row in job["results"]} == {("t2", "done"), ("t3", "done")}
    for tag in ["t2", "t3"]:
        with pytest.raises(NotFound):  # the registry answers 404
            client.resolve("team/app", tag)
    assert sorted(client.tags("team/app")) == ["same", "t1", "t4", "t5"]
    assert all(pulls(client, "team/app", tag) for tag in ["same", "t1", "t4", "t5"])
    assert maintainer.get(f"/api/v1/deletes/{draft['id']}").json()["results"] == job["results"]


def test_the_api_s_deletes_are_audited_as_the_pages_are(shop, token_for, bearer):
    _client, digests = shop
    maintainer = bearer(token_for(roles.MAINTAINER))
    draft = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2"]}, "application/json").json()
    maintainer.post(draft["confirm_url"])
    entry = AuditEntry.objects.get(job_id=draft["id"])
    assert (entry.user, entry.address, entry.action) == ("bob", "127.0.0.1", AuditEntry.DELETE_MANIFEST)
    assert (entry.repository, entry.tags, entry.digest, entry.outcome) == ("team/app", ["t2"], digests["t2"], "done")
    job = DeleteJob.objects.get(pk=draft["id"])
    assert (job.requested_by, job.address, job.kind) == ("bob", "127.0.0.1", DeleteJob.TAGS)


def test_a_filter_chooses_as_the_page_s_filter_does(shop, token_for, bearer):
    _client, digests = shop
    maintainer = bearer(token_for(roles.MAINTAINER))
    body = {"repository": "team/app", "filter": {"keep_newest": 2, "by": "created"}}
    plan = maintainer.post("/api/v1/deletes", body, "application/json").json()["plan"]
    # All but the two newest images: t1 (with `same`, its other tag), t2 and t3.
    assert sorted(tag for step in plan["deleted"] for tag in step["tags"]) == ["same", "t1", "t2", "t3"]
    assert plan["tag_count"] == 4


def test_a_tag_whose_image_keeps_another_tag_is_only_untagged(shop, token_for, bearer):
    client, digests = shop
    maintainer = bearer(token_for(roles.MAINTAINER))
    draft = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t1"]}, "application/json").json()
    assert draft["plan"]["deleted"] == [] and draft["plan"]["bytes"] == 0
    assert draft["plan"]["untagged"] == [
        {"tag": "t1", "digest": digests["t1"], "reason": "Other tags keep this image: same."}
    ]
    maintainer.post(draft["confirm_url"])
    assert "t1" not in client.tags("team/app") and client.resolve("team/app", "same") == digests["t1"]


def test_a_viewer_may_not_plan_confirm_or_read_a_delete(shop, token_for, bearer):
    client, digests = shop
    viewer = bearer(token_for(roles.VIEWER))
    refused = viewer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2"]}, "application/json")
    assert "maintainer role" in problem_of(refused, 403)["detail"]
    maintainer = bearer(token_for(roles.MAINTAINER))
    draft = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2"]}, "application/json").json()
    problem_of(viewer.post(draft["confirm_url"]), 403)
    problem_of(viewer.get(f"/api/v1/deletes/{draft['id']}"), 403)
    assert DeleteJob.objects.get().status == DeleteJob.DRAFT
    assert sorted(client.tags("team/app")) == sorted(digests)


def test_a_draft_is_its_requester_s_and_is_confirmed_once(shop, token_for, bearer):
    _client, _digests = shop
    maintainer = bearer(token_for(roles.MAINTAINER))
    other = bearer(token_for(roles.MAINTAINER, username="dave"))
    draft = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2"]}, "application/json").json()
    problem_of(other.get(f"/api/v1/deletes/{draft['id']}"), 404)  # as on the pages: someone else's draft
    problem_of(other.post(draft["confirm_url"]), 404)
    assert maintainer.post(draft["confirm_url"]).status_code == 202
    assert "already confirmed" in problem_of(maintainer.post(draft["confirm_url"]), 409)["detail"]
    assert other.get(f"/api/v1/deletes/{draft['id']}").status_code == 200  # maintainers see every job


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"repository": "team/app"}, 422, "Nothing to delete"),
        ({"repository": "team/app", "tags": []}, 422, "Nothing to delete"),
        ({"repository": "team/app", "tags": ["t2", "nope"]}, 422, "body.tags: team/app has no tag nope"),
        ({"repository": "team/app", "filter": {}}, 422, "body.filter: Give at least one criterion"),
        ({"repository": "team/app", "filter": {"pattern": "(unclosed"}}, 422, "body.filter.pattern: Not a valid"),
        ({"repository": "team/app", "filter": {"pattern": "^(?!t1)"}}, 422, "look-ahead"),
        ({"repository": "team/app", "filter": {"keep_newest": 0}}, 422, "body.filter.keep_newest: Ensure"),
        ({"repository": "team/app", "filter": {"before": "last week"}}, 422, "body.filter.before: Input should be"),
        ({"repository": "team/app", "filter": {"by": "size"}}, 422, "body.filter.by: Input should be"),
        ({"repository": "team/app", "tags": "t2"}, 422, "body.tags: Input should be a valid list"),
        ({"tags": ["t2"]}, 422, "body.repository: Field required"),
        ({"repository": "team/nothing-here", "tags": ["t2"]}, 404, "not known to registry"),
    ],
)
def test_bad_input_is_refused_with_a_clear_detail_and_changes_nothing(shop, token_for, bearer, body, status, words):
    client, digests = shop
    answer = bearer(token_for(roles.MAINTAINER)).post("/api/v1/deletes", body, "application/json")
    assert words in problem_of(answer, status)["detail"]
    assert not DeleteJob.objects.exists()
    assert sorted(client.tags("team/app")) == sorted(digests)


def test_a_body_that_is_no_json_is_refused(shop, token_for, bearer):
    answer = bearer(token_for(roles.MAINTAINER)).post("/api/v1/deletes", "{not json", "application/json")
    assert "Cannot parse" in problem_of(answer, 400)["detail"]
    assert not DeleteJob.objects.exists()


def test_an_unknown_job_is_a_404(shop, token_for, bearer):
    maintainer = bearer(token_for(roles.MAINTAINER))
    problem_of(maintainer.get("/api/v1/deletes/999999"), 404)
    problem_of(maintainer.post("/api/v1/deletes/999999/confirm"), 404)


def test_a_session_s_delete_needs_its_csrf_token(shop, csrf_session):
    client, digests = shop
    browser, csrf = csrf_session(roles.MAINTAINER)
    body = {"repository": "team/app", "tags": ["t2"]}
    refused = browser.post("/api/v1/deletes", body, "application/json")
    assert "CSRF" in problem_of(refused, 403)["detail"] and not DeleteJob.objects.exists()
    planned = browser.post("/api/v1/deletes", body, "application/json", headers={"X-CSRFToken": csrf})
    assert planned.status_code == 201, planned.content
    confirm_url = planned.json()["confirm_url"]
    problem_of(browser.post(confirm_url), 403)
    assert DeleteJob.objects.get().status == DeleteJob.DRAFT and "t2" in client.tags("team/app")
    assert browser.post(confirm_url, headers={"X-CSRFToken": csrf}).json()["status"] == "done"
    assert "t2" not in client.tags("team/app")


def test_delete_disabled_in_the_registry_is_said_in_the_plan_and_the_job_fails_with_the_setting(
    shop, acting, token_for, bearer
):
    client, digests = shop
    local, _client, _registry = acting
    local.restart(delete_enabled=False)
    maintainer = bearer(token_for(roles.MAINTAINER))
    draft = maintainer.post("/api/v1/deletes", {"repository": "team/app", "tags": ["t2"]}, "application/json").json()
    assert "REGISTRY_STORAGE_DELETE_ENABLED" in draft["registry_refusal"]
    job = maintainer.post(draft["confirm_url"]).json()
    assert job["status"] == "failed" and "REGISTRY_STORAGE_DELETE_ENABLED" in job["error"]
    assert [(row["tag"], row["outcome"]) for row in job["results"]] == [("t2", "not-attempted")]
    assert client.resolve("team/app", "t2") == digests["t2"]
