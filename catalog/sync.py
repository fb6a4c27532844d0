"""The sync engine: keeps the index (catalog/models.py) in step with the registry.

A full reconcile walks the catalog, and for each repository lists its tags, resolves each tag with a HEAD
and fetches only the manifests whose digests the index has not seen, or holds with an error (at most 8 requests
in flight, the client's limit). Repositories and tags that vanished are removed. Running it twice changes
nothing, and every run walks every repository, whatever became of the one before. Notifications trigger the
same work for one repository.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from catalog import heartbeat, signals
from catalog.models import Blob, Manifest, ManifestBlob, ManifestChild, Registry, Repository, SyncRun, Tag
from catalog.storage import distinct_size
from registry.client import (
    Descriptor,
    ImageConfig,
    MalformedResponse,
    NotFound,
    RegistryClient,
    RegistryError,
    RegistryTimeout,
    RegistryUnauthorized,
    RegistryUnreachable,
    UnsupportedManifest,
)
from registry.client import Manifest as ManifestData

logger = logging.getLogger(__name__)
UNREADABLE = (NotFound, UnsupportedManifest, MalformedResponse)
SYNC_CHUNK = 500  # tags read, then their new manifests fetched and stored, at a time


def index_changed(registry: Registry) -> None:
    """Something a page shows has changed: the pages' ETags (catalog/pages.py) change with this."""
    Registry.objects.filter(pk=registry.pk).update(index_changed_at=timezone.now())


def current_registry() -> Registry:
    """The registry row for the registry in settings."""
    registry, _ = Registry.objects.get_or_create(
        url=settings.REGISTRY_URL, defaults={"name": settings.REGISTRY_PUBLIC_HOST or settings.REGISTRY_URL}
    )
    return registry


class Budget:
    """At most `rate` requests a second, across threads: each caller waits for its turn."""

    def __init__(self, rate: float) -> None:
        self.interval, self.next = 1 / rate, time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            turn = self.next = max(self.next + self.interval, now)
        time.sleep(max(0.0, turn - now))


# --- Fetching (threads, no database) --------------------------------------------------------


@dataclass
class Fetched:
    """One manifest as read from the registry, with what the index needs of its children and configs."""

    digest: str
    manifest: ManifestData | None = None
    config: ImageConfig | None = None
    children: list[tuple[Descriptor, ManifestData, ImageConfig | None]] = field(default_factory=list)
    error: str = ""
    media_type: str = ""


def fetch(client: RegistryClient, repository: str, digest: str, manifest: ManifestData | None = None) -> Fetched:
    """The manifest (unless given: already read by tag), its config, or an index's children and their configs."""
    try:
        manifest = manifest or client.manifest(repository, digest)
    except UNREADABLE as exc:
        return Fetched(digest=digest, error=exc.message, media_type="unknown")
    fetched = Fetched(digest=digest, manifest=manifest, media_type=manifest.media_type)
    try:
        if manifest.is_index:
            for entry in manifest.manifests:
                child = client.manifest(repository, entry.digest)
                config = (
                    None if entry.is_attestation or not child.config else client.config(repository, child.config.digest)
                )
                fetched.children.append((entry, child, config))
        elif manifest.config:
            fetched.config = client.config(repository, manifest.config.digest)
    except UNREADABLE as exc:
        fetched.error = exc.message
    return fetched


# --- Storing (one thread, the database) -----------------------------------------------------


def image_fields(manifest: ManifestData, config: ImageConfig | None, error: str = "") -> dict:
    return {
        "media_type": manifest.media_type,
        "is_index": False,
        "size": manifest.image_size,
        "created": config.created if config else None,
        "platform": str(config.platform or "") if config else "",
        "config_digest": manifest.config.digest if manifest.config else "",
        "labels": config.labels if config else {},
        "error": error,
    }


def write_row(digest: str, fields: dict) -> tuple[Manifest, bool]:
    """The manifest's row with these fields, and whether they were written: a row read in full is never
    rewritten (rows by digest never change), one stored with an error is, once the registry answers well."""
    row, created = Manifest.objects.get_or_create(digest=digest, defaults=fields)
    if created:
        return row, True
    if not row.error:
        return row, False
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=list(fields))
    return row, True


