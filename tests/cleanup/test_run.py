"""The delete engine (cleanup/plan.py, cleanup/run.py) and the client's delete calls against a real docker-registry
2.8 (the `own` fixture: a registry of the test's own), for what the properties in test_properties.py don't
cover: how a single tag is removed on 2.8, what the plan says, chosen tags that moved or went away, registries
that refuse deletes or die half way, and the bytes a delete is estimated to free.
"""

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from catalog import sync
from cleanup import plan as delete_plan
from cleanup import run as delete_run
from cleanup import tasks as cleanup_tasks
from cleanup.models import AuditEntry, DeleteJob
from devtools.images import ImageSpec, push_image, push_index
from registry.client import MANIFEST_ACCEPT, NotFound, ReadOnly, RegistryClient, RegistryUnreachable, sha256_digest

CREATED = datetime(2024, 1, 1, tzinfo=UTC)
BASE = {"etc/os-release": "ID=deletion-tests\n"}


def image(text: str, *extra_layers: dict, **fields) -> ImageSpec:
    """The same arguments give the same image, digest included; every image shares the BASE layer."""
    return ImageSpec(layers=[BASE, {"app.txt": text * 40}, *extra_layers], created=CREATED, **fields)


def push(client: RegistryClient, repository: str, spec: ImageSpec, *tags: str) -> str:
    digest = ""
    for tag in tags:
        digest = push_image(client, repository, tag, spec).digest
    return digest


def exists(client: RegistryClient, repository: str, digest: str) -> bool:
    try:
        client.resolve(repository, digest)
    except NotFound:
        return False
    return True


def resolves(client: RegistryClient, repository: str, tag: str) -> str | None:
    try:
        return client.resolve(repository, tag)
    except NotFound:
        return None


def pulls(client: RegistryClient, repository: str, tag: str, digest: str) -> None:
    """The tag's manifest is the one it had and every blob of it comes back whole."""
    manifest = client.manifest(repository, tag)
    assert manifest.digest == digest
    for image_ in [client.manifest(repository, entry.digest) for entry in manifest.manifests] or [manifest]:
        for blob in image_.blobs:
            assert sha256_digest(client.request("GET", f"/v2/{repository}/blobs/{blob.digest}").content) == blob.digest


