"""Retention policies: the rules, the forms and pages, and real runs against a registry of the test's own."""

import hashlib
import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from catalog import sync
from catalog.management.commands import sync_registry
from catalog.models import SyncRun, Tag
from catalog.schedule import DAILY, OFF, WEEKLY
from cleanup import retention
from cleanup import run as delete_run
from cleanup import tasks as cleanup_tasks
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from cleanup.retention import TagInfo
from devtools.images import ImageSpec, push_image
from devtools.localregistry import registry_command
from registry.client import NotFound

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
SIGNATURE = "sha256-" + "ab" * 32 + ".sig"


def info(name: str, digest: str = "", pushed_days: float = 0, created_days: float | None = None) -> TagInfo:
    created = None if created_days is None else NOW - timedelta(days=created_days)
    return TagInfo(name, digest or f"sha256:{name}", NOW - timedelta(days=pushed_days), created)


def policy(**rules) -> RetentionPolicy:
    return RetentionPolicy(repositories=rules.pop("repositories", "*"), **rules)


def going(tags: list[TagInfo], *policies: RetentionPolicy) -> list[str]:
    return [tag.name for tag in retention.to_delete(tags, policies, NOW)]


# --- The rules ------------------------------------------------------------------------------

DATED = [
    info("a", pushed_days=1, created_days=10),
    info("b", pushed_days=10, created_days=1),
    info("c", pushed_days=0),  # no created time
    info("d", pushed_days=5, created_days=5),
]


def test_keeping_the_newest_by_push_time_deletes_the_rest():
    assert going(DATED, policy(keep_newest=2, newest_by=RetentionPolicy.PUSHED)) == ["b", "d"]


def test_a_new_policy_keeps_the_newest_by_created_time():
    """Push times are known only since the dashboard watched: the default is the image's own date."""
    assert RetentionPolicy().newest_by == RetentionPolicy.CREATED
    assert going(DATED, policy(keep_newest=2)) == ["a", "c"]


def test_an_image_with_no_known_push_time_goes_by_its_created_time():
    """Seen: every tag of an existing registry got the first index's time as "pushed", so "newest N by push
    time" kept an arbitrary N. Found before the dashboard watched, a tag's push time is unknown."""
    found_at_first_index = NOW - timedelta(hours=1)
    tags = [
        TagInfo("old", "sha256:old", found_at_first_index, NOW - timedelta(days=300), pushed_known=False),
        TagInfo("new", "sha256:new", found_at_first_index, NOW - timedelta(days=2), pushed_known=False),
        TagInfo("mid", "sha256:mid", found_at_first_index, NOW - timedelta(days=50), pushed_known=False),
        info("pushed", pushed_days=1, created_days=400),  # told by a notification: its push time counts
    ]
    assert going(tags, policy(keep_newest=2, newest_by=RetentionPolicy.PUSHED)) == ["mid", "old"]
    assert going(tags, policy(keep_days=30)) == ["mid", "old"]


def test_keeping_the_newest_by_created_time_counts_undated_images_as_oldest():
    assert going(DATED, policy(keep_newest=2, newest_by=RetentionPolicy.CREATED)) == ["a", "c"]
    assert going(DATED, policy(keep_newest=3, newest_by=RetentionPolicy.CREATED)) == ["c"]


def test_the_newest_count_is_of_images_and_keeps_every_tag_of_a_kept_image():
    tags = [info("latest", "sha256:new", 0), info("1.0", "sha256:new", 3), info("0.9", "sha256:old", 1)]
    # The image's push time is its latest tag's: sha256:new is newer than sha256:old although 1.0 is older.
    assert going(tags, policy(keep_newest=1)) == ["0.9"]


def test_keeping_days_keeps_what_was_pushed_within_them():
    tags = [info("fresh", pushed_days=2), info("edge", pushed_days=6.9), info("stale", pushed_days=7.1)]
    assert going(tags, policy(keep_days=7)) == ["stale"]