def store_image(manifest: ManifestData, config: ImageConfig | None, error: str = "") -> Manifest:
    row, written = write_row(manifest.digest, image_fields(manifest, config, error))
    if written:
        link_blobs(row, manifest)
    return row


def link_blobs(row: Manifest, manifest: ManifestData) -> None:
    link_all_blobs([(row, manifest)])


def link_all_blobs(pairs: list[tuple[Manifest, ManifestData]]) -> None:
    """Each stored image's config and layers as Blob rows, linked in their order (the config first, at -1)."""
    descriptors = {blob.digest: blob for _, manifest in pairs for blob in manifest.blobs}
    Blob.objects.bulk_create(
        [Blob(digest=blob.digest, size=blob.size, media_type=blob.media_type) for blob in descriptors.values()],
        ignore_conflicts=True,
    )
    ids = dict(Blob.objects.filter(digest__in=list(descriptors)).values_list("digest", "id"))
    ManifestBlob.objects.bulk_create(
        [
            ManifestBlob(manifest=row, blob_id=ids[blob.digest], position=(-1 if manifest.config else 0) + n)
            for row, manifest in pairs
            for n, blob in enumerate(manifest.blobs)
        ],
        ignore_conflicts=True,
    )


def store_chunk(items: list[Fetched]) -> None:
    """Store a chunk's manifests. Plain images the index has no row for go in together, a few queries for the lot
    instead of five each: a first index writes one per tag, and storing them one by one held the index back more
    than the registry did. The rest (indexes, manifests read with an error, rows stored with one) go through
    store(); so does everything when a push's notification stored one of the images meanwhile."""
    existing = set(Manifest.objects.filter(digest__in=[item.digest for item in items]).values_list("digest", flat=True))
    plain, rest = [], []
    for item in items:
        new_image = item.manifest and not item.manifest.is_index and item.digest not in existing
        (plain if new_image else rest).append(item)
    try:
        with transaction.atomic():
            rows = Manifest.objects.bulk_create(
                [Manifest(digest=item.digest, **image_fields(item.manifest, item.config, item.error)) for item in plain]
            )
            link_all_blobs([(row, item.manifest) for row, item in zip(rows, plain, strict=True)])
    except IntegrityError:
        rest = items
    for item in rest:
        store(item)


@transaction.atomic
def store(fetched: Fetched) -> Manifest:
    """Write a fetched manifest (and its children) to the index. A manifest that could not be read is stored with
    its error (tags must point somewhere) and read again by later syncs until the registry answers properly."""
    if fetched.manifest is None:
        fields = {"media_type": fetched.media_type, "is_index": False, "size": 0, "error": fetched.error}
        return write_row(fetched.digest, fields)[0]
    if not fetched.manifest.is_index:
        return store_image(fetched.manifest, fetched.config, fetched.error)
    images = [(entry, child, config) for entry, child, config in fetched.children if not entry.is_attestation]
    created = [config.created for _, _, config in images if config and config.created]
    fields = {
        "media_type": fetched.manifest.media_type,
        "is_index": True,
        "size": distinct_size([child for _, child, _ in images]),
        "created": max(created, default=None),
        "platforms": [str(entry.platform) for entry, _, _ in images if entry.platform],
        "has_attestations": len(images) < len(fetched.children),
        "error": fetched.error,
    }
    index, written = write_row(fetched.digest, fields)
    if written:
        for entry, child, config in fetched.children:
            child_row = store_image(child, config)
            ManifestChild.objects.get_or_create(
                index=index,
                child=child_row,
                defaults={"platform": str(entry.platform or ""), "is_attestation": entry.is_attestation},
            )
    return index


# --- Syncing --------------------------------------------------------------------------------


