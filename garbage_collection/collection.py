"""Garbage collection, run safely through the bridge (registry/bridge.py).

The registry frees no disk space when a manifest is deleted; its `garbage-collect` command does, and it has
no HTTP API. Run while a push is under way it can delete the layers being pushed, so a real run:
1. waits for delete jobs to finish (and delete jobs wait for it: see exclusion.py);
2. switches the registry to read-only and checks that an upload is refused;
3. runs `garbage-collect` with the registry's own config, its output streamed to the run's log;
4. switches the registry back, which also restarts it: its blob-descriptor cache would still list the
   deleted blobs, and a later re-push of one could look fine and fail to pull;
5. measures the storage's size before and after.
A dry run only does 3. `--delete-untagged` deletes the untagged platform images of multi-platform images on
2.x: it is offered on 3.x only, with a warning. One run at a time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from catalog import heartbeat
from catalog.models import Blob, Manifest, ManifestBlob, Registry
from cleanup.models import AuditEntry
from cleanup.reasons import english, reason
from garbage_collection import exclusion, signals
from garbage_collection.exclusion import Busy
from garbage_collection.models import GcRun
from registry import bridge
from registry.client import RegistryClient, RegistryError, get_client

logger = logging.getLogger(__name__)

SUMMARY_RE = re.compile(r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion")
ELIGIBLE_RE = re.compile(r"blob eligible for deletion: (sha256:[0-9a-f]{64})")
# An empty registry has no repositories folder yet: the command fails with this, and there is nothing to do.
EMPTY_MARK = "Path not found: /docker/registry/v2/repositories"
LOG_FLUSH_SECONDS = 0.5
ELIGIBLE_SHOWN = 500  # blobs listed on a run's page; the downloaded log has every one
PREVIEW_MAX_AGE_SECONDS = 3600  # a dry run older than this must be done again before collecting


@dataclass
class Summary:
    """What `garbage-collect` printed: its summary line and the blobs it found (or deleted)."""

    marked: int | None = None
    blobs: int | None = None
    manifests: int | None = None
    eligible: list[str] = field(default_factory=list)
    empty: bool = False  # an empty registry: nothing to collect

    @property
    def complete(self) -> bool:
        """Success needs the summary line: an unknown flag makes the command exit 0 without collecting."""
        return self.empty or self.marked is not None


def parse(output: str) -> Summary:
    summary = Summary(eligible=ELIGIBLE_RE.findall(output), empty=EMPTY_MARK in output)
    if match := SUMMARY_RE.search(output):
        summary.marked, summary.blobs, summary.manifests = map(int, match.groups())
    if summary.empty:
        summary.marked, summary.blobs, summary.manifests = 0, 0, 0
    return summary


def command(dry_run: bool, delete_untagged: bool) -> list[str]:
    args = ["garbage-collect"]
    if dry_run:
        args.append("--dry-run")
    if delete_untagged:
        args.append("--delete-untagged")
    return [*args, settings.REGISTRY_CONFIG_PATH]


def estimate(eligible: list[str]) -> int:
    """Bytes of the eligible blobs the index knows (layers and configs of manifests it has seen)."""
    sizes = 0
    for start in range(0, len(eligible), 500):
        sizes += sum(Blob.objects.filter(digest__in=eligible[start : start + 500]).values_list("size", flat=True))
    return sizes


@dataclass
class EligibleBlob:
    """A blob a collection would delete (or did), with what the index knows of it."""

    digest: str
    size: int | None = None  # None: the index never saw an image using it
    media_type: str = ""
    images: list[str] = field(default_factory=list)  # "repository:tag" of the deleted images that used it


def eligible_blobs(gc: GcRun, limit: int = ELIGIBLE_SHOWN) -> list[EligibleBlob]:
    """The first `limit` blobs the run's log names, with their sizes, and the deleted images that used them (while
    the index still links the image to its blobs): their tags, or repository@digest for a delete by digest."""
    rows = [EligibleBlob(digest) for digest in parse(gc.log).eligible[:limit]]
    known = {blob.digest: blob for blob in Blob.objects.filter(digest__in=[row.digest for row in rows])}
    links = ManifestBlob.objects.filter(blob__digest__in=list(known)).values_list("blob__digest", "manifest__digest")
    manifests_of: dict[str, set[str]] = defaultdict(set)
    for blob, manifest in links:
        manifests_of[blob].add(manifest)
    # The deleted images' own manifests are blobs too: the index has their type (not their length) and who used them.
    manifest_types = dict(
        Manifest.objects.filter(digest__in=[row.digest for row in rows if row.digest not in known]).values_list(
            "digest", "media_type"
        )
    )
    deleted: dict[str, set[str]] = defaultdict(set)
    wanted = set().union(*manifests_of.values(), manifest_types)
    for digest, repository, tags in AuditEntry.objects.filter(digest__in=wanted).values_list(
        "digest", "repository", "tags"
    ):
        # A delete by digest (the registry's report of one made outside the dashboard) names no tag.
        deleted[digest].update([f"{repository}:{tag}" for tag in tags] or [f"{repository}@{digest[:19]}"])
    for row in rows:
        if blob := known.get(row.digest):
            row.size, row.media_type = blob.size, blob.media_type
            row.images = sorted(set().union(*(deleted[manifest] for manifest in manifests_of[row.digest])))
        elif row.digest in manifest_types:
            row.media_type, row.images = manifest_types[row.digest], sorted(deleted[row.digest])
    return rows


def may_delete_untagged(registry: Registry) -> bool:
    """Only distribution 3.x (which deletes tags natively) keeps multi-platform images whole with it."""
    return registry.tag_delete == "native"


# --- Starting ---------------------------------------------------------------------------------


def new_run(registry: Registry, *, dry_run: bool, user: str, address: str = "", preview: GcRun | None = None,
            delete_untagged: bool = False) -> GcRun:  # fmt: skip
    """A queued run; Busy when one is queued or running already."""
    if delete_untagged and not may_delete_untagged(registry):
        raise ValueError("--delete-untagged is never used on distribution 2.x")
    with transaction.atomic():
        if exclusion.active(registry):
            raise Busy(reason(gettext_noop("A garbage collection is already queued or running.")))
        return GcRun.objects.create(
            registry=registry,
            dry_run=dry_run,
            delete_untagged=delete_untagged,
            preview=preview,
            requested_by=user,
            address=address,
        )


def collectable(gc: GcRun) -> bool:
    """A real run may follow this dry run: it finished well, found something, is recent and is the latest."""
    latest = gc.registry.gc_runs.filter(dry_run=True).order_by("-created_at").first()
    age = (timezone.now() - gc.finished_at).total_seconds() if gc.finished_at else None
    return bool(
        gc.dry_run
        and gc.status == GcRun.DONE
        and age is not None
        and age < PREVIEW_MAX_AGE_SECONDS
        and latest == gc
        and (gc.blobs_eligible or gc.manifests_eligible)
    )


# --- Running ----------------------------------------------------------------------------------


class NotReadOnly(Exception):
    """The registry still accepts uploads: nothing is collected. `why` is a stored reason (cleanup/reasons.py)."""

    def __init__(self, why) -> None:
        super().__init__(english(why))
        self.why = why


class LogWriter:
    """Collects output lines from the bridge's thread and writes them to the run at most every
    LOG_FLUSH_SECONDS, so the page's poll shows the log growing. The dashboard's own notes are lines starting
    with "# ", in English, and kept as stored reasons too (GcRun.log_notes) for the page to translate."""

    def __init__(self, run: GcRun) -> None:
        self.run, self.lines, self.notes, self.lock, self.flushed = run, [], [], threading.Lock(), 0.0

    def __call__(self, line: str) -> None:
        with self.lock:
            self.lines.append(line.rstrip("\n"))
        if time.monotonic() - self.flushed > LOG_FLUSH_SECONDS:
            self.flush()

    def note(self, why) -> None:
        """A line of the dashboard's own: `why` is a stored reason."""
        with self.lock:
            self.notes.append(why)
        self(f"# {english(why)}")

    def flush(self) -> None:
        with self.lock:
            text = "\n".join(self.lines)
            notes = list(self.notes)
            self.flushed = time.monotonic()
        GcRun.objects.filter(pk=self.run.pk).update(log=text, log_notes=notes)
        self.run.log, self.run.log_notes = text, notes


