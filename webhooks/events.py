"""The events a webhook can carry, and the body of each: an id, its type, its time, the facts (`data`) and a
`text` line, so that a Slack or Mattermost incoming-webhook URL shows it as a message with no adapter between.
Pure functions over plain values: the receivers (receivers.py) gather the facts."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

TAG_PUSHED = "tag.pushed"
TAG_DELETED = "tag.deleted"
DELETE_JOB_FINISHED = "delete_job.finished"
RETENTION_RUN_FINISHED = "retention_run.finished"
GC_FINISHED = "gc.finished"
GC_FAILED = "gc.failed"
DISK_WARNING = "disk.warning"
RECONCILE_FAILING = "reconcile.failing"
TEST = "test"  # the page's "Send a test event": sent to one endpoint, whatever it chose

EVENT_LABELS = {
    TAG_PUSHED: _("Tag pushed"),
    TAG_DELETED: _("Tag deleted (through the dashboard or the registry)"),
    DELETE_JOB_FINISHED: _("Delete job finished"),
    RETENTION_RUN_FINISHED: _("Retention run finished"),
    GC_FINISHED: _("Garbage collection finished"),
    GC_FAILED: _("Garbage collection failed"),
    DISK_WARNING: _("Registry disk above the warning level"),
    RECONCILE_FAILING: _("Reconcile failing"),
}
EVENT_TYPES = list(EVENT_LABELS)


def link(path: str) -> str:
    """A page's address for people reading the event: absolute with DASHBOARD_URL, else the path alone."""
    return f"{settings.DASHBOARD_URL}{path}"


def payload(event_type: str, data: dict, text: str, when: datetime | None = None) -> dict:
    """The body every endpoint gets for one event (the same event id for each)."""
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "time": (when or timezone.now()).isoformat().replace("+00:00", "Z"),
        "text": f"[{settings.REGISTRY_PUBLIC_HOST}] {text}",
        "data": data,
    }


def size(count: int | None) -> str:
    with translation.override("en"):  # the texts are English, whoever's request or worker sends them
        return filesizeformat(count or 0).replace("\xa0", " ")  # a plain space in a chat message


def tag_pushed(repository: str, tag: str, digest: str, size_bytes: int, by: str, path: str) -> dict:
    data = {"repository": repository, "tag": tag, "digest": digest, "bytes": size_bytes, "by": by, "link": link(path)}
    who = f" by {by}" if by else ""
    text = f"{repository}:{tag} was pushed{who} ({digest[:19]}, {size(size_bytes)})."
    return payload(TAG_PUSHED, data, text)


def tag_deleted(repository: str, tag: str, digest: str, size_bytes: int | None, by: str, source: str) -> dict:
    """`source`: "dashboard" (a delete job) or "registry" (a delete made past the dashboard, from its notification;
    `tag` is empty when the registry named only the digest)."""
    data = {"repository": repository, "tag": tag, "digest": digest, "bytes": size_bytes, "by": by, "source": source}
    name = f"{repository}:{tag}" if tag else f"{repository}@{digest[:19]}"
    who = f" by {by}" if by else ""
    text = f"{name} was deleted{who} through the {source}."
    return payload(TAG_DELETED, data, text)


def job_finished(
    kind: str, job_id: int, repository: str, status: str, counts: dict, size_bytes: int, path: str, policy: str = ""
) -> dict:
    """A delete job's or a retention run's end (`kind`: DELETE_JOB_FINISHED or RETENTION_RUN_FINISHED)."""
    data = {
        "job": job_id,
        "repository": repository,
        "status": status,
        **counts,
        "bytes": size_bytes,
        "link": link(path),
    }
    if policy:
        data["policy"] = policy
    what = f"Retention run #{job_id} ({policy})" if kind == RETENTION_RUN_FINISHED else f"Delete job #{job_id}"
    where = f" in {repository}" if repository else ""
    text = (
        f"{what}{where} {'finished' if status == 'done' else 'failed'}: {counts['done']} of {counts['total']} tags "
        f"handled, {counts['failed']} failed, {size(size_bytes)} to free after garbage collection. {link(path)}"
    )
    return payload(kind, data, text)


def gc_finished(run_id: int, status: str, blobs: int | None, freed: int | None, error: str, path: str) -> dict:
    failed = status != "done"
    data = {"run": run_id, "status": status, "blobs": blobs, "bytes": freed, "error": error, "link": link(path)}
    if failed:
        text = f"Garbage collection #{run_id} failed: {error} {link(path)}"
    else:
        text = f"Garbage collection #{run_id} finished: {blobs or 0} blobs deleted, {size(freed)} freed. {link(path)}"
    return payload(GC_FAILED if failed else GC_FINISHED, data, text)


def disk_warning(used_percent: float, warn_percent: float, used: int, free: int, path: str) -> dict:
    data = {
        "used_percent": round(used_percent, 1),
        "warn_percent": warn_percent,
        "bytes": used,
        "free_bytes": free,
        "link": link(path),
    }
    text = (
        f"The registry's disk is {used_percent:.0f}% full ({size(free)} free), above the warning level of "
        f"{warn_percent:g}%. {link(path)}"
    )
    return payload(DISK_WARNING, data, text)


def reconcile_failing(run_id: int, kind: str, error: str, path: str) -> dict:
    data = {"run": run_id, "kind": kind, "error": error, "link": link(path)}
    text = f"Reconciling the index with the registry failed: {error} {link(path)}"
    return payload(RECONCILE_FAILING, data, text)


def test_event(endpoint_name: str, by: str) -> dict:
    data = {"endpoint": endpoint_name, "by": by}
    text = f"A test event for the webhook “{endpoint_name}”, sent by {by}."
    return payload(TEST, data, text)
