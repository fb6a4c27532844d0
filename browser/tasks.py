"""Background work on Django's Tasks framework: reconciles and the updates notifications ask for.

Tasks take only JSON-friendly arguments and always build their registry client from settings, so the
same code runs in the database backend's worker, in RQ's, or immediately in tests.
"""

from django.tasks import task
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from browser import collection, deletion, index, retention
from browser.models import DeleteJob, GcRun, SyncRun
from browser.registry import RegistryError, get_client

DELETE_WAIT_FOR_GC_SECONDS = 3600  # a delete queued during a garbage collection starts after it


@task
def reconcile_registry() -> int:
    """A full reconcile; returns the SyncRun's id."""
    return index.reconcile(get_client(), index.current_registry()).pk


@task
def sync_repository(name: str) -> int:
    """Bring one repository in step (tags list, a HEAD per tag, new digests only)."""
    return index.sync_repository(get_client(), index.current_registry(), name)


@task
def apply_push(repository: str, tag: str, digest: str, timestamp: str = "") -> None:
    """A tag was pushed: index its digest if new and point the tag at it. Events arrive late and out of
    order, so the tag is asked about first (one HEAD): a tag deleted or moved since is recorded as it is now,
    not as the event says."""
    client, registry = get_client(), index.current_registry()
    try:
        current = index.resolve_or_none(client, repository, tag)
        if current is None:
            index.forget_tag(registry, repository, tag)
            return
        pushed_at = parse_datetime(timestamp or "") if current == digest else None
        index.record_push(client, registry, repository, tag, current, pushed_at)
    except RegistryError:
        index.sync_repository(client, registry, repository)


@task
def apply_delete(repository: str, digest: str, tag: str = "") -> None:
    index.record_delete(get_client(), index.current_registry(), repository, digest, tag)


def start_reconcile() -> bool:
    """Queue a full reconcile unless one is already running; says whether one was queued."""
    if SyncRun.objects.filter(kind=SyncRun.FULL, status=SyncRun.RUNNING, finished_at__isnull=True).exists():
        return False
    reconcile_registry.enqueue()
    return True


@task
def run_delete_job(job_id: int) -> str:
    """Carry out a confirmed delete (or a retention run); returns its final status."""
    job = DeleteJob.objects.select_related("registry", "policy").get(pk=job_id)
    if job.status != DeleteJob.QUEUED:  # delivered twice, or cancelled
        return job.status
    if not collection.wait_for_collection(job.registry, limit=DELETE_WAIT_FOR_GC_SECONDS):
        job.status, job.error = DeleteJob.FAILED, _("Garbage collection was still running after an hour.")
        job.save(update_fields=["status", "error"])
        return job.status
    choose = None  # the choices the job was created with
    if job.kind == DeleteJob.RETENTION and job.policy:
        choose = retention.chooser(job.policy)
    elif job.kind == DeleteJob.REPOSITORY:
        choose = deletion.whole_repository(job.repository)
    return deletion.run(job, get_client(), choose).status


@task
def collect_garbage(run_id: int) -> str:
    """A garbage collection (dry or real) through the bridge; returns its final status."""
    run = GcRun.objects.select_related("registry").get(pk=run_id)
    if run.status != GcRun.QUEUED:
        return run.status
    return collection.run(run).status