def test_a_keep_regex_is_searched_anywhere_unless_anchored():
    tags = [info("release-1"), info("pre-release-2"), info("dev")]
    assert going(tags, policy(keep_regex="release")) == ["dev"]
    assert going(tags, policy(keep_regex="^release-[0-9]+$")) == ["dev", "pre-release-2"]


def test_a_broken_pattern_saved_around_the_form_keeps_every_tag():
    tags = [info("a", pushed_days=3), info("b", pushed_days=2)]
    assert going(tags, policy(keep_newest=1, protect_regex="(")) == []


def test_protected_tags_are_never_deleted():
    tags = [info("v1", pushed_days=30), info("v2", pushed_days=20), info("v3", pushed_days=1)]
    assert going(tags, policy(keep_newest=1, protect_regex="^v1$")) == ["v2"]


def test_the_rules_of_a_policy_are_or_ed():
    tags = [
        info("old", pushed_days=30),
        info("mid", pushed_days=5),
        info("new", pushed_days=1),
        info("keep-me", pushed_days=60),
    ]
    assert going(tags, policy(keep_newest=1)) == ["keep-me", "mid", "old"]
    assert going(tags, policy(keep_newest=1, keep_days=10, keep_regex="^keep")) == ["old"]


def test_two_policies_matching_a_repository_are_or_ed():
    tags = [info("a", pushed_days=3), info("b", pushed_days=2), info("c", pushed_days=1), info("stable", pushed_days=9)]
    newest = policy(keep_newest=1)
    stable = policy(keep_regex="^stable$")
    assert going(tags, newest) == ["a", "b", "stable"]
    assert going(tags, stable) == ["a", "b", "c"]
    assert going(tags, newest, stable) == ["a", "b"]
    assert going(tags, newest, policy(keep_newest=1, protect_regex="^a$")) == ["b", "stable"]


def test_a_repository_without_any_retain_rule_is_left_alone():
    tags = [info("a", pushed_days=3), info("b", pushed_days=2)]
    assert going(tags, policy(protect_regex="^a$")) == []
    assert going(tags) == []


def test_signature_tags_are_never_chosen_nor_counted():
    tags = [info(SIGNATURE, pushed_days=0), info("new", pushed_days=1), info("old", pushed_days=2)]
    assert going(tags, policy(keep_newest=1)) == ["old"]
    assert going(tags, policy(keep_regex="^nothing$")) == ["new", "old"]


def test_policies_match_repositories_by_shell_pattern_across_slashes():
    shop = policy(repositories="shop/*")
    assert retention.matches(shop, "shop/api")
    assert retention.matches(shop, "shop/team/api")
    assert not retention.matches(shop, "shopping/api")
    assert not retention.matches(shop, "Shop/api")
    assert retention.matches(policy(repositories="*"), "any/deep/name")
    assert retention.matches(policy(repositories="app-?"), "app-1")


# --- Forms and pages ------------------------------------------------------------------------

VALID = {"repositories": "shop/*", "keep_newest": "3", "newest_by": "pushed", "keep_days": "", "schedule": "off"}


@pytest.fixture
def saved_policy(db):
    # Matches nothing in the session registry, so that no page here touches its images.
    return RetentionPolicy.objects.create(
        registry=sync.current_registry(), repositories="nothing-here/*", keep_newest=5, created_by="x"
    )