def sync_repository(
    client: RegistryClient,
    registry: Registry,
    name: str,
    *,
    pushed_at=None,
    errors: list | None = None,
    verify: bool = True,
    budget: Budget | None = None,
) -> int:
    """Bring one repository's tags in step with the registry; returns how many manifests were fetched. Manifests
    the index holds with an error are fetched again; what still cannot be read is added to `errors`.

    A tag the index has is asked about with a HEAD (has it moved?) when `verify`; without it (a stale page's check,
    with notifications telling of moves) it keeps its digest, and only the tags list is read. A new tag is read
    with a GET, whose manifest is kept for storing: one request per tag, never a HEAD and a GET of the same
    manifest. `budget` paces the HEADs (a reconcile's sweep). Tags go in chunks of SYNC_CHUNK, so that a
    50,000-tag repository holds one chunk's manifests in memory at a time."""
    read_at = timezone.now()  # what notifications write to the index after this is newer than what is read here
    try:
        tags = client.tags(name)
    except NotFound:
        if Repository.objects.filter(registry=registry, name=name).delete()[0]:
            index_changed(registry)
        return 0
    indexed = dict(
        Tag.objects.filter(repository__registry=registry, repository__name=name).values_list("name", "manifest__digest")
    )
    answers: dict[str, tuple[str | None, str]] = {}
    fetched = 0
    done: set[str] = set()  # digests stored by an earlier chunk
    chunks = list(itertools.batched(tags, SYNC_CHUNK, strict=False))
    reading = ChunkReading(client, name, indexed, verify, budget)
    for chunk, (answered, read, prepared) in zip(chunks, read_ahead(reading, chunks), strict=True):
        answers.update(zip(chunk, answered, strict=True))
        wanted = {answers[tag][0] for tag in chunk if answers[tag][0]} - done
        known = set(Manifest.objects.filter(digest__in=wanted, error="").values_list("digest", flat=True))
        missing = sorted(wanted - known - prepared.keys())  # moved tags' digests, unreadable manifests
        items = [
            *(prepared[digest] for digest in sorted(wanted - known) if digest in prepared),
            *client.map(lambda digest, read=read: fetch(client, name, digest, read.get(digest)), missing),
        ]
        store_chunk(items)
        fetched += len(items)
        if errors is not None:
            errors.extend({"repository": name, "error": f"{item.digest}: {item.error}"} for item in items if item.error)
        done |= wanted
    resolved = {tag: digest for tag, (digest, _) in answers.items()}
    if failed := {tag: problem for tag, (_, problem) in answers.items() if problem}:
        # The registry could not answer for these tags: they stay as the index has them, and the error is told.
        kept = Tag.objects.filter(repository__registry=registry, repository__name=name, name__in=list(failed))
        resolved.update(kept.values_list("name", "manifest__digest"))
        if errors is not None:
            errors.extend({"repository": name, "error": f"{tag}: {problem}"} for tag, problem in sorted(failed.items()))
    half_deleted = sorted(tag for tag, (digest, problem) in answers.items() if digest is None and not problem)
    digests = {tag: digest for tag, digest in resolved.items() if digest}
    if save_tags(registry, name, digests, pushed_at, half_deleted, read_at=read_at, verified=verify) or fetched:
        index_changed(registry)
    return fetched


@dataclass
class ChunkReading:
    """What sync_repository asks the registry about a chunk of tags, in threads that never touch the database."""

    client: RegistryClient
    repository: str
    indexed: dict[str, str]  # the index's tags, with their digests
    verify: bool
    budget: Budget | None

    def __call__(self, chunk: tuple[str, ...]) -> tuple[list[tuple[str | None, str]], dict, dict[str, Fetched]]:
        """Each tag's (digest, problem), the manifests the GETs brought (by digest), and new tags' images fetched
        whole (config or children) by the thread that read the tag, one thread per digest."""
        read: dict[str, ManifestData] = {}
        prepared: dict[str, Fetched] = {}
        claimed: set[str] = set()
        lock = threading.Lock()

        def ask(tag: str) -> tuple[str | None, str]:
            if tag not in self.indexed:
                digest, problem = first_read(self.client, self.repository, tag, read)
                with lock:
                    mine = digest in read and digest not in claimed
                    claimed.add(digest)
                if mine:
                    prepared[digest] = fetch(self.client, self.repository, digest, read[digest])
                return digest, problem
            if not self.verify:
                return self.indexed[tag], ""
            if self.budget:
                self.budget.wait()
            return resolve_for_sync(self.client, self.repository, tag)

        return self.client.map(ask, list(chunk)), read, prepared


