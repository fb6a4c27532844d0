"""Garbage collection through the API, as on its page (admins): a dry run, then a collection that follows the latest
dry run (recent, and finding something), each run's status and its log. One collection at a time: a second while
one is queued or running is a 409. The same tasks and safety rules as the page (garbage_collection/)."""

from django.conf import settings
from django.http import Http404, HttpResponse
from ninja import Router, Status
from ninja.errors import HttpError

from accounts import roles
from accounts.throttle import client_address
from api import answers, schemas
from api.security import require_role
from catalog import sync
from catalog.models import Registry
from cleanup.reasons import english
from garbage_collection import collection, exclusion, tasks
from garbage_collection.models import GcRun
from registry import bridge

router = Router(tags=["garbage collection"])
LOG = {200: {"description": "The log, as text.", "content": {"text/plain": {"schema": {"type": "string"}}}}}


def get_run(run_id: int) -> GcRun:
    run = GcRun.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404(f"There is no garbage collection run {run_id}.")
    return run


def start(request, response: HttpResponse, registry: Registry, **options) -> Status:
    """Queue a run for the caller (its audit entry names them and their address); a 409 while one is queued or
    running."""
    user, address = request.user.username, client_address(request)
    try:
        run = tasks.start_gc(registry, user=user, address=address, **options)
    except exclusion.Busy as exc:
        active = exclusion.active(registry)
        where = f" It is run {active.pk}: {answers.api_url('gc_run_detail', active.pk)}" if active else ""
        raise HttpError(409, f"{english(exc.why)}{where}") from None
    run.refresh_from_db()
    response["Location"] = answers.api_url("gc_run_detail", run.pk)
    return Status(202, answers.gc_run(run))


@router.post("/gc/dry-runs", response={202: schemas.GcRun, **schemas.ACTING_PROBLEMS})
def gc_dry_run(request, response: HttpResponse, body: schemas.GcDryRunRequest | None = None):
    """Start a dry run: it lists what a collection would delete, and changes nothing."""
    require_role(request, roles.ADMIN)
    registry = sync.current_registry()
    if settings.GC_BRIDGE == "none":
        command = bridge.manual_command(collection.command(dry_run=True, delete_untagged=False))
        raise HttpError(409, f"No bridge is configured (GC_BRIDGE=none): run it by hand: {command}")
    untagged = bool(body and body.delete_untagged)
    if untagged and not collection.may_delete_untagged(registry):
        raise HttpError(422, "body.delete_untagged: only on distribution 3.x; on 2.x it breaks multi-platform images.")
    return start(request, response, registry, dry_run=True, delete_untagged=untagged)


@router.post("/gc/runs/{run_id}/collect", response={202: schemas.GcRun, **schemas.ACTING_PROBLEMS})
def gc_collect(request, response: HttpResponse, run_id: int):
    """Collect what this dry run found, with its options: it must be the latest dry run, finished within the hour and
    have found something (409 otherwise). The registry is read-only while it runs."""
    require_role(request, roles.ADMIN)
    preview = get_run(run_id)
    if not collection.collectable(preview):
        raise HttpError(
            409,
            f"Run a new dry run first: run {preview.pk} is not the latest dry run, is over an hour old, or found "
            "nothing to collect.",
        )
    options = {"preview": preview, "delete_untagged": preview.delete_untagged}
    return start(request, response, preview.registry, dry_run=False, **options)


@router.get("/gc/runs/{run_id}", response={200: schemas.GcRun, **schemas.READING_PROBLEMS})
def gc_run_detail(request, run_id: int):
    """A run's status: queued, running, done or failed, what it found and what it freed."""
    require_role(request, roles.ADMIN)
    return answers.gc_run(get_run(run_id))


@router.get("/gc/runs/{run_id}/log", response=schemas.READING_PROBLEMS, openapi_extra={"responses": LOG})
def gc_run_log(request, run_id: int):
    """A run's whole log as text, as the registry's command wrote it (the dashboard's notes start with "# ")."""
    require_role(request, roles.ADMIN)
    run = get_run(run_id)
    return HttpResponse(run.log, content_type="text/plain; charset=utf-8")
