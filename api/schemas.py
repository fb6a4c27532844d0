"""What the API answers, as typed schemas: the OpenAPI document is generated from these. Every name, tag, label and
message is a JSON string as the registry or the index holds it, never HTML."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


class Problem(Schema):
    """An RFC 9457 problem (media type application/problem+json)."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Unauthorized"])
    status: int = Field(examples=[401])
    detail: str


class Repository(Schema):
    name: str
    namespace: str = Field(description='The part of the name before its last "/" ("" for none).')
    tag_count: int
    last_push: datetime | None = Field(description="The latest known push of one of its tags.")
    newest_created: datetime | None = Field(description="When its newest image was built.")
    referenced_bytes: int | None = Field(description="Every blob its tags use, each once; null until computed.")
    unique_bytes: int | None = Field(description="The part no other repository uses; null until computed.")
    synced_at: datetime | None = Field(description="When the index last read its tags list.")


class RepositoryPage(Schema):
    items: list[Repository]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    sizes_current: bool = Field(description="False while the sizes are those of an older index (being recomputed).")


class Layer(Schema):
    digest: str
    media_type: str
    size: int
    repositories: list[str]
    tag_count: int


class RepositoryStorage(Schema):
    referenced_bytes: int
    unique_bytes: int = Field(description="What deleting the repository would free after garbage collection.")
    shared_bytes: int
    largest_layers: list[Layer]


class RepositoryDetail(Repository):
    verified_at: datetime | None = Field(description="When every tag's digest was last checked with the registry.")
    half_deleted_tags: list[str]
    storage: RepositoryStorage


class Tag(Schema):
    name: str
    digest: str
    media_type: str
    is_index: bool = Field(description="A multi-platform image (OCI index or Docker manifest list).")
    platforms: list[str]
    size: int = Field(description="Compressed bytes: config and layers, each blob once.")
    created: datetime | None
    pushed_at: datetime | None = Field(description="null when it was pushed before the dashboard watched.")
    also_tagged: list[str] = Field(description="Other tags of the repository on the same digest.")
    signatures: list[str] = Field(description="Cosign-style sig / att / sbom tags of this image.")


class TagPage(Schema):
    items: list[Tag]
    total: int = Field(description="Tags matching the filters.")
    next_cursor: str | None
    synced_at: datetime | None = Field(description="The index's reading of the tags list these come from.")


class Platform(Schema):
    platform: str = Field(examples=["linux/arm64/v8"])
    digest: str
    media_type: str
    size: int
    created: datetime | None


class Attestation(Schema):
    digest: str
    media_type: str
    size: int


class TagDetail(Tag):
    repository: str
    config_digest: str
    labels: dict[str, str]
    images: list[Platform] = Field(description="A multi-platform image's platform images, with their digests.")
    attestations: list[Attestation] = Field(description="BuildKit attestation manifests inside the index.")
    error: str = Field(description="Why the index could not read the manifest in full, if it could not.")


class SearchRepository(Schema):
    name: str
    tag_count: int


class TagRef(Schema):
    repository: str
    tag: str


class SearchTag(TagRef):
    digest: str


class SearchImage(Schema):
    digest: str
    media_type: str
    platform: str
    labels: dict[str, str] = Field(description="The matching labels (label search only).")
    tags: list[TagRef] = Field(description="Tags reaching it, directly or through a multi-platform image.")
    more_tags: int


class SearchResults(Schema):
    query: str
    repositories: list[SearchRepository]
    tags: list[SearchTag]
    digests: list[SearchImage]
    labels: list[SearchImage]
    truncated: bool = Field(description="Some kind had more results than the limit shown.")


class RepositoryUsage(Schema):
    name: str
    tag_count: int
    referenced_bytes: int
    unique_bytes: int
    shared_bytes: int


class Storage(Schema):
    total_bytes: int = Field(description="Distinct blobs the tags use, each once: what the registry stores for them.")
    total_blobs: int
    tag_count: int
    largest_repositories: list[RepositoryUsage]
    largest_layers: list[Layer]
    disk_used_bytes: int | None = Field(description="The registry's disk, when the GC bridge can measure it.")
    disk_free_bytes: int | None


class AuditEntry(Schema):
    id: int
    timestamp: datetime
    source: str = Field(examples=["dashboard", "registry"])
    user: str
    address: str
    action: str = Field(examples=["remove-tag", "delete-manifest", "registry-delete"])
    repository: str
    tags: list[str]
    digest: str
    outcome: str = Field(examples=["done", "failed", "skipped", "unknown"])
    message: str
    bytes: int = Field(description="Estimated bytes freed after garbage collection.")
    job_id: int | None


class AuditPage(Schema):
    items: list[AuditEntry]
    next_cursor: str | None
    ignored_filters: list[str] = Field(description="Why a filter was left out (a date that is no date).")


class SyncError(Schema):
    repository: str
    error: str


class SyncRun(Schema):
    kind: str = Field(examples=["full", "lists", "repository"])
    status: str = Field(examples=["running", "done", "failed"])
    started_at: datetime
    finished_at: datetime | None
    repositories_total: int
    repositories_done: int
    manifests_fetched: int
    errors: list[SyncError]


class SyncStatus(Schema):
    last_reconciled_at: datetime | None
    checked_since: datetime | None = Field(description="Since when every tag's digest has been checked.")
    reconcile_queued: bool
    latest_run: SyncRun | None
