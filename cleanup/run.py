"""Carrying out a delete job: the registry's capabilities checked, the repositories synced, the plan
(cleanup/plan.py) made against the registry as it is now, then each step run and its true outcome written
to the audit log, whatever happens half way.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from catalog import heartbeat, sync
from catalog.models import Registry, Repository, Tag
from cleanup import signals
from cleanup.models import AuditEntry, DeleteJob
from cleanup.plan import Choice, Plan, Step, plan
from cleanup.reasons import english, reason
from registry.client import (
    DeleteDisabled,
    NotFound,
    ReadOnly,
    RegistryClient,
    RegistryError,
    RegistryTimeout,
    RegistryUnreachable,
    get_client,
)
from registry.explain import refusal, refusal_id

logger = logging.getLogger(__name__)

CHUNK = 32  # steps between two progress updates
CAPABILITIES_SECONDS = 60  # how long "delete is enabled" is believed before asking again
ALREADY_GONE = gettext_noop("Already gone from the registry.")


# --- Capabilities ---------------------------------------------------------------------------


def delete_mode(client: RegistryClient, registry: Registry, *, refresh: bool = False) -> str:
    """How this registry removes a single tag ('native' or 'throwaway'), probed once and remembered; whether
    deleting is enabled is asked again after CAPABILITIES_SECONDS. Raises DeleteDisabled or ReadOnly."""
    fresh = registry.capabilities_checked_at and timezone.now() - registry.capabilities_checked_at < timedelta(
        seconds=CAPABILITIES_SECONDS
    )
    if registry.tag_delete and registry.delete_status == "enabled" and fresh and not refresh:
        return registry.tag_delete
    try:
        mode = client.tag_delete_mode()
        registry.tag_delete, registry.delete_status = mode, "enabled"
    except DeleteDisabled:
        registry.delete_status = "disabled"
        raise
    except ReadOnly:
        registry.delete_status = "read-only"
        raise
    finally:
        registry.capabilities_checked_at = timezone.now()
        registry.save(update_fields=["tag_delete", "delete_status", "capabilities_checked_at"])
    return mode


def registry_refusal(registry: Registry) -> str:
    """Why deletes cannot happen now (delete disabled, read-only), in words, or "" when they can."""
    try:
        delete_mode(get_client(), registry)
    except (DeleteDisabled, ReadOnly) as exc:
        return refusal(exc)
    return ""


# --- Running --------------------------------------------------------------------------------


def create_job(registry: Registry, kind: str, choices: list[Choice], *, user: str, address: str, **fields) -> DeleteJob:
    return DeleteJob.objects.create(
        registry=registry,
        kind=kind,
        selection=[[choice.repository, choice.tag, choice.digest] for choice in dict.fromkeys(choices)],
        total=len(set(choices)),
        requested_by=user,
        address=address,
        **fields,
    )


def run(job: DeleteJob, client: RegistryClient, choose=None) -> DeleteJob:
    """Carry out a job. `choose(registry)` gives the choices at run time instead of job.selection (a
    retention run decides after its sync). Every outcome is written down, whatever happens."""
    job.status, job.started_at = DeleteJob.RUNNING, timezone.now()
    job.save(update_fields=["status", "started_at"])
    repositories = sorted({row[0] for row in job.selection}) if choose is None else []
    with heartbeat.heartbeat(job):
        carry_out(job, client, choose, repositories)
    job.refresh_from_db()
    return job


def carry_out(job: DeleteJob, client: RegistryClient, choose, repositories: list[str]) -> None:
    registry = job.registry
    try:
        mode = delete_mode(client, registry, refresh=True)  # asked again: a write must not meet a surprise
        for name in repositories:
            sync.sync_repository(client, registry, name)
        if choose is not None:
            choices, repositories = choose(registry)
            job.selection = [[c.repository, c.tag, c.digest] for c in choices]
            job.total = len(choices)
            job.save(update_fields=["selection", "total"])
        half_deleted = [Choice(*row) for row in job.selection if not row[2]]  # no digest: see finish_half_deleted
        work = plan(registry, [Choice(*row) for row in job.selection if row[2]])
        job.bytes_estimate = work.bytes
        job.save(update_fields=["bytes_estimate"])
        record_untouched(job, work)
        perform_all(job, client, work.steps, mode)
        finish_half_deleted(job, client, half_deleted, mode)
        job.status = DeleteJob.DONE
        with contextlib.suppress(RegistryError):  # still not answering: the scheduler's tick reads back later
            read_back_unknown(job, client)
    except RegistryError as exc:
        job.fail(refusal_reason(exc))
        logger.warning("Delete job %s failed: %s", job.pk, exc.message)
    except Exception:
        # A job left "running" would block retention runs for good: record the stop, then let it propagate.
        job.fail(reason(gettext_noop("Stopped by an internal error; see the server log.")))
        logger.exception("Delete job %s stopped", job.pk)
        raise
    finally:
        for name in repositories:
            with contextlib.suppress(RegistryError):  # else the next reconcile will
                sync.sync_repository(client, registry, name)  # the index shows the outcome at once
        job.finished_at = timezone.now()
        # Not a plain save(): done and failed were counted in the database (F expressions).
        job.save(update_fields=["status", "error", "error_reason", "finished_at"])
        transaction.on_commit(lambda: signals.delete_job_finished.send(DeleteJob, job=job))


def whole_repository(name: str):
    """A repository delete's choices, made when the job runs: every tag the registry has then (typing the
    repository's name chose them all), after a sync."""

    def choose(registry: Registry) -> tuple[list[Choice], list[str]]:
        sync.sync_repository(get_client(), registry, name)
        tags = Tag.objects.filter(repository__registry=registry, repository__name=name)
        return [Choice(name, tag, digest) for tag, digest in tags.values_list("name", "manifest__digest")], [name]

    return choose