def run(gc: GcRun, client: RegistryClient | None = None) -> GcRun:
    """Carry out a queued run (in a task). Whatever happens, the registry is left writable and the run's
    outcome is written down."""
    client = client or get_client()
    gc.status, gc.started_at = GcRun.RUNNING, timezone.now()
    gc.save(update_fields=["status", "started_at"])
    with heartbeat.heartbeat(gc):
        carry_out(gc, client)
    return gc


def carry_out(gc: GcRun, client: RegistryClient) -> None:
    log = LogWriter(gc)
    read_only = False
    try:
        if not gc.dry_run:
            exclusion.wait_for_deletes(gc.registry, log.note)
        gc.used_before = storage_bytes(log)
        if not gc.dry_run and bridge.can_restart():
            log.note(reason(gettext_noop("Switching the registry to read-only.")))
            bridge.restart_registry(read_only=True)
            read_only = True
        if not gc.dry_run:
            verify_read_only(client, gc.registry)  # else the registry's owner switched it
            log.note(reason(gettext_noop("Uploads are refused: collecting.")))
        result = bridge.run_registry(command(gc.dry_run, gc.delete_untagged), on_line=log)
        record(gc, result, log)
    except (Busy, NotReadOnly) as exc:
        gc.fail(exc.why)
        log.note(exc.why)
    except (bridge.BridgeError, RegistryError) as exc:
        gc.fail(exc.message)  # the bridge's or the registry's own words
        log.note(exc.message)
    finally:
        if read_only:
            restore(gc, log)
        elif not gc.dry_run and gc.status == GcRun.DONE:
            switch_back = gettext_noop(
                "Now switch the registry back to writable and restart it (its blob cache still lists the deleted "
                "blobs)."
            )
            log.note(reason(switch_back))
        if not gc.dry_run:
            gc.used_after = storage_bytes(log)
        log.flush()
        gc.finished_at = timezone.now()
        gc.save()
        if not gc.dry_run:
            audit(gc)
            transaction.on_commit(lambda: signals.collection_finished.send(GcRun, run=gc))


