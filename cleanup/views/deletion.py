"""Deleting tags, images and repositories: choose, preview, confirm, watch the job, read each tag's outcome.

Every mutation is a POST (CSRF-checked by Django's middleware) behind a role: maintainers delete tags and
images, admins delete repositories. What the preview showed is what the job may delete: the job carries
(repository, tag, digest) as shown, and cleanup/run.py re-reads the registry before touching it.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import roles
from accounts.throttle import client_address
from catalog import queries, sync
from catalog.freshness import revalidated
from catalog.models import Repository
from catalog.pages import render_page
from cleanup import plan, run, tasks
from cleanup.jobs import OUTCOMES, job_results, visible_job
from cleanup.models import DeleteJob
from cleanup.plan import Choice
from cleanup.selection import (
    FILTER_FIELDS,
    TagFilterForm,
    refused_filter_key,
    selected_tags,
    selection_key,
    unknown_push_times,
)
from registry.client import DIGEST_RE, get_client

RESULTS_PER_PAGE = 100


# --- Choosing ---------------------------------------------------------------------------------


@require_POST
@roles.role_required(roles.MAINTAINER)
def selection_update(request, name):
    """Change the tags selected for deletion in a repository (kept in the session, so a selection spans
    pages): `page` sets this page's tags to the ones checked, `filter` adds every tag a filter selects,
    `clear` empties it."""
    repository = get_object_or_404(Repository, registry=sync.current_registry(), name=name)
    selection = set(selected_tags(request, name))
    action = request.POST.get("action", "page")
    if action == "page":
        on_page = set(request.POST.getlist("page_tags"))
        selection = (selection - on_page) | (set(request.POST.getlist("tag")) & on_page)
    elif action == "filter":
        form = TagFilterForm(request.POST)
        if not form.is_valid():  # back to the form, open, with the input and its error next to the field
            request.session[refused_filter_key(name)] = {key: request.POST.get(key, "") for key in FILTER_FIELDS}
            return redirect(f"{reverse('browser-repository', args=[name])}?delete=old#select-by-filter")
        found = form.selected(repository)
        selection |= set(found)
        text = ngettext(
            "%(count)d tag matched the filter and was added.",
            "%(count)d tags matched the filter and were added.",
            len(found),
        )
        messages.info(request, text % {"count": len(found)})
        dated = form.cleaned_data["before"] or form.cleaned_data["keep_newest"]
        if dated and form.cleaned_data["by"] == "pushed" and (unknown := unknown_push_times(repository)):
            text = ngettext(
                "%(count)d tag has no known push time (found before the dashboard watched): its image's creation "
                "time stood in for it.",
                "%(count)d tags have no known push time (found before the dashboard watched): their images' "
                "creation time stood in for it.",
                unknown,
            )
            messages.warning(request, text % {"count": unknown})
    elif action == "clear":
        selection = set()
    request.session[selection_key(name)] = sorted(selection & set(repository.tags.values_list("name", flat=True)))
    if request.htmx and action == "page":  # the checkboxes' form: only the bar's count changes
        context = {"repository": repository, "selection": request.session[selection_key(name)]}
        return render_page(request, "catalog/repository.html", context, {"selection-bar": "selection_bar"})
    return redirect_back(request, name)


def redirect_back(request, name: str):
    """Back to the repository page the form was on (only a path of this site is followed)."""
    target = request.POST.get("next", "")
    if not target.startswith(reverse("browser-repository", args=[name])):
        target = reverse("browser-repository", args=[name])
    return redirect(target)


# --- Previews ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@roles.role_required(roles.MAINTAINER)
def tag_delete(request, name, tag):
    """One tag: what goes with each of the two choices (only this tag, or the whole image); POST carries
    the choice and the digest that was shown."""
    registry = sync.current_registry()
    if request.method == "POST":
        return start_tag_delete(request, registry, name, tag)
    digest = get_client().resolve(name, tag)
    sync.record_push(get_client(), registry, name, tag, digest)  # the index must agree on this tag
    repository = revalidated(name)
    siblings = sorted(
        repository.tags.filter(manifest__digest=digest).exclude(name=tag).values_list("name", flat=True),
        key=queries.natural_key,
    )
    only_tag = plan.plan(registry, [Choice(name, tag, digest)])
    whole = plan.plan(registry, [Choice(name, other, digest) for other in [tag, *siblings]])
    context = {
        "repository": name,
        "tag": tag,
        "digest": digest,
        "siblings": siblings,
        "containing": queries.index_tags_containing(repository, digest),
        "only_tag": only_tag,
        "whole": whole,
        "refusal": run.registry_refusal(registry),
    }
    return render(request, "cleanup/tag_delete.html", context)


def new_job(request, registry, name: str, kind: str, choices: list[Choice], **fields) -> DeleteJob:
    """A delete job asked for by this request's user, from this request's address."""
    user, address = request.user.username, client_address(request)
    return run.create_job(registry, kind, choices, user=user, address=address, repository=name, **fields)


def queue_new_job(request, registry, name: str, kind: str, choices: list[Choice]) -> DeleteJob:
    """A new job and its task, or neither: a server that dies between the two must not leave a job nothing runs
    (with the database's task queue both are one transaction)."""
    with transaction.atomic():
        return tasks.queue_delete_job(new_job(request, registry, name, kind, choices))


def start_tag_delete(request, registry, name, tag):
    digest = request.POST.get("digest", "")
    if not DIGEST_RE.match(digest) or not registry.repositories.filter(name=name).exists():
        messages.error(request, _("This delete form is incomplete; open the tag's Delete page again."))
        return redirect("browser-repository", name)
    if request.POST.get("choice") == "image":
        tags = [tag, *request.POST.getlist("sibling")]
        kind = DeleteJob.IMAGE
    else:
        tags, kind = [tag], DeleteJob.TAG
    choices = [Choice(name, each, digest) for each in tags]
    job = queue_new_job(request, registry, name, kind, choices)
    return redirect("browser-delete-job", job.pk)


@require_POST
@roles.role_required(roles.MAINTAINER)
def selection_preview(request, name):
    """Turn the repository's selection into a draft job and show its preview, where it is confirmed. Both read
    the index (a stale repository is revalidated by a task, as its page does): reading 10,000 tags again would
    hold the request for seconds, and the job reads the registry again before it deletes anything."""
    registry = sync.current_registry()
    tags = selected_tags(request, name)
    if not tags:
        messages.error(request, _("Select at least one tag first."))
        return redirect("browser-repository", name)
    repository = revalidated(name)
    digests = dict(repository.tags.filter(name__in=tags).values_list("name", "manifest__digest"))
    choices = [Choice(name, tag, digest) for tag, digest in digests.items()]
    job = new_job(request, registry, name, DeleteJob.TAGS, choices, status=DeleteJob.DRAFT)
    return redirect("browser-delete-job", job.pk)


@require_http_methods(["GET", "POST"])
@roles.role_required(roles.ADMIN)
def repository_delete(request, name):
    """Delete every image of a repository; the name is typed again to confirm. The page counts from the index;
    the job deletes every tag the registry has when it runs (see run.whole_repository)."""
    registry = sync.current_registry()
    repository = revalidated(name)
    choices = [Choice(name, tag, digest) for tag, digest in repository.tags.values_list("name", "manifest__digest")]
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() == name:
            job = queue_new_job(request, registry, name, DeleteJob.REPOSITORY, choices)
            return redirect("browser-delete-job", job.pk)
        error = _("Type the repository's name exactly to confirm.")
    context = {
        "repository": repository,
        "plan": plan.plan(registry, choices),
        "refusal": run.registry_refusal(registry),
        "error": error,
    }
    return render(request, "cleanup/repository_delete.html", context, status=400 if error else 200)


@require_POST
@roles.role_required(roles.MAINTAINER)
def half_deleted_finish(request, name):
    """Remove the tags a cut-off delete left half-deleted (listed by the registry, leading to no image)."""
    registry = sync.current_registry()
    repository = get_object_or_404(Repository, registry=registry, name=name)
    if not repository.half_deleted:
        messages.info(request, _("This repository has no half-deleted tags."))
        return redirect("browser-repository", name)
    choices = [Choice(name, tag, "") for tag in repository.half_deleted]  # no digest: they lead to none
    job = queue_new_job(request, registry, name, DeleteJob.TAGS, choices)
    return redirect("browser-delete-job", job.pk)


# --- Jobs -------------------------------------------------------------------------------------


@require_GET
@roles.role_required(roles.MAINTAINER)
def job_detail(request, job_id):
    """A draft's preview and confirmation; a running job's progress (htmx polls it); a finished job's
    outcome for every tag."""
    job = visible_job(request.user, job_id)
    context = {"job": job}
    if job.status == DeleteJob.DRAFT:
        draft = plan.plan(job.registry, [Choice(*row) for row in job.selection])
        # Tags removed alone first (the ones worth a second look), then in natural order.
        steps = sorted(draft.steps, key=lambda step: (step.deletes_manifest, queries.natural_key(step.tags[0])))
        context["plan"], context["refusal"] = draft, run.registry_refusal(job.registry)
        context["steps"] = Paginator(steps, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    else:
        rows = job_results(job)
        context["results"] = Paginator(rows, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
        counts = Counter(row["outcome"] for row in rows)
        context["outcomes"] = {outcome.replace("-", "_"): counts[outcome] for outcome in OUTCOMES}
    # htmx polls the progress and pages the preview
    return render_page(
        request, "cleanup/delete_job.html", context, {"job-progress": "progress", "preview-steps": "preview_steps"}
    )


@require_POST
@roles.role_required(roles.MAINTAINER)
def job_confirm(request, job_id):
    """Confirm a draft: queue it and empty the selection it came from."""
    job = visible_job(request.user, job_id)
    if job.status != DeleteJob.DRAFT:
        messages.info(request, _("This delete was already confirmed."))
        return redirect("browser-delete-job", job.pk)
    tasks.confirm_delete_job(job)
    request.session.pop(selection_key(job.repository), None)
    return redirect("browser-delete-job", job.pk)
