"""The Webhooks page, for admins: the endpoints, adding one, and each one's page (edit, delivery log, a test event,
delete)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import roles
from webhooks import tasks
from webhooks.forms import EndpointForm
from webhooks.models import Endpoint

DELIVERIES_SHOWN = 50


def render_list(request, form: EndpointForm, new_secret: str = "", status: int = 200):
    endpoints = Endpoint.objects.all()
    context = {"endpoints": endpoints, "form": form, "new_secret": new_secret}
    return render(request, "webhooks/webhooks.html", context, status=status)


@require_http_methods(["GET", "POST"])
@roles.role_required(roles.ADMIN)
def webhook_list(request):
    """Every endpoint, and the form to add one. A generated secret is shown on this answer only (never redirected:
    it would have to be kept for the next request), and no cache may keep it."""
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if not form.is_valid():
        return render_list(request, form, status=400 if form.errors else 200)
    endpoint = form.save(commit=False)
    endpoint.created_by = request.user.username
    endpoint.save()
    if not form.generated_secret:
        messages.success(request, _("The webhook “%(name)s” was added.") % {"name": endpoint.name})
        return redirect("browser-webhook", endpoint.pk)
    response = render_list(request, EndpointForm(), new_secret=form.generated_secret)
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
@roles.role_required(roles.ADMIN)
def webhook_detail(request, endpoint_id):
    """One endpoint: its settings (the secret write-only), its delivery log, and the test and delete buttons."""
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id)  # as saved: the form changes its own copy
    form = EndpointForm(
        request.POST if request.method == "POST" else None, instance=Endpoint.objects.get(pk=endpoint.pk)
    )
    if form.is_valid():
        form.save()
        messages.success(request, _("The webhook “%(name)s” was saved.") % {"name": form.instance.name})
        return redirect("browser-webhook", endpoint.pk)
    context = {
        "endpoint": endpoint,
        "form": form,
        "deliveries": endpoint.deliveries.all()[:DELIVERIES_SHOWN],
    }
    return render(request, "webhooks/endpoint.html", context, status=400 if form.errors else 200)


@require_POST
@roles.role_required(roles.ADMIN)
def webhook_delete(request, endpoint_id):
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id)
    endpoint.delete()
    messages.success(request, _("The webhook “%(name)s” was deleted.") % {"name": endpoint.name})
    return redirect("browser-webhooks")


@require_POST
@roles.role_required(roles.ADMIN)
def webhook_test(request, endpoint_id):
    """Queue a test event to this endpoint; its outcome appears in the delivery log."""
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id)
    tasks.send_test_event(endpoint, request.user.username)
    messages.info(request, _("A test event was queued; its outcome appears in the delivery log below."))
    return redirect("browser-webhook", endpoint.pk)