def audit(gc: GcRun) -> None:
    """A real collection goes to the audit log beside the deletes it frees."""
    why = gc.error_reason if gc.error else reason(gettext_noop("%(blobs)s blobs deleted."), blobs=gc.blobs_eligible)
    AuditEntry.objects.create(
        user=gc.requested_by,
        address=gc.address,
        action=AuditEntry.GARBAGE_COLLECTION,
        outcome=AuditEntry.DONE if gc.status == GcRun.DONE else AuditEntry.FAILED,
        message=english(why),
        message_reason=why,
        bytes=max(gc.bytes_freed or 0, 0),
    )


def record(gc: GcRun, result: bridge.Result, log: LogWriter) -> None:
    summary = parse(result.output)
    gc.exit_code = result.exit_code
    gc.blobs_marked, gc.blobs_eligible, gc.manifests_eligible = summary.marked, summary.blobs, summary.manifests
    gc.bytes_estimate = estimate(summary.eligible)
    if not gc.dry_run and result.exit_code == 0 and summary.complete:
        forget_blobs(summary.eligible)  # after the estimate: its sizes come from those rows
    if result.timed_out:
        gc.fail(
            reason(gettext_noop("Stopped after %(seconds)s seconds (GC_TIME_LIMIT)."), seconds=settings.GC_TIME_LIMIT)
        )
    elif summary.empty:
        gc.status = GcRun.DONE
        log.note(reason(gettext_noop("The registry is empty: nothing to collect.")))
    elif result.exit_code == 0 and summary.complete:
        gc.status = GcRun.DONE
    else:
        no_summary = gettext_noop("garbage-collect exited with code %(code)s without its summary line.")
        gc.fail(reason(no_summary, code=result.exit_code))


def forget_blobs(deleted: list[str]) -> None:
    """Drop the index's rows of blobs the collection deleted and no indexed manifest uses."""
    for start in range(0, len(deleted), 500):
        Blob.objects.filter(digest__in=deleted[start : start + 500], manifests__isnull=True).delete()


def restore(gc: GcRun, log: LogWriter) -> None:
    """Back to writable (a restart, which also empties the registry's blob cache)."""
    try:
        bridge.restart_registry(read_only=False)
        log.note(reason(gettext_noop("The registry is writable again (restarted).")))
    except bridge.BridgeError as exc:
        not_back = gettext_noop("The registry could not be switched back to writable: %(error)s")
        gc.fail(reason(not_back, error=exc.message))
        log.note(gc.error_reason)
        logger.error("GC %s: registry left read-only: %s", gc.pk, exc.message)


def verify_read_only(client: RegistryClient, registry: Registry) -> None:
    """An upload must be refused before collecting (probed in a repository that exists already, so the probe
    leaves nothing behind)."""
    existing = registry.repositories.order_by("name").values_list("name", flat=True).first()
    if not client.accepts_uploads(existing or ""):
        return
    if bridge.can_restart():
        raise NotReadOnly(
            reason(gettext_noop("The registry still accepts uploads after the switch to read-only: not collecting."))
        )
    raise NotReadOnly(
        reason(
            gettext_noop(
                "The registry accepts uploads: switch it to read-only first (storage.maintenance.readonly.enabled: "
                "true in its config, or REGISTRY_STORAGE_MAINTENANCE_READONLY='{\"enabled\":true}', then restart "
                "it). Not collecting."
            )
        )
    )


def storage_bytes(log: LogWriter) -> int | None:
    try:
        return bridge.disk_usage().storage_bytes
    except bridge.BridgeError as exc:
        log.note(reason(gettext_noop("Storage size not measured: %(error)s"), error=exc.message))
        return None
