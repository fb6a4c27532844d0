"""Retention policies, for admins: the list and the form to add one, editing, a dry run, and running now."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import roles
from accounts.throttle import client_address
from catalog import sync
from cleanup import retention, tasks
from cleanup.forms import RetentionPolicyForm
from cleanup.models import RetentionPolicy

TAGS_SHOWN = 200  # per repository on the dry run page


def get_policy(policy_id: int) -> RetentionPolicy:
    return get_object_or_404(RetentionPolicy, pk=policy_id, registry=sync.current_registry())


@require_http_methods(["GET", "POST"])
@roles.role_required(roles.ADMIN)
def policy_list(request):
    """Every policy, and the form to add one."""
    registry = sync.current_registry()
    form = RetentionPolicyForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        policy = retention.add_policy(form.save(commit=False), registry, request.user.username, client_address(request))
        messages.success(request, _("The policy for %(pattern)s was added.") % {"pattern": policy.repositories})
        return redirect("browser-retention")
    context = {"rows": retention.policy_rows(registry), "form": form}
    return render(request, "cleanup/retention.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@roles.role_required(roles.ADMIN)
def policy_edit(request, policy_id):
    policy = get_policy(policy_id)  # as saved: the form changes its own copy even when the input is bad
    form = RetentionPolicyForm(request.POST if request.method == "POST" else None, instance=get_policy(policy_id))
    if form.is_valid():
        retention.change_policy(form.save(commit=False), policy, request.user.username, client_address(request))
        messages.success(request, _("The policy for %(pattern)s was saved.") % {"pattern": form.instance.repositories})
        return redirect("browser-retention")
    context = {"policy": policy, "form": form}
    return render(request, "cleanup/retention_form.html", context, status=400 if form.errors else 200)


@require_POST
@roles.role_required(roles.ADMIN)
def policy_delete(request, policy_id):
    policy = get_policy(policy_id)
    retention.remove_policy(policy, request.user.username, client_address(request))
    messages.success(request, _("The policy for %(pattern)s was deleted.") % {"pattern": policy.repositories})
    return redirect("browser-retention")


@require_GET
@roles.role_required(roles.ADMIN)
def policy_dry_run(request, policy_id):
    """What a run would delete now, judged from the index; nothing is written to the registry."""
    policy = get_policy(policy_id)
    preview = retention.preview(policy.registry, policy)
    context = {
        "policy": policy,
        "rules": retention.describe(policy),
        "preview": preview,
        "tags_shown": TAGS_SHOWN,
        "tags_slice": f":{TAGS_SHOWN}",
        "active_job": retention.active_job(policy),
    }
    return render(request, "cleanup/retention_dry_run.html", context)


@require_POST
@roles.role_required(roles.ADMIN)
def policy_run(request, policy_id):
    """Queue a run of the policy now; its page shows the progress."""
    policy = get_policy(policy_id)
    if running := retention.active_job(policy):
        messages.info(request, _("A run of this policy is already queued or running."))
        return redirect(reverse("browser-delete-job", args=[running.pk]))
    job = tasks.start_retention_run(policy, request.user.username, client_address(request))
    return redirect(reverse("browser-delete-job", args=[job.pk]))
