"""Retention policies through the API, as on the Retention page (admins): list, create, change and delete them
(each change in the audit log, with the caller and their address), a dry run from the index, and a run now."""

from django.forms.models import model_to_dict
from django.http import Http404, HttpResponse
from ninja import Router, Status
from ninja.errors import HttpError

from accounts import roles
from accounts.throttle import client_address
from api import answers, schemas
from api.forms import validated
from api.security import require_role
from catalog import sync
from cleanup import retention, tasks
from cleanup.forms import RetentionPolicyForm
from cleanup.models import RetentionPolicy

router = Router(tags=["retention"])


def get_policy(policy_id: int) -> RetentionPolicy:
    policy = RetentionPolicy.objects.filter(pk=policy_id, registry=sync.current_registry()).first()
    if policy is None:
        raise Http404(f"There is no retention policy {policy_id}.")
    return policy


def policy_answer(policy: RetentionPolicy) -> dict:
    row = next(row for row in retention.policy_rows(policy.registry) if row["policy"].pk == policy.pk)
    return answers.retention_policy(row)


@router.get("/retention-policies", response={200: schemas.RetentionPolicyList, **schemas.READING_PROBLEMS})
def policy_list(request):
    """Every retention policy, with its rules in words, the repositories it matches and its latest run."""
    require_role(request, roles.ADMIN)
    return {"items": [answers.retention_policy(row) for row in retention.policy_rows(sync.current_registry())]}


@router.post("/retention-policies", response={201: schemas.RetentionPolicy, **schemas.ACTING_PROBLEMS})
def policy_create(request, response: HttpResponse, body: schemas.RetentionPolicyIn):
    """Add a policy: at least one rule must keep tags."""
    require_role(request, roles.ADMIN)
    form = validated(RetentionPolicyForm, body.dict(), "body")
    user, address = request.user.username, client_address(request)
    policy = retention.add_policy(form.save(commit=False), sync.current_registry(), user, address)
    response["Location"] = answers.api_url("policy_detail", policy.pk)
    return Status(201, policy_answer(policy))


@router.get("/retention-policies/{policy_id}", response={200: schemas.RetentionPolicy, **schemas.READING_PROBLEMS})
def policy_detail(request, policy_id: int):
    require_role(request, roles.ADMIN)
    return policy_answer(get_policy(policy_id))


@router.patch("/retention-policies/{policy_id}", response={200: schemas.RetentionPolicy, **schemas.ACTING_PROBLEMS})
def policy_change(request, policy_id: int, body: schemas.RetentionPolicyChange):
    """Change the fields given; the audit log keeps the rules before and after."""
    require_role(request, roles.ADMIN)
    saved = get_policy(policy_id)
    values = {**model_to_dict(saved, fields=RetentionPolicyForm.Meta.fields), **body.dict(exclude_unset=True)}
    form = validated(RetentionPolicyForm, values, "body", instance=get_policy(policy_id))  # `saved` stays as it was
    policy = retention.change_policy(form.save(commit=False), saved, request.user.username, client_address(request))
    return policy_answer(policy)


@router.delete("/retention-policies/{policy_id}", response={204: None, **schemas.ACTING_PROBLEMS})
def policy_delete(request, policy_id: int):
    require_role(request, roles.ADMIN)
    retention.remove_policy(get_policy(policy_id), request.user.username, client_address(request))
    return Status(204, None)


@router.get(
    "/retention-policies/{policy_id}/dry-run", response={200: schemas.RetentionPreview, **schemas.READING_PROBLEMS}
)
def policy_dry_run(request, policy_id: int):
    """What a run would delete now, judged from the index; nothing is changed."""
    require_role(request, roles.ADMIN)
    policy = get_policy(policy_id)
    return answers.retention_preview(retention.preview(policy.registry, policy))


@router.post("/retention-policies/{policy_id}/run", response={202: schemas.DeleteJob, **schemas.ACTING_PROBLEMS})
def policy_run(request, response: HttpResponse, policy_id: int):
    """Run the policy now: a delete job, queued (409 while a run of it is queued or running)."""
    require_role(request, roles.ADMIN)
    policy = get_policy(policy_id)
    if running := retention.active_job(policy):
        raise HttpError(409, f"A run of this policy is already {running.status}: delete job {running.pk}.")
    job = tasks.start_retention_run(policy, request.user.username, client_address(request))
    job.refresh_from_db()
    response["Location"] = answers.api_url("delete_job_detail", job.pk)
    return Status(202, answers.delete_job(job))