def test_an_admin_creates_a_policy_and_the_audit_log_says_so(client_for):
    response = client_for(roles.ADMIN, username="ada").post(reverse("browser-retention"), VALID)
    assert response.status_code == 302
    created = RetentionPolicy.objects.get()
    assert (created.repositories, created.keep_newest, created.created_by) == ("shop/*", 3, "ada")
    entry = AuditEntry.objects.get(action=AuditEntry.RULE_CHANGE)
    assert (entry.user, entry.repository, entry.address) == ("ada", "shop/*", "127.0.0.1")
    assert "keep the 3 most recently pushed images" in entry.message
    page = client_for(roles.ADMIN, username="ada").get(reverse("browser-retention"))
    assert "keep the 3 most recently pushed images" in page.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keep_newest": ""}, "Give at least one rule that keeps tags"),
        ({"keep_regex": "(unclosed"}, "This is not a valid regular expression: missing ): (unclosed"),
        ({"protect_regex": "[z-a]"}, "This is not a valid regular expression: invalid character class range: z-a"),
        ({"keep_regex": "^(?!latest)"}, "look-ahead, look-behind and back-references are not available"),
        ({"repositories": "Shop/API"}, "Use only lowercase letters"),
        ({"repositories": "shop api"}, "Use only lowercase letters"),
        ({"repositories": ""}, "This field is required"),
        ({"repositories": "a" * 256}, "at most 255 characters"),
        ({"keep_newest": "0"}, "Keep at least 1 image"),
        ({"keep_newest": "", "keep_days": "0"}, "Give at least 1 day"),
        ({"schedule": "hourly"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(client_for, changes, message):
    response = client_for(roles.ADMIN).post(reverse("browser-retention"), {**VALID, **changes})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RetentionPolicy.objects.exists()
    assert not AuditEntry.objects.exists()


def test_the_form_explains_patterns_and_anchors(client_for):
    page = client_for(roles.ADMIN).get(reverse("browser-retention")).text
    assert "slashes included" in page
    assert "use ^…$ to match the whole name" in page
    assert "As in Harbor" in page


def test_editing_a_policy_saves_it_and_records_before_and_after(client_for, saved_policy):
    url = reverse("browser-retention-edit", args=[saved_policy.pk])
    client = client_for(roles.ADMIN)
    form = client.get(url).text
    assert 'value="nothing-here/*"' in form and 'name="protect_regex"' in form
    response = client.post(url, {**VALID, "repositories": "nothing-here/*", "keep_days": "30", "schedule": "daily"})
    assert response.status_code == 302
    saved_policy.refresh_from_db()
    assert (saved_policy.keep_days, saved_policy.schedule) == (30, "daily")
    message = AuditEntry.objects.get(action=AuditEntry.RULE_CHANGE).message
    assert "keep images pushed in the last 30 days" in message
    assert "Before: nothing-here/*: keep the 5 newest images by created time; schedule: off" in message


def test_a_bad_edit_changes_nothing(client_for, saved_policy):
    url = reverse("browser-retention-edit", args=[saved_policy.pk])
    response = client_for(roles.ADMIN).post(url, {**VALID, "repositories": "x", "keep_newest": "", "keep_days": ""})
    assert response.status_code == 400
    assert "Give at least one rule that keeps tags" in response.text
    assert "Policy for nothing-here/*" in response.text  # the title shows the policy as saved
    saved_policy.refresh_from_db()
    assert (saved_policy.repositories, saved_policy.keep_newest) == ("nothing-here/*", 5)
    assert not AuditEntry.objects.exists()


def test_deleting_a_policy_records_it(client_for, saved_policy):
    response = client_for(roles.ADMIN).post(reverse("browser-retention-delete", args=[saved_policy.pk]))
    assert response.status_code == 302
    assert not RetentionPolicy.objects.exists()
    entry = AuditEntry.objects.get(action=AuditEntry.RULE_CHANGE)
    assert entry.message.startswith("Deleted retention policy")
    assert entry.repository == "nothing-here/*"


def all_requests(policy_id: int) -> list[tuple[str, str, dict]]:
    valid = {**VALID, "repositories": "changed/*"}
    return [
        ("get", reverse("browser-retention"), {}),
        ("post", reverse("browser-retention"), valid),
        ("get", reverse("browser-retention-edit", args=[policy_id]), {}),
        ("post", reverse("browser-retention-edit", args=[policy_id]), valid),
        ("get", reverse("browser-retention-dry-run", args=[policy_id]), {}),
        ("post", reverse("browser-retention-delete", args=[policy_id]), {}),
        ("post", reverse("browser-retention-run", args=[policy_id]), {}),
    ]


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MAINTAINER])
def test_only_admins_may_use_retention(client_for, saved_policy, role):
    client = client_for(role)
    for method, url, data in all_requests(saved_policy.pk):
        assert getattr(client, method)(url, data).status_code == 403, (method, url)
        if method == "post":  # the method is checked first: a GET of a POST-only page is 405 for anyone
            post_only = url.endswith(("/delete/", "/run/"))
            assert client.get(url).status_code == (405 if post_only else 403), url
    saved_policy.refresh_from_db()
    assert saved_policy.repositories == "nothing-here/*"
    assert RetentionPolicy.objects.count() == 1
    assert not DeleteJob.objects.exists() and not AuditEntry.objects.exists()


