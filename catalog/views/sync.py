from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from catalog import queries, sync, tasks
from catalog.pages import render_page


@require_GET
def sync_status(request):
    """The index's state and the progress of the latest reconcile; polled while one runs."""
    return render_status(request)


def render_status(request):
    return render_page(request, "catalog/sync_status.html", queries.index_state(sync.current_registry()))


@require_POST
def sync_start(request):
    """Queue a full reconcile, every tag's digest asked about (any signed-in user may: it only reads the registry)."""
    if tasks.start_reconcile():
        messages.success(request, _("The index is being refreshed from the registry."))
    else:
        messages.info(request, _("A refresh is already running."))
    if request.htmx:  # the card swaps itself for its new state
        return render_status(request)
    return redirect("browser-home")
