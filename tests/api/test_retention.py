"""Retention policies through the API against a real registry (admins, as on the Retention page): create, list,
change and delete them, each change audited with the caller and their address; a dry run that lists what a run then
deletes; a run now, and a 409 while one is queued; bad rules refused with the form's own words, nothing saved."""

import pytest

from accounts import roles
from catalog import sync
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from devtools.images import push_image
from registry.client import NotFound
from tests.cleanup.test_retention import image, set_pushed

pytestmark = pytest.mark.django_db(transaction=True)
POLICY = {"repositories": "app/*", "keep_newest": 2, "newest_by": "pushed", "keep_regex": "^stable$"}


@pytest.fixture
def web(acting):
    """app/web: v1…v4 pushed 40, 30, 20 and 10 days ago, and `stable` on v1's image; other/keep untouched."""
    _local, client, registry = acting
    digests = {tag: push_image(client, "app/web", tag, image(tag)).digest for tag in ["v1", "v2", "v3", "v4"]}
    digests["stable"] = push_image(client, "app/web", "stable", image("v1")).digest
    push_image(client, "other/keep", "old", image("other"))
    for name in ["app/web", "other/keep"]:
        sync.sync_repository(client, registry, name)
    set_pushed("app/web", v1=40, v2=30, v3=20, v4=10, stable=35)
    return client, digests


@pytest.fixture
def admin(token_for, bearer):
    return bearer(token_for(roles.ADMIN))


def problem_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    return answer.json()


def test_an_admin_creates_lists_changes_and_deletes_a_policy_each_change_audited(web, admin):
    created = admin.post("/api/v1/retention-policies", POLICY, "application/json")
    assert created.status_code == 201, created.content
    policy = created.json()
    assert created["Location"] == f"/api/v1/retention-policies/{policy['id']}"
    assert (policy["repositories"], policy["keep_newest"], policy["created_by"]) == ("app/*", 2, "carol")
    assert policy["rules"] == "keep the 2 most recently pushed images; keep tags matching ^stable$"
    assert policy["matching_repositories"] == 1 and policy["latest_run"] is None
    assert [row["id"] for row in admin.get("/api/v1/retention-policies").json()["items"]] == [policy["id"]]

    changed = admin.patch(f"/api/v1/retention-policies/{policy['id']}", {"keep_newest": 3}, "application/json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["keep_newest"], changed.json()["keep_regex"]) == (3, "^stable$")  # the rest as it was
    assert admin.get(f"/api/v1/retention-policies/{policy['id']}").json()["keep_newest"] == 3

    assert admin.delete(f"/api/v1/retention-policies/{policy['id']}").status_code == 204
    assert not RetentionPolicy.objects.exists()
    entries = AuditEntry.objects.filter(action=AuditEntry.RULE_CHANGE).order_by("pk")
    assert [(entry.user, entry.address, entry.repository) for entry in entries] == [("carol", "127.0.0.1", "app/*")] * 3
    created_entry, changed_entry, deleted_entry = (entry.message for entry in entries)
    assert created_entry.startswith(f"Created retention policy #{policy['id']}.")
    assert "keep the 3 most recently pushed images" in changed_entry and "Before: app/*: keep the 2" in changed_entry
    assert deleted_entry.startswith(f"Deleted retention policy #{policy['id']}.")


def test_the_dry_run_lists_what_the_run_then_deletes(web, admin, token_for, bearer):
    client, digests = web
    policy = admin.post("/api/v1/retention-policies", POLICY, "application/json").json()
    preview = admin.get(f"/api/v1/retention-policies/{policy['id']}/dry-run").json()
    [repository] = preview["repositories"]
    going = {row["tag"]: row for row in repository["going"]}
    assert repository["name"] == "app/web" and sorted(going) == ["v1", "v2"] and repository["kept"] == 3
    assert going["v1"]["untag_only"] and going["v1"]["reason"] == "Other tags keep this image: stable."
    assert not going["v2"]["untag_only"] and preview["bytes"] > 0
    assert not DeleteJob.objects.exists() and len(client.tags("app/web")) == 5  # the dry run changed nothing

    started = admin.post(f"/api/v1/retention-policies/{policy['id']}/run")
    assert started.status_code == 202, started.content
    job = started.json()
    assert (job["kind"], job["status"], job["requested_by"]) == ("retention", "done", "carol")
    assert sorted(client.tags("app/web")) == ["stable", "v3", "v4"]
    with pytest.raises(NotFound):
        client.manifest("app/web", digests["v2"])
    assert client.tags("other/keep") == ["old"]
    assert DeleteJob.objects.get().bytes_estimate == preview["bytes"]
    assert {entry.address for entry in AuditEntry.objects.filter(job_id=job["id"])} == {"127.0.0.1"}
    assert admin.get(f"/api/v1/retention-policies/{policy['id']}").json()["latest_run"]["id"] == job["id"]
    assert admin.get(f"/api/v1/deletes/{job['id']}").json()["results"]
    # As on the pages: a retention run is for admins and whoever started it, not for every maintainer.
    problem_of(bearer(token_for(roles.MAINTAINER)).get(f"/api/v1/deletes/{job['id']}"), 403)


def test_a_second_run_while_one_is_queued_is_a_409(web, admin, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}  # no worker
    client, _digests = web
    policy = admin.post("/api/v1/retention-policies", POLICY, "application/json").json()
    first = admin.post(f"/api/v1/retention-policies/{policy['id']}/run")
    assert first.status_code == 202 and first.json()["status"] == "queued"
    detail = problem_of(admin.post(f"/api/v1/retention-policies/{policy['id']}/run"), 409)["detail"]
    assert "already queued" in detail and str(first.json()["id"]) in detail
    assert DeleteJob.objects.count() == 1 and len(client.tags("app/web")) == 5


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"keep_newest": None, "keep_regex": ""}, "body: Give at least one rule that keeps tags"),
        ({"keep_regex": "(unclosed"}, "body.keep_regex: This is not a valid regular expression: missing )"),
        ({"protect_regex": "^(?!latest)"}, "body.protect_regex: This is not a valid regular expression"),
        ({"repositories": "Shop/API"}, "body.repositories: Use only lowercase letters"),
        ({"keep_newest": 0}, "body.keep_newest: Keep at least 1 image"),
        ({"keep_days": 0}, "body.keep_days: Give at least 1 day"),
        ({"schedule": "hourly"}, "body.schedule: Input should be 'off', 'daily' or 'weekly'"),
        ({"repositories": "a" * 256}, "body.repositories: String should have at most 255 characters"),
    ],
)
def test_bad_rules_are_refused_with_the_form_s_words_and_nothing_is_saved(web, admin, changes, words):
    assert (
        words
        in problem_of(admin.post("/api/v1/retention-policies", {**POLICY, **changes}, "application/json"), 422)[
            "detail"
        ]
    )
    assert not RetentionPolicy.objects.exists() and not AuditEntry.objects.exists()


