"""Delete jobs as people see them: who may see which job, and what became of each tag it chose. The pages and the
API read them alike."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts import roles
from catalog import queries
from cleanup.models import AuditEntry, DeleteJob

OUTCOMES = [AuditEntry.FAILED, AuditEntry.UNKNOWN, "not-attempted", AuditEntry.SKIPPED, AuditEntry.DONE]


def visible_job(user, job_id: int) -> DeleteJob:
    """Maintainers see every delete job, as the audit log shows them every delete; a draft only its requester, and a
    retention run only admins and whoever started it."""
    job = get_object_or_404(DeleteJob.objects.select_related("policy"), pk=job_id)
    mine = job.requested_by == user.username
    if job.status == DeleteJob.DRAFT and not mine:
        raise Http404
    if not mine and not roles.has_role(user, roles.ADMIN) and job.kind == DeleteJob.RETENTION:
        raise PermissionDenied
    return job


def job_results(job: DeleteJob) -> list[dict]:
    """One row per chosen tag with its outcome, failures first. Tags the job never reached (it stopped, or
    it is still running) are "not attempted"."""
    rows, reached = [], set()
    for entry in job.entries.order_by("pk"):
        for tag in entry.tags:
            reached.add((entry.repository, tag))
            rows.append(
                {
                    "repository": entry.repository,
                    "tag": tag,
                    "digest": entry.digest,
                    "action": entry.action,
                    "outcome": entry.outcome,
                    "message": entry.shown_message,
                }
            )
    if job.finished:
        rows += [
            {
                "repository": repository,
                "tag": tag,
                "digest": digest,
                "action": "",
                "outcome": "not-attempted",
                "message": job.shown_error,
            }
            for repository, tag, digest in job.selection
            if (repository, tag) not in reached
        ]
    return sorted(rows, key=lambda row: (OUTCOMES.index(row["outcome"]), queries.natural_key(row["tag"])))
