"""What the API takes and answers, as typed schemas: the OpenAPI document is generated from these. Every name, tag,
label and message is a JSON string as the registry or the index holds it, never HTML."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

MAX_NAMED_TAGS = 10_000


class Problem(Schema):
    """An RFC 9457 problem (media type application/problem+json)."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Unauthorized"])
    status: int = Field(examples=[401])
    detail: str


def problems(*statuses: int) -> dict[int, type[Problem]]:
    """An operation's problem answers, for its `response`: the OpenAPI document lists each."""
    return dict.fromkeys(statuses, Problem)


READING_PROBLEMS = problems(400, 401, 403, 404, 422, 429)
ACTING_PROBLEMS = problems(400, 401, 403, 404, 409, 422, 429)  # 409: the state forbids it now (a run going on)


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


class Refresh(Schema):
    queued: bool = Field(description="False when a full reconcile was already running: that one goes on.")
    status: SyncStatus


# --- Deleting ---------------------------------------------------------------------------------------------------


class DeleteFilter(Schema):
    """The repository page's filter: every criterion given must hold."""

    pattern: str = Field("", max_length=500, description="A regular expression (RE2) found anywhere in the name.")
    before: date | None = Field(None, description="Older than this day (YYYY-MM-DD), by `by`.")
    keep_newest: int | None = Field(None, description="All but the newest N, by `by`.")
    by: Literal["created", "pushed"] = Field(
        "created", description="The image's creation time, or the push time (creation time where none is known)."
    )


class DeleteRequest(Schema):
    repository: str = Field(max_length=255)
    tags: list[str] = Field(default_factory=list, max_length=MAX_NAMED_TAGS, description="Tags chosen by name.")
    filter: DeleteFilter | None = Field(None, description="Adds the tags it selects to `tags`.")


class PlannedImageDelete(Schema):
    digest: str
    tags: list[str] = Field(description="Every tag the image has: all of them were chosen.")
    children: list[str] = Field(
        description="Platform images and attestations deleted after it: nothing else uses them."
    )
    bytes: int = Field(description="Freed after garbage collection, from the index.")


class PlannedUntag(Schema):
    tag: str
    digest: str
    reason: str = Field(description="Why its image stays: other tags, or a multi-platform image that stays.")


class MovedTag(Schema):
    tag: str
    chosen_digest: str
    digest_now: str


class DeletePlan(Schema):
    """What confirming will do, judged against the index now; the job judges again against the registry."""

    tag_count: int = Field(description="Chosen tags that go (deleted with their image, or removed alone).")
    bytes: int = Field(description="Freed after garbage collection, from the index.")
    deleted: list[PlannedImageDelete] = Field(description="Images deleted by digest, each with all its tags.")
    untagged: list[PlannedUntag] = Field(description="Chosen tags removed alone: their image stays.")
    moved: list[MovedTag] = Field(description="Chosen tags now on another image: left alone.")
    gone: list[str] = Field(description="Chosen tags the index no longer has: nothing to do.")


class TagOutcome(Schema):
    repository: str
    tag: str
    digest: str
    action: str = Field(examples=["remove-tag", "delete-manifest", ""])
    outcome: Literal["failed", "unknown", "not-attempted", "skipped", "done"]
    message: str


class DeleteJob(Schema):
    id: int
    kind: str = Field(examples=["tags", "tag", "image", "repository", "retention"])
    status: Literal["draft", "queued", "running", "done", "failed"]
    repository: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total: int = Field(description="Tags chosen.")
    done: int = Field(description="Tags handled so far, whatever the outcome.")
    failed: int
    bytes_estimate: int = Field(description="Freed after garbage collection, from the index (set when it runs).")
    error: str = Field(description="Why the job stopped, when it failed.")
    plan: DeletePlan | None = Field(description="A draft's plan; null once confirmed.")
    registry_refusal: str = Field(description="A draft's: why the registry would refuse deletes now (or empty).")
    confirm_url: str | None = Field(description="A draft's: POST here to carry it out.")
    results: list[TagOutcome] = Field(description="Each chosen tag's outcome, failures first; empty for a draft.")


# --- Retention --------------------------------------------------------------------------------------------------

Schedule = Literal["off", "daily", "weekly"]


class RetentionPolicyIn(Schema):
    """A policy's rules, as on the Retention page: a tag is kept when any rule keeps it, or when it is protected."""

    repositories: str = Field(
        max_length=255, description="A shell pattern: * matches any characters, slashes included.", examples=["shop/*"]
    )
    keep_newest: int | None = Field(None, description="Keep the newest N images (every tag of a kept image).")
    newest_by: Literal["created", "pushed"] = "created"
    keep_days: int | None = Field(None, description="Keep images pushed within N days.")
    keep_regex: str = Field("", max_length=500, description="Keep tags matching (RE2, searched anywhere).")
    protect_regex: str = Field("", max_length=500, description="Never delete tags matching (RE2).")
    schedule: Schedule = "off"


class RetentionPolicyChange(Schema):
    """Only the fields given change; null clears a rule."""

    repositories: str | None = Field(None, max_length=255)
    keep_newest: int | None = None
    newest_by: Literal["created", "pushed"] | None = None
    keep_days: int | None = None
    keep_regex: str | None = Field(None, max_length=500)
    protect_regex: str | None = Field(None, max_length=500)
    schedule: Schedule | None = None


class JobRef(Schema):
    id: int
    status: str
    url: str


class RetentionPolicy(Schema):
    id: int
    repositories: str
    keep_newest: int | None
    newest_by: str
    keep_days: int | None
    keep_regex: str
    protect_regex: str
    schedule: str
    rules: str = Field(description="The rules in words.")
    matching_repositories: int = Field(description="Indexed repositories the pattern matches now.")
    created_by: str
    created_at: datetime
    last_run_at: datetime | None
    latest_run: JobRef | None


class RetentionPolicyList(Schema):
    items: list[RetentionPolicy]


class RetentionGoing(Schema):
    tag: str
    digest: str
    untag_only: bool = Field(description="Only the tag goes: a kept tag shares its image.")
    reason: str


class RetentionRepositoryPreview(Schema):
    name: str
    synced_at: datetime | None
    going: list[RetentionGoing]
    kept: int
    bytes: int


class RetentionPreview(Schema):
    """What a run would delete now, judged from the index; nothing is changed."""

    tag_count: int
    bytes: int = Field(description="Freed after garbage collection, from the index.")
    unknown_pushed: int = Field(description="Images judged by creation time for want of a known push time.")
    synced_at: datetime | None = Field(description="The oldest reading among the repositories: what this is as of.")
    repositories: list[RetentionRepositoryPreview]


# --- Garbage collection -----------------------------------------------------------------------------------------


class GcDryRunRequest(Schema):
    delete_untagged: bool = Field(
        False, description="Also untagged manifests: distribution 3.x only (on 2.x it breaks multi-platform images)."
    )


class GcRun(Schema):
    id: int
    dry_run: bool
    delete_untagged: bool
    status: Literal["queued", "running", "done", "failed"]
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    preview_id: int | None = Field(description="A collection's dry run.")
    exit_code: int | None
    blobs_marked: int | None
    blobs_eligible: int | None
    manifests_eligible: int | None
    bytes_estimate: int | None = Field(description="The eligible blobs' sizes the index knows.")
    bytes_freed: int | None = Field(description="A collection's storage folder before minus after.")
    error: str
    collectable: bool = Field(description="A dry run a collection may follow now (the latest, recent, found some).")
    collect_url: str | None
    log_url: str