def test_admins_see_every_page(client_for, saved_policy):
    client = client_for(roles.ADMIN)
    for method, url, _data in all_requests(saved_policy.pk):
        if method == "get":
            assert client.get(url).status_code == 200, url


def test_anonymous_users_are_sent_to_sign_in(client, saved_policy):
    for method, url, data in all_requests(saved_policy.pk):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url


@pytest.mark.parametrize("name", ["browser-retention-delete", "browser-retention-run"])
def test_mutations_take_a_post(client_for, saved_policy, name):
    assert client_for(roles.ADMIN).get(reverse(name, args=[saved_policy.pk])).status_code == 405
    assert RetentionPolicy.objects.filter(pk=saved_policy.pk).exists()
    assert not DeleteJob.objects.exists()


def test_creating_a_policy_needs_the_csrf_token(db):
    from django.contrib.auth.models import User
    from django.test import Client

    admin = User.objects.create(username="admin-csrf")
    roles.set_role(admin, roles.ADMIN)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(reverse("browser-retention"), VALID).status_code == 403
    assert not RetentionPolicy.objects.exists()


# --- Real runs ------------------------------------------------------------------------------

BASE = {"etc/os-release": "ID=retention\n"}


def image(name: str) -> ImageSpec:
    return ImageSpec(layers=[BASE, {f"app/{name}": name * 200}], created=NOW - timedelta(days=1))


def set_pushed(repository: str, **days_ago: float) -> None:
    """Push times as notifications would have told them."""
    for tag, days in days_ago.items():
        Tag.objects.filter(repository__name=repository, name=tag).update(
            pushed_at=timezone.now() - timedelta(days=days), pushed_known=True
        )


@pytest.fixture
def web(own):
    """app/web with five images, `stable` sharing v1's image, and a signature tag; other/keep untouched."""
    _local, client, registry = own
    digests = {tag: push_image(client, "app/web", tag, image(tag)).digest for tag in ["v1", "v2", "v3", "v4", "v5"]}
    digests["stable"] = push_image(client, "app/web", "stable", image("v1")).digest
    assert digests["stable"] == digests["v1"]
    signature = digests["v2"].replace("sha256:", "sha256-") + ".sig"
    digests[signature] = push_image(client, "app/web", signature, image("signature")).digest
    push_image(client, "other/keep", "old", image("other"))
    for name in ["app/web", "other/keep"]:
        sync.sync_repository(client, registry, name)
    set_pushed("app/web", v1=50, v2=40, v3=30, v4=20, v5=10, stable=45, **{signature: 60})
    set_pushed("other/keep", old=100)
    policy = RetentionPolicy.objects.create(
        registry=registry,
        repositories="app/*",
        keep_newest=2,
        newest_by=RetentionPolicy.PUSHED,
        keep_regex="^stable$",
        created_by="t",
    )
    return client, registry, policy, digests


def pulls(client, repository: str, tag: str) -> bool:
    """GET the manifest by tag and every blob it references; each must come back whole."""
    manifest = client.manifest(repository, tag)
    for blob in manifest.blobs:
        body = client.request("GET", f"/v2/{repository}/blobs/{blob.digest}").content
        assert "sha256:" + hashlib.sha256(body).hexdigest() == blob.digest
    return True


def garbage_collect(local) -> None:
    local.stop()
    binary = registry_command()[0]
    subprocess.run([binary, "garbage-collect", str(local.config_path)], check=True, capture_output=True)
    local.start()