def record_untouched(job: DeleteJob, work: Plan) -> None:
    """Entries for the chosen tags the plan leaves out: gone already (done), or moved (left alone)."""
    moved = gettext_noop("Left alone: the tag now points to %(digest)s, not to the image that was chosen.")
    outcomes = [(choice, AuditEntry.DONE, reason(ALREADY_GONE)) for choice in work.gone]
    outcomes += [(choice, AuditEntry.SKIPPED, reason(moved, digest=now[:19])) for choice, now in work.moved]
    entries = [
        entry(job, AuditEntry.REMOVE_TAG, choice.repository, [choice.tag], choice.digest, outcome, why)
        for choice, outcome, why in outcomes
    ]
    AuditEntry.objects.bulk_create(entries)
    DeleteJob.objects.filter(pk=job.pk).update(done=F("done") + len(entries))


def perform_all(job: DeleteJob, client: RegistryClient, steps: list[Step], mode: str) -> None:
    """Run the steps CHUNK at a time, writing outcomes and progress after each chunk: first the manifest
    deletes, on the client's threads, then the single-tag removals one at a time. 2.8 is not safe for a tag
    written while another request of the same repository reads its tags (distribution#2514: a delete then
    fails half way), and a removal writes the tag. Once the registry refuses deletes outright, the
    remaining steps are reported as not attempted."""
    refused: RegistryError | None = None
    ordered = [(step, True) for step in steps if step.deletes_manifest]
    ordered += [(step, False) for step in steps if not step.deletes_manifest]
    for start in range(0, len(ordered), CHUNK):
        chunk = [step for step, _ in ordered[start : start + CHUNK]]
        parallel = all(together for _, together in ordered[start : start + CHUNK])
        if refused is None:
            run_step = lambda step: perform(client, step, mode)  # noqa: E731
            outcomes = client.map(run_step, chunk) if parallel else [run_step(step) for step in chunk]
        else:
            not_attempted = reason(gettext_noop("Not attempted: %(reason)s"), reason=refusal_reason(refused))
            outcomes = [(AuditEntry.FAILED, not_attempted, None)] * len(chunk)
        entries, failed = [], 0
        for step, (outcome, why, error) in zip(chunk, outcomes, strict=True):
            if isinstance(error, (DeleteDisabled, ReadOnly)) and refused is None:
                refused = error
            failed += len(step.tags) if outcome == AuditEntry.FAILED else 0
            freed = step.bytes if outcome == AuditEntry.DONE else 0
            entries.append(entry(job, step.action, step.repository, step.tags, step.digest, outcome, why, freed))
        AuditEntry.objects.bulk_create(entries)
        DeleteJob.objects.filter(pk=job.pk).update(
            done=F("done") + sum(len(step.tags) for step in chunk), failed=F("failed") + failed
        )
        done = [row for row in entries if row.outcome == AuditEntry.DONE]
        deleted = [(row.repository, tag, row.digest, row.bytes) for row in done for tag in row.tags]
        transaction.on_commit(lambda deleted=deleted: signals.tags_deleted.send(DeleteJob, job=job, deleted=deleted))


def refusal_reason(error: RegistryError) -> list:
    """What registry.explain.refusal() says, as a stored reason: the dashboard's sentence for a refused delete (or
    the registry's words), and what else happened."""
    message_id = refusal_id(error)
    return [reason(message_id) if message_id else error.message, note_reason(error)]


