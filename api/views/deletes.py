"""Deleting through the API, as on the repository page: a request names tags and/or gives the page's filter, and
gets the plan back as a draft job (what goes with its image, what is only untagged, the bytes freed after garbage
collection); a second call confirms it and queues the job, whose status and per-tag outcomes are read back. The same
engine (cleanup/plan.py, cleanup/run.py), the same rules (maintainers; a draft is its requester's, as on the pages) and
the same audit entries, with the caller and their address."""

from django.http import HttpResponse
from django.utils import translation
from ninja import Router, Status
from ninja.errors import HttpError

from accounts import roles
from accounts.throttle import client_address
from api import answers, schemas
from api.forms import validated
from api.security import require_role
from catalog import freshness
from catalog.models import Repository
from cleanup import jobs, plan, run, tasks
from cleanup.models import DeleteJob
from cleanup.plan import Choice
from cleanup.selection import TagFilterForm

router = Router(tags=["deletes"])


@router.post("/deletes", response={201: schemas.DeleteJob, **schemas.ACTING_PROBLEMS})
def delete_plan(request, response: HttpResponse, body: schemas.DeleteRequest):
    """Plan a delete of a repository's tags (named, and/or selected by the filter): a draft job with its plan. Nothing
    is deleted before it is confirmed (maintainers and admins)."""
    require_role(request, roles.MAINTAINER)
    repository = freshness.revalidated(body.repository)
    digests = dict(
        repository.tags.filter(name__in=chosen_tags(repository, body)).values_list("name", "manifest__digest")
    )
    choices = [Choice(repository.name, tag, digest) for tag, digest in digests.items()]
    job = run.create_job(
        repository.registry,
        DeleteJob.TAGS,
        choices,
        user=request.user.username,
        address=client_address(request),
        repository=repository.name,
        status=DeleteJob.DRAFT,
    )
    response["Location"] = answers.api_url("delete_job_detail", job.pk)
    return Status(201, draft_answer(job))


def chosen_tags(repository: Repository, body: schemas.DeleteRequest) -> set[str]:
    """The tags named and the ones the filter selects; a 422 for a tag the index lacks, a filter the page would refuse,
    or nothing chosen at all."""
    named = set(body.tags)
    if unknown := named - set(repository.tags.filter(name__in=named).values_list("name", flat=True)):
        listed = ", ".join(sorted(unknown)[:10])
        raise HttpError(422, f"body.tags: {repository.name} has no tag {listed} in the index; list its tags first.")
    if body.filter:
        named |= set(validated(TagFilterForm, body.filter.dict(), "body.filter").selected(repository))
    if not named:
        raise HttpError(422, "Nothing to delete: name tags in `tags`, or give a `filter` that selects some.")
    return named


def draft_answer(job: DeleteJob) -> dict:
    """A draft's plan is made again from the index each time it is read, as its page does."""
    draft = plan.plan(job.registry, [Choice(*row) for row in job.selection])
    with translation.override("en"):
        refusal = run.registry_refusal(job.registry)
    return answers.delete_job(job, draft, refusal)


@router.get("/deletes/{job_id}", response={200: schemas.DeleteJob, **schemas.READING_PROBLEMS})
def delete_job_detail(request, job_id: int):
    """A delete job: a draft's plan; a queued or running job's progress; a finished job's outcome for every tag
    (maintainers and admins; a retention run only admins and whoever started it)."""
    require_role(request, roles.MAINTAINER)
    job = jobs.visible_job(request.user, job_id)
    return draft_answer(job) if job.status == DeleteJob.DRAFT else answers.delete_job(job)


@router.post("/deletes/{job_id}/confirm", response={202: schemas.DeleteJob, **schemas.ACTING_PROBLEMS})
def delete_confirm(request, response: HttpResponse, job_id: int):
    """Confirm a draft: the job is queued, and reads the registry again before it deletes anything."""
    require_role(request, roles.MAINTAINER)
    job = jobs.visible_job(request.user, job_id)
    if job.status != DeleteJob.DRAFT:
        raise HttpError(409, f"Delete job {job.pk} was already confirmed; it is {job.status}.")
    tasks.confirm_delete_job(job)
    job.refresh_from_db()
    response["Location"] = answers.api_url("delete_job_detail", job.pk)
    return Status(202, answers.delete_job(job))
