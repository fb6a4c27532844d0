"""The index: what the registry holds, kept in the database so pages can sort, search and count at any size.

Rows addressed by digest (Manifest, Blob and their links) never change once written; tags move and
repositories come and go, and the sync engine (browser/index.py) keeps those in step with the registry.
"""

from django.db import models
from django.utils import timezone


class Registry(models.Model):
    """A registry the dashboard indexes. Today there is one, from the environment."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, unique=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    # How this registry deletes, found once by probing and remembered (browser/deletion.py).
    tag_delete = models.CharField(max_length=20, blank=True, help_text="native (3.x), throwaway (2.x) or unknown.")
    delete_status = models.CharField(max_length=20, blank=True, help_text="enabled, disabled or read-only.")
    capabilities_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "registries"

    def __str__(self):
        return self.name


class Blob(models.Model):
    digest = models.CharField(max_length=80, unique=True)
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return self.digest


class Manifest(models.Model):
    """An image manifest or an index. For an index, size and created cover its platform images."""

    digest = models.CharField(max_length=80, unique=True)
    media_type = models.CharField(max_length=200)
    is_index = models.BooleanField(default=False)
    size = models.BigIntegerField(help_text="Compressed size: config and layers, each blob counted once.")
    created = models.DateTimeField(null=True, blank=True, db_index=True)
    platform = models.CharField(max_length=100, blank=True, help_text="os/architecture/variant of an image.")
    platforms = models.JSONField(default=list, help_text="For an index: its images' platforms.")
    has_attestations = models.BooleanField(default=False)
    config_digest = models.CharField(max_length=80, blank=True)
    labels = models.JSONField(default=dict)
    error = models.TextField(blank=True, help_text="Why the manifest could not be read in full.")
    blobs = models.ManyToManyField(Blob, through="ManifestBlob", related_name="manifests")
    children = models.ManyToManyField(
        "self", through="ManifestChild", symmetrical=False, related_name="indexes", through_fields=("index", "child")
    )
    indexed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.digest


class ManifestBlob(models.Model):
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE)
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE)
    position = models.IntegerField(help_text="-1 for the config blob, then the layers in order.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["manifest", "position"], name="manifest_blob_position")]


class ManifestChild(models.Model):
    """An index entry: a platform image or an attestation manifest."""

    index = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="child_links")
    child = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="index_links")
    platform = models.CharField(max_length=100, blank=True)
    is_attestation = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["index", "child"], name="index_child")]


class Repository(models.Model):
    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=255)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "repositories"
        constraints = [models.UniqueConstraint(fields=["registry", "name"], name="registry_repository")]

    def __str__(self):
        return self.name

    @property
    def namespace(self) -> str:
        return self.name.rpartition("/")[0]


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="tags")
    first_seen = models.DateTimeField(default=timezone.now)
    pushed_at = models.DateTimeField(default=timezone.now, db_index=True, help_text="When it last moved.")
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="repository_tag")]
        indexes = [models.Index(fields=["repository", "pushed_at"])]

    def __str__(self):
        return f"{self.repository.name}:{self.name}"


class SyncRun(models.Model):
    """One reconcile of the whole registry or of one repository, with its progress."""

    FULL, REPOSITORY = "full", "repository"
    RUNNING, DONE, FAILED = "running", "done", "failed"

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=20, choices=[(FULL, "full"), (REPOSITORY, "repository")])
    repository = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, default=RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    repositories_total = models.IntegerField(default=0)
    repositories_done = models.IntegerField(default=0)
    manifests_fetched = models.IntegerField(default=0)
    errors = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["registry", "-started_at"])]


class RegistryEvent(models.Model):
    """A notification the registry sent (push, pull, delete), kept once by its event id."""

    event_id = models.CharField(max_length=100, unique=True)
    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20)
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=80, blank=True)
    media_type = models.CharField(max_length=200, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    address = models.CharField(max_length=100, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["repository", "-received_at"])]


# --- Deleting -------------------------------------------------------------------------------


class DeleteJob(models.Model):
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
    # A draft is a previewed selection waiting for its confirmation.
    DRAFT, QUEUED, RUNNING, DONE, FAILED = "draft", "queued", "running", "done", "failed"

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="delete_jobs")
    kind = models.CharField(max_length=20, choices=KINDS)
    repository = models.CharField(max_length=255, blank=True)
    policy = models.ForeignKey("RetentionPolicy", null=True, blank=True, on_delete=models.SET_NULL)
    requested_by = models.CharField(max_length=150)
    address = models.CharField(max_length=100, blank=True)
    selection = models.JSONField(default=list)
    status = models.CharField(max_length=20, default=QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.IntegerField(default=0, help_text="Tags in the selection.")
    done = models.IntegerField(default=0, help_text="Tags handled so far, whatever the outcome.")
    failed = models.IntegerField(default=0)
    bytes_estimate = models.BigIntegerField(default=0, help_text="Freed after garbage collection, from the index.")
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["registry", "-created_at"])]

    @property
    def finished(self) -> bool:
        return self.status in (self.DONE, self.FAILED)


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
    bytes = models.BigIntegerField(default=0, help_text="Estimated bytes freed after garbage collection.")
    job = models.ForeignKey(DeleteJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries")

    class Meta:
        ordering = ["-timestamp", "-pk"]
        verbose_name_plural = "audit entries"


class RetentionPolicy(models.Model):
    """Harbor's tag retention: for the repositories matching `repositories` (a shell pattern, `*` crossing
    slashes), a tag is kept when ANY retain rule keeps it, or when it is protected; every other tag is
    deleted. A digest that any kept tag uses is never deleted (such tags are only untagged)."""

    PUSHED, CREATED = "pushed", "created"
    OFF, DAILY, WEEKLY = "off", "daily", "weekly"
    SCHEDULE_SECONDS = {DAILY: 86400, WEEKLY: 7 * 86400}

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="retention_policies")
    repositories = models.CharField(max_length=255, help_text="Shell pattern, e.g. shop/* or *.")
    keep_newest = models.PositiveIntegerField(null=True, blank=True)
    newest_by = models.CharField(max_length=10, default=PUSHED, choices=[(PUSHED, "pushed"), (CREATED, "created")])
    keep_days = models.PositiveIntegerField(null=True, blank=True)
    keep_regex = models.CharField(max_length=500, blank=True)
    protect_regex = models.CharField(max_length=500, blank=True)
    schedule = models.CharField(max_length=10, default=OFF)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "retention policies"
        ordering = ["repositories", "pk"]

    def __str__(self):
        return self.repositories


# --- Garbage collection -----------------------------------------------------------------------


class GcRun(models.Model):
    """One garbage collection: a dry run (its preview) or a real run, with its live log and its outcome."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="gc_runs")
    dry_run = models.BooleanField(default=True)
    delete_untagged = models.BooleanField(default=False)
    preview = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, help_text="Its dry run.")
    requested_by = models.CharField(max_length=150)
    address = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, default=QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    log = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    blobs_marked = models.IntegerField(null=True, blank=True)
    blobs_eligible = models.IntegerField(null=True, blank=True)
    manifests_eligible = models.IntegerField(null=True, blank=True)
    bytes_estimate = models.BigIntegerField(null=True, blank=True, help_text="Eligible blobs' sizes, from the index.")
    used_before = models.BigIntegerField(null=True, blank=True, help_text="Storage bytes before (du).")
    used_after = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["registry", "-created_at"])]

    @property
    def finished(self) -> bool:
        return self.status in (self.DONE, self.FAILED)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def bytes_freed(self) -> int | None:
        if self.used_before is None or self.used_after is None:
            return None
        return self.used_before - self.used_after