def read_ahead(reading: ChunkReading, chunks: list[tuple[str, ...]]) -> Iterator:
    """`reading(chunk)` for each chunk in order, the next one read from the registry while the caller stores this
    one: the first index of a big repository waits for the registry or for the database, never for both."""
    if not chunks:
        return
    current = reading(chunks[0])  # read here: a repository of one chunk needs no other thread
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
        for following in chunks[1:]:
            upcoming = reader.submit(reading, following)
            yield current
            current = upcoming.result()
    yield current


def resolve_for_sync(client: RegistryClient, repository: str, tag: str) -> tuple[str | None, str]:
    """The tag's digest (None when it is gone), or what went wrong with this one tag. A registry that cannot be
    reached, answers too slowly or refuses the account fails the whole sync instead."""
    try:
        return client.resolve(repository, tag), ""
    except NotFound:
        return None, ""
    except (RegistryUnreachable, RegistryTimeout, RegistryUnauthorized):
        raise
    except RegistryError as exc:
        return None, exc.message


def first_read(
    client: RegistryClient, repository: str, tag: str, read: dict[str, ManifestData]
) -> tuple[str | None, str]:
    """A tag the index does not have yet: its digest from one GET of its manifest, which goes into `read` for
    fetch(). A manifest that cannot be read is asked about with a HEAD instead, so that it is indexed with its error,
    as resolve_for_sync's tags are."""
    try:
        manifest = client.manifest(repository, tag)
        read[manifest.digest] = manifest
        return manifest.digest, ""
    except NotFound:
        return None, ""
    except UNREADABLE:
        return resolve_for_sync(client, repository, tag)
    except (RegistryUnreachable, RegistryTimeout, RegistryUnauthorized):
        raise
    except RegistryError as exc:
        return None, exc.message


def resolve_or_none(client: RegistryClient, repository: str, tag: str) -> str | None:
    try:
        return client.resolve(repository, tag)
    except NotFound:  # deleted between the tag list and the HEAD
        return None


@transaction.atomic
def save_tags(
    registry: Registry,
    name: str,
    digests: dict[str, str],
    pushed_at=None,
    half_deleted: list[str] | None = None,
    *,
    read_at=None,
    verified: bool = True,
) -> bool:
    """The repository's tags as read; whether anything changed. `half_deleted`: the tags its list names that answer
    404 (a delete cut off half way leaves such tags behind, and only the dashboard can show them). A tag written
    since `read_at` (when the reading began: a push's notification applied meanwhile) is newer than what was read,
    and is left as it is."""
    now = timezone.now()
    read_at = read_at or now
    repository, _ = Repository.objects.get_or_create(registry=registry, name=name)
    first_reading = repository.synced_at is None  # its tags were pushed before the dashboard watched
    manifest_ids = dict(Manifest.objects.filter(digest__in=set(digests.values())).values_list("digest", "id"))
    # Tuples, not model instances: a 50,000-tag repository's rows would take tens of MB as instances.
    existing = {row[0]: row[1:] for row in repository.tags.values_list("name", "pk", "manifest_id", "last_seen")}
    gone = [pk for tag, (pk, _, last_seen) in existing.items() if tag not in digests and last_seen < read_at]
    removed = sum(Tag.objects.filter(pk__in=batch).delete()[0] for batch in itertools.batched(gone, 500, strict=False))
    new = (
        Tag(
            repository=repository,
            name=tag,
            manifest_id=manifest_ids[digest],
            first_seen=now,
            pushed_at=pushed_at or now,
            pushed_known=bool(pushed_at) or not first_reading,
            last_seen=now,
        )
        for tag, digest in digests.items()
        if tag not in existing
    )
    added = 0
    for batch in itertools.batched(new, 500, strict=False):  # 500 instances at a time, not a repository's worth
        Tag.objects.bulk_create(batch, ignore_conflicts=True)  # a conflict: a push's, written meanwhile
        added += len(batch)
    moved = [
        Tag(pk=pk, manifest_id=manifest_ids[digest], pushed_at=pushed_at or now, pushed_known=True, last_seen=now)
        for tag, digest in digests.items()
        if tag in existing
        for pk, manifest_id, last_seen in [existing[tag]]
        if last_seen < read_at and manifest_id != manifest_ids[digest]
    ]
    Tag.objects.bulk_update(moved, ["manifest", "pushed_at", "pushed_known", "last_seen"], batch_size=500)
    changed = bool(removed or added or moved or repository.half_deleted != (half_deleted or []))
    repository.synced_at, repository.half_deleted = now, half_deleted or []
    if verified:
        repository.verified_at = now
    repository.save(update_fields=["synced_at", "verified_at", "half_deleted"])
    return changed


