"""Deleting: the jobs a person confirmed (or a retention policy started), the audit log of everything done to
the registry, and the retention policies."""

from django.db import models
from django.utils import timezone

from catalog import schedule
from catalog.models import Registry
from cleanup import reasons

STORED_REASON = "The text untranslated, with its parameters (cleanup/reasons.py); null: only the text is known."


class Job(models.Model):
    """What a delete job and a garbage collection run share: a row a task works through, queued, then running,
    then done or failed, with its page showing the progress."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

    class Meta:
        abstract = True

    @property
    def finished(self) -> bool:
        return self.status in (self.DONE, self.FAILED)

    def fail(self, why) -> None:
        """Failed, for `why` (a stored reason, cleanup/reasons.py); the caller saves status, error and error_reason."""
        self.status, self.error, self.error_reason = self.FAILED, reasons.english(why), why

    @property
    def shown_error(self) -> str:
        """Why it failed, in the reader's language; a row written before reasons were stored shows its text."""
        return self.error if self.error_reason is None else reasons.shown(self.error_reason)

    @classmethod
    def end_abandoned(cls, registry, stuck: models.Q, why) -> list[int]:
        """Mark failed, for `why` (a stored reason), the registry's jobs the `stuck` condition finds (their worker
        died: a job left queued or running would hold up the work waiting for it); their ids."""
        found = cls.objects.filter(stuck, registry=registry)
        ids = list(found.values_list("pk", flat=True))
        found.filter(pk__in=ids).update(
            status=cls.FAILED, finished_at=timezone.now(), error=reasons.english(why), error_reason=why
        )
        return ids


class DeleteJob(Job):
    """One delete a person confirmed (a tag, an image, a selection, a repository) or a retention run,
    carried out by a task while its page shows the progress. `selection` is exactly what was confirmed:
    [[repository, tag, digest], …]; a tag that points elsewhere by the time the job runs is left alone."""

    TAG, IMAGE, TAGS, REPOSITORY, RETENTION = "tag", "image", "tags", "repository", "retention"
    KINDS = [
        (TAG, "remove a tag"),
        (IMAGE, "delete an image"),
        (TAGS, "delete tags"),
        (REPOSITORY, "delete a repository"),
        (RETENTION, "retention run"),
    ]
    DRAFT = "draft"  # a previewed selection waiting for its confirmation

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="delete_jobs")
    kind = models.CharField(max_length=20, choices=KINDS)
    repository = models.CharField(max_length=255, blank=True)
    policy = models.ForeignKey("RetentionPolicy", null=True, blank=True, on_delete=models.SET_NULL)
    requested_by = models.CharField(max_length=150)
    address = models.CharField(max_length=100, blank=True)
    selection = models.JSONField(default=list)
    status = models.CharField(max_length=20, default=Job.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Its worker's last sign of life.")
    total = models.IntegerField(default=0, help_text="Tags in the selection.")
    done = models.IntegerField(default=0, help_text="Tags handled so far, whatever the outcome.")
    failed = models.IntegerField(default=0)
    bytes_estimate = models.BigIntegerField(default=0, help_text="Freed after garbage collection, from the index.")
    error = models.TextField(blank=True)
    error_reason = models.JSONField(null=True, blank=True, help_text=STORED_REASON)

    class Meta:
        indexes = [models.Index(fields=["registry", "-created_at"], name="deletejob_registry_created")]


class AuditEntry(models.Model):
    """One thing done to the registry, by the dashboard (who asked, from where, what came of it) or seen in
    the registry's own delete notifications."""

    DASHBOARD, REGISTRY = "dashboard", "registry"
    # Actions: untagging one tag, deleting a manifest (and so its tags), a repository delete, retention rules.
    REMOVE_TAG, DELETE_MANIFEST, DELETE_REPOSITORY = "remove-tag", "delete-manifest", "delete-repository"
    RETENTION_RUN, RULE_CHANGE, REGISTRY_DELETE = "retention-run", "retention-rule", "registry-delete"
    GARBAGE_COLLECTION = "garbage-collection"
    ACTIONS = [
        REMOVE_TAG,
        DELETE_MANIFEST,
        DELETE_REPOSITORY,
        RETENTION_RUN,
        RULE_CHANGE,
        REGISTRY_DELETE,
        GARBAGE_COLLECTION,
    ]
    DONE, FAILED, SKIPPED = "done", "failed", "skipped"
    UNKNOWN = "unknown"  # the registry stopped answering mid-request: read back once it answers again

    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=20, default=DASHBOARD)
    user = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=30, db_index=True)
    repository = models.CharField(max_length=255, blank=True, db_index=True)
    tags = models.JSONField(default=list)
    digest = models.CharField(max_length=80, blank=True)
    outcome = models.CharField(max_length=20, default=DONE)
    message = models.TextField(blank=True)
    message_reason = models.JSONField(null=True, blank=True, help_text=STORED_REASON)
    bytes = models.BigIntegerField(default=0, help_text="Estimated bytes freed after garbage collection.")
    job = models.ForeignKey(DeleteJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries")

    class Meta:
        ordering = ["-timestamp", "-pk"]
        verbose_name_plural = "audit entries"

    @property
    def shown_message(self) -> str:
        """The message in the reader's language; a row written before reasons were stored shows its text."""
        return self.message if self.message_reason is None else reasons.shown(self.message_reason)


class RetentionPolicy(models.Model):
    """Harbor's tag retention: for the repositories matching `repositories` (a shell pattern, `*` crossing
    slashes), a tag is kept when ANY retain rule keeps it, or when it is protected; every other tag is
    deleted. A digest that any kept tag uses is never deleted (such tags are only untagged)."""

    PUSHED, CREATED = "pushed", "created"

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="retention_policies")
    repositories = models.CharField(max_length=255, help_text="Shell pattern, e.g. shop/* or *.")
    keep_newest = models.PositiveIntegerField(null=True, blank=True)
    newest_by = models.CharField(max_length=10, default=CREATED, choices=[(PUSHED, "pushed"), (CREATED, "created")])
    keep_days = models.PositiveIntegerField(null=True, blank=True)
    keep_regex = models.CharField(max_length=500, blank=True)
    protect_regex = models.CharField(max_length=500, blank=True)
    schedule = models.CharField(max_length=10, default=schedule.OFF)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "retention policies"
        ordering = ["repositories", "pk"]

    def __str__(self):
        return self.repositories