def test_a_run_deletes_exactly_what_no_rule_keeps_and_survivors_still_pull(own, web, client_for):
    local, _, _ = own
    client, _registry, policy, digests = web
    response = client_for(roles.ADMIN).post(reverse("browser-retention-run", args=[policy.pk]))
    job = DeleteJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("browser-delete-job", args=[job.pk])
    assert (job.kind, job.policy, job.status, job.failed) == (DeleteJob.RETENTION, policy, DeleteJob.DONE, 0)
    signature = digests["v2"].replace("sha256:", "sha256-") + ".sig"
    assert sorted(client.tags("app/web")) == sorted(["v4", "v5", "stable", signature])
    assert client.tags("other/keep") == ["old"]
    for gone in ["v2", "v3"]:  # their images are deleted, not just untagged
        with pytest.raises(NotFound):
            client.manifest("app/web", digests[gone])
    garbage_collect(local)
    for tag in ["v4", "v5", "stable", signature]:
        assert pulls(client, "app/web", tag)
    assert pulls(client, "other/keep", "old")
    policy.refresh_from_db()
    assert policy.last_run_at is not None


def test_a_tag_sharing_its_image_with_a_kept_tag_is_only_untagged(web):
    client, registry, policy, digests = web
    job = DeleteJob.objects.create(
        registry=registry, kind=DeleteJob.RETENTION, policy=policy, requested_by="t", status=DeleteJob.QUEUED
    )
    delete_run.run(job, client, retention.chooser(policy))
    assert "v1" not in client.tags("app/web")
    assert client.resolve("app/web", "stable") == digests["v1"]
    assert pulls(client, "app/web", "stable")
    [untagged] = [entry for entry in AuditEntry.objects.filter(job=job) if entry.tags == ["v1"]]
    assert untagged.action == AuditEntry.REMOVE_TAG and untagged.outcome == AuditEntry.DONE
    assert "Other tags keep this image: stable" in untagged.message


def test_the_dry_run_lists_what_the_run_then_deletes_and_the_same_bytes(web, client_for):
    client, _registry, policy, digests = web
    admin = client_for(roles.ADMIN)
    page = admin.get(reverse("browser-retention-dry-run", args=[policy.pk])).text
    listed = re.findall(r'<td class="mono">([^<]+)</td>', page)
    assert sorted(listed) == ["v1", "v2", "v3"]
    assert "only untagged" in page and "Other tags keep this image: stable" in page
    assert "As of" in page and "reads the registry again first" in page
    assert "other/keep" not in page
    assert "no known push time" not in page  # every push time known (set_pushed)
    shown_bytes = int(re.search(r'<data value="(\d+)">', page)[1])
    # What GC frees: the blobs of v2's and v3's images that no surviving image uses.
    signature = digests["v2"].replace("sha256:", "sha256-") + ".sig"
    kept = ["v1", "v4", "v5", signature]
    survivors = {blob.digest for tag in kept for blob in client.manifest("app/web", tag).blobs}
    freed = {blob for tag in ["v2", "v3"] for blob in client.manifest("app/web", digests[tag]).blobs}
    assert shown_bytes == sum(blob.size for blob in freed if blob.digest not in survivors) > 0
    before = set(client.tags("app/web"))
    assert not DeleteJob.objects.exists()  # the dry run wrote nothing
    admin.post(reverse("browser-retention-run", args=[policy.pk]))
    assert before - set(client.tags("app/web")) == {"v1", "v2", "v3"}
    assert DeleteJob.objects.get().bytes_estimate == shown_bytes


def test_every_policy_matching_a_repository_counts_in_a_run(web):
    _client, registry, policy, _digests = web
    RetentionPolicy.objects.create(registry=registry, repositories="app/we?", keep_regex="^v3$")
    RetentionPolicy.objects.create(registry=registry, repositories="other/*", keep_regex=".")  # matches elsewhere
    chosen = retention.candidates(registry, policy)
    assert [(choice.repository, choice.tag) for choice in chosen] == [("app/web", "v1"), ("app/web", "v2")]