def retag(client: RegistryClient, repository: str, digest: str, tag: str) -> None:
    """Point `tag` at a manifest already in the repository, byte for byte."""
    response = client.request("GET", f"/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT})
    client.put_manifest(repository, tag, response.content, response.headers["Content-Type"])


def choose(own, repository: str, *tags: str) -> list[delete_plan.Choice]:
    """What a person sees and confirms on a page: the tags as the index has them after a sync."""
    _, client, registry = own
    sync.sync_repository(client, registry, repository)
    return [delete_plan.Choice(repository, tag, client.resolve(repository, tag)) for tag in tags]


def job_for(own, choices: list[delete_plan.Choice], kind: str = DeleteJob.TAGS) -> DeleteJob:
    return delete_run.create_job(own[2], kind, choices, user="tester", address="127.0.0.1")


def entries(job: DeleteJob) -> dict[str, AuditEntry]:
    """The job's audit entries by their first tag."""
    return {entry.tags[0]: entry for entry in job.entries.all()}


# --- Removing one tag on 2.8: the throwaway manifest ------------------------------------------


def test_the_packaged_2_8_registry_removes_single_tags_with_a_throwaway_manifest(own):
    _, client, registry = own
    assert client.tag_delete_mode() == "throwaway"
    assert delete_run.delete_mode(client, registry) == "throwaway"
    registry.refresh_from_db()
    assert (registry.tag_delete, registry.delete_status) == ("throwaway", "enabled")


def test_remove_tag_removes_exactly_that_tag_and_its_sibling_still_pulls(own, monkeypatch):
    _, client, _ = own
    digest = push(client, "team/app", image("shared"), "old", "sibling")
    other = push(client, "team/app", image("other"), "other")
    put, throwaways = client.put_manifest, []

    def recording(*args):
        throwaways.append(put(*args))
        return throwaways[-1]

    monkeypatch.setattr(client, "put_manifest", recording)

    client.remove_tag("team/app", "old", "throwaway")

    assert sorted(client.tags("team/app")) == ["other", "sibling"]
    assert client.resolve("team/app", "sibling") == digest
    pulls(client, "team/app", "sibling", digest)
    pulls(client, "team/app", "other", other)
    assert len(throwaways) == 1 and throwaways[0] not in (digest, other)
    assert not exists(client, "team/app", throwaways[0])  # the throwaway is not left behind


def test_the_plan_for_a_tag_whose_image_has_another_tag_is_to_untag_it_naming_the_sibling(own):
    _, client, registry = own
    digest = push(client, "team/app", image("shared"), "old", "sibling")
    choices = choose(own, "team/app", "old")

    work = delete_plan.plan(registry, choices)

    assert [(step.action, step.digest, step.tags) for step in work.steps] == [(AuditEntry.REMOVE_TAG, digest, ["old"])]
    assert "sibling" in work.steps[0].reason
    assert work.bytes == 0 and work.manifest_steps == [] and work.moved == work.gone == []


def test_the_plan_for_a_platform_image_of_an_index_that_stays_is_to_untag_it(own):
    _, client, registry = own
    multi = push_index(
        client, "team/multi", "1.0", [image("amd64"), image("arm64", architecture="arm64", variant="v8")]
    ).digest
    amd64 = client.manifest("team/multi", multi).manifests[0].digest
    retag(client, "team/multi", amd64, "amd64-only")
    work = delete_plan.plan(registry, choose(own, "team/multi", "amd64-only"))
    assert [(step.action, step.digest) for step in work.steps] == [(AuditEntry.REMOVE_TAG, amd64)]
    assert "multi-platform image that stays" in work.steps[0].reason


# --- Chosen tags that moved or went away --------------------------------------------------------


def test_a_chosen_tag_that_was_pushed_again_elsewhere_before_the_job_ran_is_left_alone(own):
    _, client, _ = own
    first = push(client, "team/app", image("one"), "moving")
    doomed = push(client, "team/app", image("doomed"), "doomed")
    job = job_for(own, choose(own, "team/app", "moving", "doomed"))
    second = push(client, "team/app", image("two"), "moving")  # re-pushed after the person chose it

    job = delete_run.run(job, own[1])

    by_tag = entries(job)
    assert by_tag["moving"].outcome == AuditEntry.SKIPPED and "Left alone" in by_tag["moving"].message
    assert by_tag["doomed"].outcome == AuditEntry.DONE
    assert (job.status, job.done, job.total, job.failed) == (DeleteJob.DONE, 2, 2, 0)
    assert sorted(client.tags("team/app")) == ["moving"]
    pulls(client, "team/app", "moving", second)
    assert exists(client, "team/app", first)  # nobody chose to delete the image "moving" was taken from
    assert not exists(client, "team/app", doomed)


def test_a_tag_that_moves_between_the_plan_and_its_removal_is_left_alone(own, monkeypatch):
    """The window the index can't see: remove_tag asks the registry again right before it acts."""
    _, client, _ = own
    shared = push(client, "team/app", image("shared"), "moving", "sibling")
    job = job_for(own, choose(own, "team/app", "moving"))
    planned, moved = delete_plan.plan, []

    def plan_then_move(*args):
        work = planned(*args)
        moved.append(push(client, "team/app", image("elsewhere"), "moving"))
        return work

    monkeypatch.setattr(delete_run, "plan", plan_then_move)
    job = delete_run.run(job, client)

    assert entries(job)["moving"].outcome == AuditEntry.SKIPPED
    assert (job.status, job.done, job.failed) == (DeleteJob.DONE, 1, 0)
    pulls(client, "team/app", "moving", moved[0])
    pulls(client, "team/app", "sibling", shared)


def test_a_chosen_tag_already_deleted_when_the_job_runs_counts_as_done(own):
    _, client, _ = own
    gone = push(client, "team/app", image("gone"), "gone")
    kept = push(client, "team/app", image("kept"), "kept")
    job = job_for(own, choose(own, "team/app", "gone"))
    client.delete_manifest("team/app", gone)  # someone else was quicker

    job = delete_run.run(job, client)

    entry = entries(job)["gone"]
    assert (entry.outcome, entry.message) == (AuditEntry.DONE, "Already gone from the registry.")
    assert (job.status, job.done, job.total, job.failed) == (DeleteJob.DONE, 1, 1, 0)
    assert client.tags("team/app") == ["kept"]
    pulls(client, "team/app", "kept", kept)


# --- Registries that refuse deletes -------------------------------------------------------------


def before_refusal(own) -> tuple[DeleteJob, dict[str, str]]:
    """A job with a manifest delete and an untag in it, and every tag of the repository."""
    _, client, _ = own
    push(client, "team/app", image("shared"), "old", "sibling")
    push(client, "team/app", image("alone"), "alone")
    job = job_for(own, choose(own, "team/app", "old", "alone"))
    return job, {tag: client.resolve("team/app", tag) for tag in client.tags("team/app")}


def unchanged(client: RegistryClient, tags: dict[str, str]) -> None:
    assert sorted(client.tags("team/app")) == sorted(tags)
    for tag, digest in tags.items():
        pulls(client, "team/app", tag, digest)


def test_with_deleting_disabled_the_job_fails_saying_how_to_enable_it_and_nothing_is_deleted(own):
    local, client, registry = own
    job, tags = before_refusal(own)
    local.restart(delete_enabled=False)

    job = delete_run.run(job, client)

    assert job.status == DeleteJob.FAILED
    assert "REGISTRY_STORAGE_DELETE_ENABLED" in job.error
    assert job.entries.count() == 0
    registry.refresh_from_db()
    assert registry.delete_status == "disabled"
    unchanged(client, tags)


def test_a_read_only_registry_fails_the_job_as_in_maintenance_and_nothing_is_deleted(own):
    local, client, registry = own
    job, tags = before_refusal(own)
    local.restart(readonly=True)

    job = delete_run.run(job, client)

    assert job.status == DeleteJob.FAILED
    assert "maintenance" in job.error and "read-only" in job.error
    assert job.entries.count() == 0
    registry.refresh_from_db()
    assert registry.delete_status == "read-only"
    unchanged(client, tags)


def test_deleting_disabled_within_a_minute_of_the_last_probe_leaves_the_tags_alone(own):
    local, client, registry = own
    job, tags = before_refusal(own)
    delete_run.delete_mode(client, registry)  # a page (or an earlier job) found deleting enabled
    local.restart(delete_enabled=False)

    job = delete_run.run(job, client)

    assert client.resolve("team/app", "old") == tags["old"]  # today: the throwaway's digest
    unchanged(client, tags)


# --- A registry that dies half way ------------------------------------------------------------


def die_after(local, client: RegistryClient, monkeypatch, calls: int) -> list[str]:
    """From the (calls+1)th delete_manifest on, the real registry is stopped first. One call at a time, so
    that the first `calls` ones are answered before the registry goes."""
    delete, lock, seen = client.delete_manifest, threading.Lock(), []

    def dying(repository, digest):
        with lock:
            seen.append(digest)
            if len(seen) == calls + 1:
                local.stop()
            return delete(repository, digest)

    monkeypatch.setattr(client, "delete_manifest", dying)
    return seen


def test_when_the_registry_dies_half_way_every_outcome_written_down_is_true(own, monkeypatch):
    local, client, _ = own
    images = {f"v{n}": push(client, "team/app", image(f"v{n}"), f"v{n}") for n in range(5)}
    multi = push_index(
        client, "team/app", "multi", [image("amd64"), image("arm64", architecture="arm64", variant="v8")]
    ).digest
    platforms = [entry.digest for entry in client.manifest("team/app", multi).manifests]
    job = job_for(own, choose(own, "team/app", *images, "multi"))
    seen = die_after(local, client, monkeypatch, 3)

    job = delete_run.run(job, client)
    assert {entry.outcome for entry in job.entries.all()} >= {AuditEntry.UNKNOWN}  # no answer: not "failed"
    local.start()
    cleanup_tasks.end_abandoned_jobs()  # the scheduler's tick: the registry answers again, outcomes are read back
    job.refresh_from_db()

    assert len(seen) >= 6  # every step was tried (the index's platform images only if the index went)
    by_tag = entries(job)
    summary = {tag: (entry.outcome, entry.message) for tag, entry in by_tag.items()}
    assert {entry.outcome for entry in by_tag.values()} == {AuditEntry.DONE, AuditEntry.FAILED}, summary
    assert (job.status, job.done, job.total) == (DeleteJob.DONE, 6, 6)
    assert job.failed == sum(entry.outcome == AuditEntry.FAILED for entry in by_tag.values())
    left = set(client.tags("team/app"))
    for tag, entry in by_tag.items():
        if entry.outcome == AuditEntry.DONE:
            assert not exists(client, "team/app", entry.digest) and tag not in left, summary
        else:
            assert entry.outcome == AuditEntry.FAILED, summary
            pulls(client, "team/app", tag, entry.digest)
    if by_tag["multi"].outcome == AuditEntry.DONE:  # its platform images: named in the message iff still there
        for platform in platforms:
            assert exists(client, "team/app", platform) == (platform[:19] in by_tag["multi"].message), summary


def test_a_delete_whose_answer_was_lost_is_read_back_as_done_not_reported_failed(own, monkeypatch):
    """The registry carried out the deletes, then the connection broke before their answers came back (a fault a
    real server is hard to time, so the answer is dropped at the client's seam)."""
    _, client, _ = own
    images = {f"v{n}": push(client, "team/app", image(f"lost{n}"), f"v{n}") for n in range(3)}
    job = job_for(own, choose(own, "team/app", *images))
    delete = client.delete_manifest

    def answer_lost(repository, digest):
        delete(repository, digest)
        raise RegistryUnreachable(f"Cannot connect to {client.url}: Connection aborted.", code="UNREACHABLE")

    monkeypatch.setattr(client, "delete_manifest", answer_lost)
    job = delete_run.run(job, client)  # the registry answers HEADs, so the outcomes are read back at once
    assert {tag: entry.outcome for tag, entry in entries(job).items()} == dict.fromkeys(images, AuditEntry.DONE)
    assert all("read back" in entry.message for entry in job.entries.all()) and job.failed == 0
    assert client.tags("team/app") == []


def test_when_the_registry_dies_inside_a_tag_removal_the_outcome_says_where_the_tag_points(own, monkeypatch):
    """The throwaway technique is two writes. When the registry dies between them, the tag cannot be put back
    either: the entry must say so, and name the placeholder the tag really points to now."""
    local, client, _ = own
    push(client, "team/app", image("shared"), "old", "sibling")
    job = job_for(own, choose(own, "team/app", "old"))
    die_after(local, client, monkeypatch, 0)  # the throwaway's delete is the first delete_manifest

    job = delete_run.run(job, client)
    local.start()
    cleanup_tasks.end_abandoned_jobs()  # read back: where does the tag point now?

    entry = entries(job)["old"]
    assert entry.outcome == AuditEntry.FAILED and "placeholder" in entry.message
    placeholder = re.search(r"sha256:[0-9a-f]{64}", entry.message).group(0)
    assert client.resolve("team/app", "old") == placeholder


def test_a_refused_second_write_puts_the_tag_back_on_its_image(own, monkeypatch):
    """The placeholder's delete refused (the registry still up): the tag goes back to its image."""
    _local, client, _ = own
    digest = push(client, "team/app", image("shared"), "old", "sibling")
    job = job_for(own, choose(own, "team/app", "old"))
    delete = client.delete_manifest

    def refused(repository, reference):
        raise ReadOnly("The registry is in read-only (maintenance) mode.", code="READ_ONLY")

    monkeypatch.setattr(client, "delete_manifest", refused)
    job = delete_run.run(job, client)
    monkeypatch.setattr(client, "delete_manifest", delete)

    entry = entries(job)["old"]
    assert entry.outcome == AuditEntry.FAILED and "put back" in entry.message
    assert client.resolve("team/app", "old") == digest
    pulls(client, "team/app", "old", digest)


# --- Concurrency on 2.8 -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_job_whose_worker_died_is_ended_and_each_tag_it_did_not_report_is_read_back(own, client_for):
    """Its worker was killed after deleting `gone` and before writing that down, and in the middle of removing
    `halfway` (on its placeholder, not yet deleted): the scheduler's tick ends the job, and what the registry holds
    now says what became of each tag."""
    _, client, _ = own
    for name in ("gone", "kept", "moved", "reported", "halfway"):
        push(client, "team/app", image(name), name)
    job = job_for(own, choose(own, "team/app", "gone", "kept", "moved", "reported", "halfway"))
    reported = AuditEntry(
        user="t",
        action=AuditEntry.REMOVE_TAG,
        repository="team/app",
        tags=["reported"],
        outcome=AuditEntry.DONE,
        job=job,
    )
    reported.save()
    client.delete_manifest("team/app", resolves(client, "team/app", "gone"))  # done, not written down
    retag(client, "team/app", resolves(client, "team/app", "kept"), "moved")  # moved meanwhile, by someone else
    placeholder = client.put_placeholder("team/app", "halfway")  # remove_tag's first write, not its second
    DeleteJob.objects.filter(pk=job.pk).update(
        status=DeleteJob.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=2)
    )

    assert cleanup_tasks.end_abandoned_jobs() == [job.pk]  # read back at once here: tasks run in the test
    job.refresh_from_db()
    assert job.status == DeleteJob.FAILED and "Abandoned" in job.error
    found = entries(job)
    assert (found["gone"].outcome, found["moved"].outcome) == (AuditEntry.DONE, AuditEntry.SKIPPED)
    assert "read back" in found["gone"].message and "kept" not in found  # still there: not attempted
    assert found["halfway"].outcome == AuditEntry.FAILED and placeholder[:19] in found["halfway"].message
    assert "placeholder" in found["halfway"].message and job.failed == 1
    assert client.resolve("team/app", "kept") and client.resolve("team/app", "moved")


