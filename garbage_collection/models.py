"""Garbage collection's runs: dry runs (previews) and real runs, with their logs and outcomes."""

from django.db import models
from django.utils import timezone

from catalog.models import Registry
from cleanup.models import STORED_REASON, Job


class GcRun(Job):
    """One garbage collection: a dry run (its preview) or a real run, with its live log and its outcome."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="gc_runs")
    dry_run = models.BooleanField(default=True)
    delete_untagged = models.BooleanField(default=False)
    preview = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, help_text="Its dry run.")
    requested_by = models.CharField(max_length=150)
    address = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, default=Job.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Its worker's last sign of life.")
    log = models.TextField(blank=True)
    log_notes = models.JSONField(default=list, blank=True, help_text="The log's own notes as stored reasons.")
    exit_code = models.IntegerField(null=True, blank=True)
    blobs_marked = models.IntegerField(null=True, blank=True)
    blobs_eligible = models.IntegerField(null=True, blank=True)
    manifests_eligible = models.IntegerField(null=True, blank=True)
    bytes_estimate = models.BigIntegerField(null=True, blank=True, help_text="Eligible blobs' sizes, from the index.")
    used_before = models.BigIntegerField(null=True, blank=True, help_text="Storage bytes before (du).")
    used_after = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_reason = models.JSONField(null=True, blank=True, help_text=STORED_REASON)

    class Meta:
        indexes = [models.Index(fields=["registry", "-created_at"], name="gcrun_registry_created")]

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def bytes_freed(self) -> int | None:
        """The storage folder before minus after, for a collection that ran; None for the others (a failed run's
        folder still changes: the registry's own files, a log), never below 0."""
        if self.dry_run or self.status != Job.DONE or self.used_before is None or self.used_after is None:
            return None
        return max(self.used_before - self.used_after, 0)
