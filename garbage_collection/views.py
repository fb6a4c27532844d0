"""Garbage collection pages, for admins: the volume, a dry run and its preview, the confirmed run with its live
log, and the history. The work itself is garbage_collection/collection.py's, in a task."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import roles
from accounts.throttle import client_address
from catalog import storage, sync
from catalog.pages import render_page
from cleanup.reasons import english, shown
from garbage_collection import collection, exclusion, tasks
from garbage_collection.models import GcRun
from registry import bridge

RUNS_PER_PAGE = 25
LOG_LINES_SHOWN = 2000  # a large registry's log has a line per blob: the page shows the end, the file has all


@require_GET
@roles.role_required(roles.ADMIN)
def gc_overview(request):
    """The volume, the buttons, and every past run."""
    registry = sync.current_registry()
    runs = Paginator(registry.gc_runs.order_by("-created_at"), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "volume": storage.volume(),
        "stored_bytes": storage.registry_storage(registry).total_bytes,  # cached per change of the index
        "runs": runs,
        "active": exclusion.active(registry),
        "bridge": settings.GC_BRIDGE,
        "manual_dry_run": bridge.manual_command(collection.command(dry_run=True, delete_untagged=False)),
        "manual_run": bridge.manual_command(collection.command(dry_run=False, delete_untagged=False)),
        "may_delete_untagged": collection.may_delete_untagged(registry),
    }
    return render_page(request, "gc/gc.html", context, {"gc-history": "history"})


@require_POST
@roles.role_required(roles.ADMIN)
def gc_dry_run(request):
    """Start a dry run: it lists what a real run would delete, and changes nothing."""
    registry = sync.current_registry()
    if settings.GC_BRIDGE == "none":
        messages.error(request, _("No bridge is configured (GC_BRIDGE=none): run the command shown by hand."))
        return redirect("browser-gc")
    untagged = request.POST.get("delete_untagged") == "on" and collection.may_delete_untagged(registry)
    return start_and_show(request, registry, dry_run=True, delete_untagged=untagged)


def start_and_show(request, registry, **options):
    """Queue a run for this request's user and show its page; back to the overview when one is running."""
    try:
        run = tasks.start_gc(registry, user=request.user.username, address=client_address(request), **options)
    except exclusion.Busy as exc:
        messages.error(request, str(exc))
        return redirect("browser-gc")
    return redirect("browser-gc-run", run.pk)


@require_GET
@roles.role_required(roles.ADMIN)
def gc_run_detail(request, run_id):
    """A run's log (polled by htmx while it runs) and outcome; a finished dry run offers to collect."""
    run = get_object_or_404(GcRun, pk=run_id)
    lines = shown_log(run)
    context = {
        "run": run,
        "eligible": collection.eligible_blobs(run) if run.finished else [],
        "eligible_shown": collection.ELIGIBLE_SHOWN,
        "collectable": collection.collectable(run),
        "switches_read_only": bridge.can_restart(),
        "log_tail": "\n".join(lines[-LOG_LINES_SHOWN:]),
        "log_hidden": max(len(lines) - LOG_LINES_SHOWN, 0),
    }
    return render_page(request, "gc/gc_run.html", context, {"gc-run": "run"})


def shown_log(run: GcRun) -> list[str]:
    """The log's lines, the dashboard's own notes in the reader's language (the downloaded log stays as written)."""
    notes = {f"# {english(why)}": f"# {shown(why)}" for why in run.log_notes}
    return [notes.get(line, line) for line in run.log.splitlines()]


@require_POST
@roles.role_required(roles.ADMIN)
def gc_collect(request, run_id):
    """Confirm a dry run's preview: the real run, with the same options."""
    preview = get_object_or_404(GcRun, pk=run_id)
    if not collection.collectable(preview):
        messages.error(request, _("Run a new dry run first: this preview is not the latest, or is too old."))
        return redirect("browser-gc")
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Nothing was started: tick the box that says what the collection will do."))
        return redirect("browser-gc-run", preview.pk)
    return start_and_show(
        request, preview.registry, dry_run=False, preview=preview, delete_untagged=preview.delete_untagged
    )


@require_GET
@roles.role_required(roles.ADMIN)
def gc_run_log(request, run_id):
    """A run's whole log, as a text file."""
    run = get_object_or_404(GcRun, pk=run_id)
    response = HttpResponse(run.log, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="garbage-collection-{run.pk}.log"'
    return response