def test_removing_many_tags_of_one_image_at_once_removes_them_all(own):
    _, client, _ = own
    digest = push(client, "team/app", image("shared"), "keep")
    response = client.request("GET", f"/v2/team/app/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT})
    tags = [f"t{n}" for n in range(160)]  # measured: 2-6 of every 64 fail
    for tag in tags:  # one at a time: tagging in parallel races on 2.8 too
        client.put_manifest("team/app", tag, response.content, response.headers["Content-Type"])
    job = job_for(own, choose(own, "team/app", *tags))

    job = delete_run.run(job, client)

    failed = {entry.tags[0]: entry.message for entry in job.entries.filter(outcome=AuditEntry.FAILED)}
    dangling = sorted(tag for tag in client.tags("team/app") if resolves(client, "team/app", tag) is None)
    assert (failed, dangling) == ({}, [])
    assert client.tags("team/app") == ["keep"]
    pulls(client, "team/app", "keep", digest)


# --- What a delete frees --------------------------------------------------------------------


def test_the_bytes_a_manifest_delete_frees_are_its_blobs_no_other_tag_uses(own):
    _, client, registry = own
    shared_elsewhere = {"lib/shared.so": "used by another repository too" * 30}
    doomed = push(client, "est/app", image("doomed", {"bin/doomed": "x" * 3000}, shared_elsewhere), "doomed")
    push(client, "est/app", image("kept"), "kept")  # shares BASE with everything
    push(client, "est/other", image("other", shared_elsewhere), "other")
    multi = push_index(
        client, "est/app", "multi", [image("amd64"), image("arm64", architecture="arm64", variant="v8")]
    ).digest
    sync.sync_repository(client, registry, "est/other")
    job = job_for(own, choose(own, "est/app", "doomed", "multi"))

    manifest = client.manifest("est/app", doomed)  # config, BASE, its own app.txt and bin/doomed, shared_elsewhere
    expected_doomed = manifest.config.size + sum(blob.size for blob in manifest.layers[1:3])
    platforms = [client.manifest("est/app", entry.digest) for entry in client.manifest("est/app", multi).manifests]
    expected_multi = sum(child.config.size + child.layers[1].size for child in platforms)  # not BASE

    work = delete_plan.plan(registry, [delete_plan.Choice(*row) for row in job.selection])
    assert {step.tags[0]: step.bytes for step in work.steps} == {"doomed": expected_doomed, "multi": expected_multi}
    job = delete_run.run(job, client)
    assert job.bytes_estimate == work.bytes == expected_doomed + expected_multi
    assert {tag: entry.bytes for tag, entry in entries(job).items()} == {
        "doomed": expected_doomed,
        "multi": expected_multi,
    }