def sync_catalog(client: RegistryClient, registry: Registry) -> None:
    """Add the repositories the catalog names and the index lacks (their tags are indexed when one is
    opened or at the next reconcile), and drop those the catalog no longer names. One request per 1,000."""
    apply_catalog(registry, client.catalog())


def apply_catalog(registry: Registry, catalog: list[str]) -> None:
    """The index's repositories as the catalog (read already) names them."""
    names = set(catalog)
    known = dict(registry.repositories.values_list("name", "pk"))
    new = [Repository(registry=registry, name=name) for name in sorted(names - known.keys())]
    Repository.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    gone = [pk for name, pk in known.items() if name not in names]
    for start in range(0, len(gone), 500):
        Repository.objects.filter(pk__in=gone[start : start + 500]).delete()
    if new or gone:
        index_changed(registry)


def reconcile(client: RegistryClient, registry: Registry, *, verify: bool = True) -> SyncRun:
    """A reconcile of every repository, whatever happened to earlier runs, so it ends with the index equal to the
    registry. Running it again after an interruption is cheap: digests the index has are not fetched again.
    Runs left "running" by a worker that stopped giving signs of life are marked failed first.

    With `verify` (a full reconcile: the Refresh button, the command, the scheduler's sweep) every tag is asked
    about with a HEAD (has it moved?), paced by REGISTRY_SWEEP_RATE. Without it (what the scheduler runs every
    interval) only the catalog and the tags lists are read: tags added and removed, new tags read; a few hundred
    requests for 100,000 tags, where the HEADs are 100,000."""
    end_abandoned(registry)
    run = SyncRun.objects.create(registry=registry, kind=SyncRun.FULL if verify else SyncRun.LISTS)
    with heartbeat.heartbeat(run):
        walk(client, registry, run, verify)
    return run


def end_abandoned(registry: Registry) -> int:
    """Reconciles still "running" whose worker stopped giving signs of life are marked failed."""
    runs = registry.sync_runs.filter(kind__in=[SyncRun.FULL, SyncRun.LISTS], status=SyncRun.RUNNING)
    return runs.filter(heartbeat.silent()).update(status=SyncRun.FAILED, finished_at=timezone.now())


def walk(client: RegistryClient, registry: Registry, run: SyncRun, verify: bool) -> None:
    try:
        names = client.catalog()
        if registry.repositories.exclude(name__in=names).delete()[0]:
            index_changed(registry)
        run.repositories_total = len(names)
        budget = Budget(settings.REGISTRY_SWEEP_RATE) if settings.REGISTRY_SWEEP_RATE and verify else None
        for name in names:
            sync_one(client, registry, name, run, verify, budget)
            run.repositories_done += 1
            run.save(update_fields=["repositories_total", "repositories_done", "manifests_fetched", "errors"])
        prune_manifests()
        refresh_statistics()
        run.status = SyncRun.DONE
        registry.last_reconciled_at = timezone.now()
        registry.save(update_fields=["last_reconciled_at"])
    except RegistryError as exc:
        run.status = SyncRun.FAILED
        run.errors.append({"repository": "", "error": exc.message})
        logger.warning("Reconcile of %s failed: %s", registry.url, exc.message)
        transaction.on_commit(lambda error=exc.message: signals.reconcile_failed.send(SyncRun, run=run, error=error))
    finally:
        run.finished_at = timezone.now()
        run.save()