def test_a_bad_change_changes_nothing(web, admin):
    policy = admin.post("/api/v1/retention-policies", POLICY, "application/json").json()
    answer = admin.patch(f"/api/v1/retention-policies/{policy['id']}", {"keep_regex": "[z-a]"}, "application/json")
    assert "body.keep_regex" in problem_of(answer, 422)["detail"]
    assert RetentionPolicy.objects.get().keep_regex == "^stable$"
    assert AuditEntry.objects.count() == 1  # its creation only


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_only_admins_use_retention_as_on_the_pages(web, token_for, bearer, role):
    policy = RetentionPolicy.objects.create(registry=sync.current_registry(), repositories="app/*", keep_newest=1)
    caller = bearer(token_for(role))
    base = f"/api/v1/retention-policies/{policy.pk}"
    for answer in [
        caller.get("/api/v1/retention-policies"),
        caller.post("/api/v1/retention-policies", POLICY, "application/json"),
        caller.get(base),
        caller.patch(base, {"keep_newest": 5}, "application/json"),
        caller.delete(base),
        caller.get(f"{base}/dry-run"),
        caller.post(f"{base}/run"),
    ]:
        assert "admin role" in problem_of(answer, 403)["detail"]
    assert RetentionPolicy.objects.get().keep_newest == 1 and not DeleteJob.objects.exists()


def test_an_unknown_policy_is_a_404(web, admin):
    for answer in [
        admin.get("/api/v1/retention-policies/999"),
        admin.patch("/api/v1/retention-policies/999", {"keep_newest": 5}, "application/json"),
        admin.delete("/api/v1/retention-policies/999"),
        admin.get("/api/v1/retention-policies/999/dry-run"),
        admin.post("/api/v1/retention-policies/999/run"),
    ]:
        assert "no retention policy 999" in problem_of(answer, 404)["detail"]
