"""The index: what the registry holds, kept in the database so pages can sort, search and count at any size.

Rows addressed by digest (Manifest, Blob and their links) never change once written; tags move and
repositories come and go, and the sync engine (catalog/sync.py) keeps those in step with the registry.
"""

from django.db import models
from django.utils import timezone

from catalog.natural import natural_key


class Registry(models.Model):
    """A registry the dashboard indexes. Today there is one, from the environment."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, unique=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    # How this registry deletes, found once by probing and remembered (cleanup/run.py).
    tag_delete = models.CharField(max_length=20, blank=True, help_text="native (3.x), throwaway (2.x) or unknown.")
    delete_status = models.CharField(max_length=20, blank=True, help_text="enabled, disabled or read-only.")
    capabilities_checked_at = models.DateTimeField(null=True, blank=True)
    # Set by every write that changes what a page shows (catalog/sync.py): the pages' ETags are made from it.
    index_changed_at = models.DateTimeField(null=True, blank=True)

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
    # When its tags list was last read (tags added and removed followed): the page's "As of".
    synced_at = models.DateTimeField(null=True, blank=True)
    # When every tag's digest was last asked about (a HEAD each: did it move?): full syncs and reconciles.
    verified_at = models.DateTimeField(null=True, blank=True)
    half_deleted = models.JSONField(
        default=list, blank=True, help_text="Tags the registry lists that lead to no image (a delete cut off half way)."
    )

    class Meta:
        verbose_name_plural = "repositories"
        constraints = [models.UniqueConstraint(fields=["registry", "name"], name="registry_repository")]

    def __str__(self):
        return self.name

    @property
    def namespace(self) -> str:
        return self.name.rpartition("/")[0]


class TagQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """As Tag.save() does, each tag's name key is set from its name (bulk_create never calls save())."""
        objs = list(objs)
        for tag in objs:
            tag.name_key = natural_key(tag.name)
        return super().bulk_create(objs, *args, **kwargs)


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    # The name's natural order (catalog/natural.py) as bytes, which both databases sort and index alike.
    name_key = models.BinaryField(default=b"")
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="tags")
    first_seen = models.DateTimeField(default=timezone.now)
    pushed_at = models.DateTimeField(default=timezone.now, db_index=True, help_text="When it last moved.")
    # The registry records no push times: one is known when a notification told of the push, or when the tag
    # appeared or moved between two readings. Tags found at a repository's first reading were pushed before the
    # dashboard watched: their pushed_at is only when it first saw them.
    pushed_known = models.BooleanField(default=True)
    # When the index last wrote this tag (added or moved it): a sync leaves tags written after its reading began.
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="repository_tag")]
        indexes = [
            models.Index(fields=["repository", "pushed_at"], name="tag_repository_pushed"),
            models.Index(fields=["repository", "name_key"], name="tag_repository_name_key"),
        ]

    objects = TagQuerySet.as_manager()

    def save(self, *args, **kwargs):
        self.name_key = natural_key(self.name)
        super().save(*args, **kwargs)

    def __str__(self):
        return f"{self.repository.name}:{self.name}"


class SyncRun(models.Model):
    """One reconcile of the whole registry or of one repository, with its progress."""

    # A full reconcile asks about every tag's digest; a lists reconcile reads the tags lists only.
    FULL, LISTS, REPOSITORY = "full", "lists", "repository"
    RUNNING, DONE, FAILED = "running", "done", "failed"

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=20, choices=[(FULL, "full"), (LISTS, "lists"), (REPOSITORY, "repository")])
    repository = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, default=RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    repositories_total = models.IntegerField(default=0)
    repositories_done = models.IntegerField(default=0)
    manifests_fetched = models.IntegerField(default=0)
    errors = models.JSONField(default=list)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Its worker's last sign of life.")

    class Meta:
        indexes = [models.Index(fields=["registry", "-started_at"], name="syncrun_registry_started")]


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
        indexes = [models.Index(fields=["repository", "-received_at"], name="event_repository_received")]