def sync_one(
    client: RegistryClient, registry: Registry, name: str, run: SyncRun, verify: bool, budget: Budget | None
) -> None:
    try:
        run.manifests_fetched += sync_repository(
            client, registry, name, errors=run.errors, verify=verify, budget=budget
        )
    except UNREADABLE as exc:
        run.errors.append({"repository": name, "error": exc.message})


def refresh_statistics() -> None:
    """SQLite plans queries from statistics it gathers only when told (PostgreSQL's autovacuum does it itself).
    Without them, at 100,000 tags it read a repository's 50,000 tags through the name index to find the 50 of a
    page by manifest (a page took 235 ms instead of 53): ANALYZE the index's tables, 60 ms at that size."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_tag")
            cursor.execute("ANALYZE catalog_manifest")


def prune_manifests() -> int:
    """Remove index rows no tag reaches any more (the registry's GC may have deleted them)."""
    reachable_indexes = Manifest.objects.filter(tags__isnull=False, is_index=True)
    orphans = Manifest.objects.filter(tags__isnull=True).exclude(index_links__index__in=reachable_indexes)
    count, _ = orphans.delete()
    # Blob rows stay: a digest's size never changes, and the garbage collection's preview needs the sizes of
    # the blobs of deleted images. garbage_collection/collection.py drops them once a collection has deleted the blobs.
    return count


# --- Notifications --------------------------------------------------------------------------


def record_push(client: RegistryClient, registry: Registry, repository: str, tag: str, digest: str, pushed_at=None):
    """Apply a push event: fetch the digest if the index lacks it (or holds it with an error), then point the tag
    at it."""
    if not Manifest.objects.filter(digest=digest, error="").exists():
        store(fetch(client, repository, digest))
    with transaction.atomic():
        repo, _ = Repository.objects.get_or_create(registry=registry, name=repository)
        manifest = Manifest.objects.get(digest=digest)
        now, when = timezone.now(), pushed_at or timezone.now()
        row, created = Tag.objects.get_or_create(
            repository=repo,
            name=tag,
            defaults={
                "manifest": manifest,
                "first_seen": now,
                "pushed_at": when,
                "pushed_known": True,
                "last_seen": now,
            },
        )
        moved = not created and row.manifest_id != manifest.pk
        if moved or not row.pushed_known:  # a push of the same image still tells when it was pushed
            row.manifest, row.pushed_at, row.pushed_known = manifest, when, True
        if not created:
            row.last_seen = now  # newer than what a sync that began before this push read (see save_tags)
            row.save(update_fields=["manifest", "pushed_at", "pushed_known", "last_seen"])
        if created or moved:
            index_changed(registry)
        transaction.on_commit(
            lambda: signals.tag_pushed.send(Tag, repository=repository, tag=tag, digest=digest, size=manifest.size)
        )


def forget_tag(registry: Registry, repository: str, tag: str) -> None:
    if Tag.objects.filter(repository__registry=registry, repository__name=repository, name=tag).delete()[0]:
        index_changed(registry)


def record_delete(client: RegistryClient, registry: Registry, repository: str, digest: str, tag: str = "") -> int:
    """Apply a delete event. Deleting a manifest takes every tag on it along, deleting a tag (v3) only
    that tag; an event doesn't say which happened, so each tag it may concern is asked about again."""
    tags = Tag.objects.filter(repository__registry=registry, repository__name=repository)
    concerned = list(tags.filter(Q(manifest__digest=digest) | Q(name=tag)).values_list("name", flat=True))
    digests = client.map(lambda name: resolve_or_none(client, repository, name), concerned)
    gone = [name for name, now in zip(concerned, digests, strict=True) if now is None]
    tags.filter(name__in=gone).delete()
    if gone:
        index_changed(registry)
    return len(gone)
