"""Deleting's background work on Django's Tasks framework: every delete job and retention run is queued here.

Nothing below this module imports it: views and commands queue through it, and it calls the delete engine.
"""

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from catalog import sync
from cleanup import retention, run
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from cleanup.signals import delete_job_finished, delete_job_starting
from registry.client import get_client


@task
def run_delete_job(job_id: int) -> str:
    """Carry out a confirmed delete (or a retention run); returns its final status."""
    job = DeleteJob.objects.select_related("registry", "policy").get(pk=job_id)
    if job.status != DeleteJob.QUEUED:  # delivered twice, or cancelled
        return job.status
    # Each receiver answers None, or why the job cannot start (a stored reason, cleanup/reasons.py).
    refusals = [why for _, why in delete_job_starting.send(sender=DeleteJob, job=job) if why]
    if refusals:
        job.fail(refusals[0])
        job.save(update_fields=["status", "error", "error_reason"])
        transaction.on_commit(lambda: delete_job_finished.send(DeleteJob, job=job))
        return job.status
    choose = None  # the choices the job was created with
    if job.kind == DeleteJob.RETENTION and job.policy:
        choose = retention.chooser(job.policy)
    elif job.kind == DeleteJob.REPOSITORY:
        choose = run.whole_repository(job.repository)
    return run.run(job, get_client(), choose).status


def queue_delete_job(job: DeleteJob) -> DeleteJob:
    """Queue a job created queued (or confirmed from a draft)."""
    run_delete_job.enqueue(job.pk)
    return job


def confirm_delete_job(job: DeleteJob) -> DeleteJob:
    """A reviewed draft, confirmed: queued with its task, or still a draft (a server that dies between the two must
    not leave a job nothing runs; with the database's task queue both are one transaction)."""
    with transaction.atomic():
        job.status, job.created_at = DeleteJob.QUEUED, timezone.now()
        job.save(update_fields=["status", "created_at"])
        return queue_delete_job(job)


def start_retention_run(policy: RetentionPolicy, user: str, address: str = "", now=None) -> DeleteJob:
    """A run of the policy now, in the background: the job and its task, or neither."""
    with transaction.atomic():
        return queue_delete_job(retention.new_run(policy, user, address, now))


def queue_due_retention(now=None, **signal) -> list[DeleteJob]:
    """Queue a run of every scheduled policy that is due (the scheduler's tick: catalog.signals.scheduler_tick)."""
    now = now or timezone.now()
    return [start_retention_run(policy, "schedule", now=now) for policy in retention.due(now)]


@task
def read_back(job_id: int) -> None:
    """Find out from the registry what became of a job's tags it has no outcome for, or an unknown one."""
    job = DeleteJob.objects.select_related("registry").get(pk=job_id)
    run.read_back(job, get_client())
    run.read_back_unknown(job, get_client())


def end_abandoned_jobs(**signal) -> list[int]:
    """The scheduler's tick: delete jobs whose worker stopped are marked failed, and what became of their tags is
    read back in the background, as it is for finished jobs with outcomes lost with the registry's answer; the ids
    of the jobs ended."""
    registry = sync.current_registry()
    ended = run.end_abandoned(registry)
    finished = registry.delete_jobs.filter(status__in=[DeleteJob.DONE, DeleteJob.FAILED])
    unsettled = finished.filter(entries__outcome=AuditEntry.UNKNOWN).exclude(pk__in=ended).distinct()
    for job_id in [*ended, *unsettled.values_list("pk", flat=True)]:
        read_back.enqueue(job_id)
    return ended