def note_reason(error: RegistryError) -> dict | str:
    """What else happened (RegistryError.note), as a stored reason."""
    return reason(error.note, **error.note_params) if error.note else ""


def perform(client: RegistryClient, step: Step, mode: str) -> tuple[str, object, RegistryError | None]:
    """One step against the registry: (outcome, a stored reason, the error if any). Runs on a client thread."""
    try:
        if not step.deletes_manifest:
            return remove_tag(client, step, mode)
        client.delete_manifest(step.repository, step.digest)
    except (RegistryUnreachable, RegistryTimeout) as exc:
        # The request may have been carried out before the answer was lost: unknown, not failed.
        return AuditEntry.UNKNOWN, [exc.message, note_reason(exc)], exc
    except RegistryError as exc:
        return AuditEntry.FAILED, refusal_reason(exc), exc
    problems = []
    for child in step.children:
        try:
            client.delete_manifest(step.repository, child)
        except RegistryError as exc:
            problems.append(f"{child[:19]}: {exc.message}")
    if problems:
        message = gettext_noop("The index was deleted; some of its images could not be: %(problems)s")
        return AuditEntry.DONE, reason(message, problems="; ".join(problems)), None
    return AuditEntry.DONE, step.why, None


def remove_tag(client: RegistryClient, step: Step, mode: str) -> tuple[str, object, RegistryError | None]:
    tag = step.tags[0]
    try:
        now = client.resolve(step.repository, tag)
    except NotFound:
        return AuditEntry.DONE, reason(ALREADY_GONE), None
    if now != step.digest:
        moved = gettext_noop("Left alone: the tag moved to %(digest)s meanwhile.")
        return AuditEntry.SKIPPED, reason(moved, digest=now[:19]), None
    client.remove_tag(step.repository, tag, mode, step.digest)
    return AuditEntry.DONE, step.why, None


def finish_half_deleted(job: DeleteJob, client: RegistryClient, choices: list[Choice], mode: str) -> None:
    """Tags a cut-off delete left half-deleted (the registry lists them; they lead to no image) are removed the way
    a single tag is, which clears the listing. Judged from the index, synced just before."""
    listed = {
        name: set(half)
        for name, half in Repository.objects.filter(
            registry=job.registry, name__in={choice.repository for choice in choices}
        ).values_list("name", "half_deleted")
    }
    outcomes = []
    for choice in choices:
        if choice.tag not in listed.get(choice.repository, set()):
            indexed = Tag.objects.filter(repository__registry=job.registry, repository__name=choice.repository)
            if indexed.filter(name=choice.tag).exists():
                again = gettext_noop("It leads to an image again: left alone.")
                outcomes.append((choice, AuditEntry.SKIPPED, reason(again)))
            else:
                outcomes.append((choice, AuditEntry.DONE, reason(ALREADY_GONE)))
            continue
        try:
            client.remove_tag(choice.repository, choice.tag, mode)
        except RegistryError as exc:
            outcomes.append((choice, AuditEntry.FAILED, refusal_reason(exc)))
        else:
            outcomes.append((choice, AuditEntry.DONE, reason(gettext_noop("Finished: the half-deleted tag is gone."))))
    entries = [
        entry(job, AuditEntry.REMOVE_TAG, choice.repository, [choice.tag], "", outcome, why)
        for choice, outcome, why in outcomes
    ]
    AuditEntry.objects.bulk_create(entries)
    failed = sum(1 for _choice, outcome, _why in outcomes if outcome == AuditEntry.FAILED)
    DeleteJob.objects.filter(pk=job.pk).update(done=F("done") + len(entries), failed=F("failed") + failed)