def test_a_run_reads_the_registry_before_deciding(web):
    client, registry, policy, _digests = web
    push_image(client, "app/web", "v6", image("v6"))  # the index has not seen it
    job = DeleteJob.objects.create(
        registry=registry, kind=DeleteJob.RETENTION, policy=policy, requested_by="t", status=DeleteJob.QUEUED
    )
    delete_run.run(job, client, retention.chooser(policy))
    # v6 is now the newest image: with v5 it fills the two places, so v4 goes too.
    assert {"v4", "v1", "v2", "v3"}.isdisjoint(client.tags("app/web"))
    assert {"v5", "v6", "stable"} <= set(client.tags("app/web"))


def test_the_command_line_dry_run_and_run(web, capsys):
    client, _registry, policy, _digests = web
    call_command("retention_run", "--policy", str(policy.pk), "--dry-run")
    out = capsys.readouterr().out
    assert "app/web: 3 to go, 4 kept" in out
    assert "v1 sha256:" in out and "only untagged" in out
    assert "3 tags would go" in out
    assert len(client.tags("app/web")) == 7
    call_command("retention_run", "--policy", str(policy.pk))
    assert "done: 3 of 3 tags handled, 0 failed" in capsys.readouterr().out
    assert len(client.tags("app/web")) == 4
    assert DeleteJob.objects.get().requested_by == "cli"


# --- Scheduling -----------------------------------------------------------------------------


def test_queue_due_honours_the_schedule_and_the_last_run(own):
    _local, _client, registry = own
    now = timezone.now()

    def make(schedule, last_run_hours=None):
        last = None if last_run_hours is None else now - timedelta(hours=last_run_hours)
        return RetentionPolicy.objects.create(
            registry=registry, repositories="none/*", keep_newest=1, schedule=schedule, last_run_at=last
        )

    off = make(OFF)
    never_run = make(DAILY)
    ran_lately = make(DAILY, last_run_hours=2)
    ran_yesterday = make(DAILY, last_run_hours=25)
    weekly_lately = make(WEEKLY, last_run_hours=48)
    weekly_due = make(WEEKLY, last_run_hours=7 * 24 + 1)
    busy = make(DAILY)
    DeleteJob.objects.create(registry=registry, kind=DeleteJob.RETENTION, policy=busy, requested_by="x")

    jobs = cleanup_tasks.queue_due_retention(now)
    assert {job.policy for job in jobs} == {never_run, ran_yesterday, weekly_due}
    for job in jobs:
        job.refresh_from_db()
        assert (job.kind, job.requested_by, job.status) == (DeleteJob.RETENTION, "schedule", DeleteJob.DONE)
        job.policy.refresh_from_db()
        assert job.policy.last_run_at == now
    for untouched in [off, ran_lately, weekly_lately, busy]:
        untouched.refresh_from_db()
        assert untouched.last_run_at is None or untouched.last_run_at < now
    assert cleanup_tasks.queue_due_retention(now) == []  # just ran
    # A day later the dailies are due again (the busy one still waits for its queued run); the weeklies not.
    later = cleanup_tasks.queue_due_retention(now + timedelta(days=1))
    assert {job.policy for job in later} == {never_run, ran_yesterday, ran_lately}


def test_the_scheduler_tick_survives_a_failing_retention_queue(monkeypatch, caplog, settings, db):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}

    def broken(now):
        raise RuntimeError("database went away")

    monkeypatch.setattr(retention, "due", broken)
    sync_registry.Command().tick()
    assert "The scheduler's queue_due_retention failed" in caplog.text and "database went away" in caplog.text
    assert SyncRun.objects.count() == 0  # the dummy backend ran nothing, but the reconcile was queued first


def test_the_dry_run_says_which_images_go_by_created_time_for_want_of_a_push_time(web, client_for):
    _client, _registry, policy, _digests = web
    Tag.objects.filter(repository__name="app/web", name__in=["v4", "v5"]).update(pushed_known=False)
    page = client_for(roles.ADMIN).get(reverse("browser-retention-dry-run", args=[policy.pk])).text
    assert "2 images have no known push time" in page