def read_back_unknown(job: DeleteJob, client: RegistryClient) -> int:
    """Settle the job's entries whose outcome was lost with the registry's answer, from what the registry holds now:
    each tag gone is done; still on the chosen image, failed; elsewhere, failed, saying where it points. A manifest
    delete is done when the manifest is gone. How many entries were settled."""
    unknown = list(job.entries.filter(outcome=AuditEntry.UNKNOWN))
    if not unknown:
        return 0

    def read(entry: AuditEntry) -> tuple[str, object]:
        if entry.action == AuditEntry.DELETE_MANIFEST:
            if sync.resolve_or_none(client, entry.repository, entry.digest) is None:
                deleted = gettext_noop("Deleted (the registry's answer was lost; read back afterwards).")
                return AuditEntry.DONE, reason(deleted)
            return AuditEntry.FAILED, reason(gettext_noop("Not deleted: the registry stopped answering first."))
        now = sync.resolve_or_none(client, entry.repository, entry.tags[0])
        if now is None:
            removed = gettext_noop("Removed (the registry's answer was lost; read back afterwards).")
            return AuditEntry.DONE, reason(removed)
        if now == entry.digest:
            return AuditEntry.FAILED, reason(gettext_noop("Not removed: the registry stopped answering first."))
        where = gettext_noop(
            "Not removed: the registry stopped answering half way, and the tag now points to %(digest)s."
        )
        # Then what the entry said before (the registry's words when its answer was lost), kept apart from the
        # sentence so that the sentence is translated and the words are not.
        before = entry.message if entry.message_reason is None else entry.message_reason
        return AuditEntry.FAILED, [reason(where, digest=now), before]

    for found, (outcome, why) in zip(unknown, client.map(read, unknown), strict=True):
        AuditEntry.objects.filter(pk=found.pk).update(outcome=outcome, message=english(why), message_reason=why)
    failed = job.entries.filter(outcome=AuditEntry.FAILED).values_list("tags", flat=True)
    DeleteJob.objects.filter(pk=job.pk).update(failed=sum(len(tags) for tags in failed))
    return len(unknown)


def entry(job, action, repository, tags, digest, outcome, why, freed=0) -> AuditEntry:
    """An entry of the job; `why` is a stored reason (cleanup/reasons.py)."""
    return AuditEntry(
        user=job.requested_by,
        address=job.address,
        action=action,
        repository=repository,
        tags=tags,
        digest=digest,
        outcome=outcome,
        message=english(why),
        message_reason=why,
        bytes=freed,
        job=job,
    )


def running_jobs(registry: Registry):
    """Delete jobs running now: their worker still gives signs of life (catalog/heartbeat.py)."""
    return registry.delete_jobs.filter(status=DeleteJob.RUNNING).exclude(heartbeat.silent())


def end_abandoned(registry: Registry) -> list[int]:
    """Running jobs whose worker stopped giving signs of life are marked failed (their entries still say what was
    done; read_back() finds out the rest); their ids."""
    stuck = Q(status=DeleteJob.RUNNING) & heartbeat.silent()
    return DeleteJob.end_abandoned(registry, stuck, reason(gettext_noop("Abandoned: the worker running it stopped.")))


def read_back(job: DeleteJob, client: RegistryClient) -> None:
    """What became of the chosen tags a stopped job has no outcome for, read from the registry: a tag gone is done
    (the job deleted it, or was about to), a tag moved is left alone (or failed, left on a placeholder half way), a tag
    still there was not attempted."""
    reached = {(entry.repository, tag) for entry in job.entries.all() for tag in entry.tags}
    unreached = [Choice(*row) for row in job.selection if (row[0], row[1]) not in reached]
    now = client.map(lambda choice: sync.resolve_or_none(client, choice.repository, choice.tag), unreached)
    entries = []
    for choice, digest in zip(unreached, now, strict=True):
        if digest is None:
            outcome = (
                AuditEntry.DONE,
                reason(gettext_noop("Gone from the registry when the stopped job was read back.")),
            )
        elif digest != choice.digest:
            outcome = moved_outcome(client, choice, digest)
        else:
            continue  # still there: "not attempted", as the job's page says of every tag it has no entry for
        entries.append(entry(job, AuditEntry.REMOVE_TAG, choice.repository, [choice.tag], choice.digest, *outcome))
    AuditEntry.objects.bulk_create(entries)
    failed = sum(1 for row in entries if row.outcome == AuditEntry.FAILED)
    DeleteJob.objects.filter(pk=job.pk).update(done=F("done") + len(entries), failed=F("failed") + failed)


def moved_outcome(client: RegistryClient, choice: Choice, digest: str) -> tuple[str, object]:
    """A tag that points elsewhere now is left alone, unless it points to a removal's placeholder: then the job was
    stopped between the removal's two writes (RegistryClient.remove_tag), and the tag is still to be deleted."""
    try:
        halfway = client.is_placeholder(choice.repository, digest)
    except RegistryError:
        halfway = False  # a manifest the registry will not give is not one of ours
    if halfway:
        message = gettext_noop("Stopped half way: the tag is on an empty placeholder (%(digest)s); delete it again.")
        return AuditEntry.FAILED, reason(message, digest=digest[:19])
    moved = gettext_noop("Left alone: the tag now points to %(digest)s.")
    return AuditEntry.SKIPPED, reason(moved, digest=digest[:19])
