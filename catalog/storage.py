"""How storage is counted, from the index: what each repository and tag uses, and what deleting it would free.

The registry keeps one copy of a blob (a layer or a config) however many manifests use it, and garbage
collection frees a blob only once no manifest uses it any more. So a repository's unique bytes are those of
the blobs no other repository uses, and a tag frees the blobs no other tag reaches. A tag reaches its
manifest's blobs and, for an index, those of every manifest in it (platform images and attestations).
Manifests themselves (a few KB each) are not counted.

The rules take plain data (sets of blob ids, a size per blob id); the loaders read it from the index with
four queries, whatever the number of repositories and tags. The registry's disk itself (used, free) is
measured through the bridge.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from itertools import chain

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from catalog import signals
from catalog.models import Blob, ManifestBlob, ManifestChild, Registry, Repository, Tag
from catalog.queries import RepositoryRow, natural_key
from registry import bridge
from registry.client import Manifest as ManifestData

# --- Rules ----------------------------------------------------------------------------------


def distinct_size(manifests: list[ManifestData]) -> int:
    """Bytes of all config and layer blobs of these manifests, each blob counted once."""
    return sum({blob.digest: blob.size for manifest in manifests for blob in manifest.blobs}.values())


def total_size(blobs: Set[int], sizes: Mapping[int, int]) -> int:
    """The bytes of these blobs (a set: each counted once)."""
    return sum(map(sizes.__getitem__, blobs))


def used_once(blob_sets: Iterable[Set[int]]) -> set[int]:
    """The blobs exactly one of the sets holds."""
    users: Counter[int] = Counter()
    for blobs in blob_sets:
        users.update(blobs)
    return {blob for blob, count in users.items() if count == 1}


def exclusive_sizes[K](blobs_by_owner: Mapping[K, Set[int]], sizes: Mapping[int, int]) -> dict[K, int]:
    """For each owner, the bytes of the blobs no other owner uses: a repository's unique bytes when the
    owners are repositories, what deleting a tag frees when they are tags."""
    once = used_once(blobs_by_owner.values())
    return {owner: total_size(blobs & once, sizes) for owner, blobs in blobs_by_owner.items()}


def distinct_total(blob_sets: Iterable[Set[int]], sizes: Mapping[int, int]) -> tuple[int, int]:
    """Bytes and number of the distinct blobs across all the sets: what the registry stores for them."""
    distinct = set().union(*blob_sets)
    return total_size(distinct, sizes), len(distinct)


@dataclass(frozen=True)
class RepositoryUsage:
    name: str
    tag_count: int
    referenced: int  # every blob its tags use, each counted once
    unique: int  # the part no other repository uses: what deleting the repository frees

    @property
    def shared(self) -> int:
        return self.referenced - self.unique


def repository_usage(
    blobs_by_repository: Mapping[str, Set[int]], sizes: Mapping[int, int], tag_counts: Mapping[str, int]
) -> list[RepositoryUsage]:
    """Referenced, unique and shared bytes of each repository, largest first."""
    unique = exclusive_sizes(blobs_by_repository, sizes)
    rows = [
        RepositoryUsage(name, tag_counts.get(name, 0), total_size(blobs, sizes), unique[name])
        for name, blobs in blobs_by_repository.items()
    ]
    return sorted(rows, key=lambda row: (-row.referenced, row.name))


@dataclass(frozen=True)
class TagUsage:
    name: str
    size: int  # every blob the tag reaches, each counted once
    frees: int  # the part no other tag in any repository reaches
    # Tags on the same image free nothing alone: the others (in this repository; and how many elsewhere), and
    # what deleting every one of them would free.
    same_image: tuple[str, ...] = ()
    same_image_elsewhere: int = 0
    frees_together: int = 0


def tag_usage(
    blobs_by_tag: Mapping[tuple[str, str], Set[int]], sizes: Mapping[int, int], repository: str
) -> list[TagUsage]:
    """Size and "frees if deleted" of one repository's tags, judged against every tag of the registry
    (keys are (repository, tag)); the ones that free most first. Tags on one image share one blob set (the same
    object: see load), which is how "the same image" is told here."""
    once = used_once(blobs_by_tag.values())  # the same rule as exclusive_sizes, for one repository's tags
    by_image: dict[int, list[tuple[str, str]]] = defaultdict(list)
    images: dict[int, Set[int]] = {}
    for key, blobs in blobs_by_tag.items():
        if blobs:  # (an image with no readable blob has an empty set, which is one object for all of them)
            by_image[id(blobs)].append(key)
            images[id(blobs)] = blobs
    images_using = Counter(blob for blobs in images.values() for blob in blobs)
    rows = []
    for (name, tag), blobs in blobs_by_tag.items():
        if name != repository:
            continue
        others = [key for key in by_image.get(id(blobs), []) if key != (name, tag)]
        together = total_size({blob for blob in blobs if images_using[blob] == 1}, sizes) if others else 0
        rows.append(
            TagUsage(
                tag,
                total_size(blobs, sizes),
                total_size(blobs & once, sizes),
                tuple(sorted((other for repo, other in others if repo == name), key=natural_key)),
                sum(1 for repo, _ in others if repo != name),
                together,
            )
        )
    return sorted(rows, key=lambda row: (-row.frees, -row.size, natural_key(row.name)))


@dataclass(frozen=True)
class LayerUsage:
    """One of the largest blobs: who uses it."""

    digest: str
    media_type: str
    size: int
    repositories: tuple[str, ...]  # in natural order
    tag_count: int


LARGEST_LAYERS = 10


def largest_layers(
    blobs_by_tag: Mapping[tuple[str, str], Set[int]],
    sizes: Mapping[int, int],
    repository: str | None = None,
    limit: int = LARGEST_LAYERS,
) -> list[tuple[int, tuple[str, ...], int]]:
    """The `limit` largest blobs the tags use (of one repository, or of all), each with every repository and the
    number of tags (registry-wide) that use it: (blob id, repositories, tags), largest first."""
    used = {blob for (name, _), blobs in blobs_by_tag.items() if repository in (None, name) for blob in blobs}
    top = sorted(used, key=lambda blob: (-sizes[blob], blob))[:limit]
    wanted = set(top)
    repositories: defaultdict[int, set[str]] = defaultdict(set)
    tags: Counter[int] = Counter()
    for (name, _), blobs in blobs_by_tag.items():
        for blob in blobs & wanted:
            repositories[blob].add(name)
            tags[blob] += 1
    return [(blob, tuple(sorted(repositories[blob], key=natural_key)), tags[blob]) for blob in top]


def layer_usages(rows: list[tuple[int, tuple[str, ...], int]], sizes: Mapping[int, int]) -> list[LayerUsage]:
    """largest_layers' rows with each blob's digest and media type (one query)."""
    found = {
        pk: (digest, media_type)
        for pk, digest, media_type in Blob.objects.filter(pk__in=[r[0] for r in rows]).values_list(
            "pk", "digest", "media_type"
        )
    }
    return [LayerUsage(*found[blob], sizes[blob], names, count) for blob, names, count in rows if blob in found]


# --- Loading from the index -----------------------------------------------------------------


@dataclass
class IndexedBlobs:
    """What the rules need of one registry's index: each tag's blobs (sets shared by tags on one digest)."""

    blobs_by_tag: dict[tuple[str, str], frozenset[int]]
    repositories: list[str]  # with or without tags
    sizes: dict[int, int]

    def blobs_by_repository(self) -> dict[str, set[int]]:
        by_repository: dict[str, set[int]] = {name: set() for name in self.repositories}
        for (repository, _), blobs in self.blobs_by_tag.items():
            by_repository[repository] |= blobs
        return by_repository

    def tag_counts(self) -> Counter[str]:
        return Counter(repository for repository, _ in self.blobs_by_tag)


def load(registry: Registry) -> IndexedBlobs:
    """Four queries: the blob sizes (apart: joined in, they would come once per use), the blobs of the
    tagged manifests, the blobs of the manifests inside tagged indexes, and the tags (and tagless
    repositories). A sync may run in between: a blob added since is left out, a tag added since has none."""
    tagged = Tag.objects.filter(repository__registry=registry).values("manifest_id")
    rows = Repository.objects.filter(registry=registry).values_list("name", "tags__name", "tags__manifest_id")
    direct = ManifestBlob.objects.filter(manifest__in=tagged).values_list("manifest_id", "blob_id")
    nested = ManifestChild.objects.filter(index__in=tagged).values_list("index_id", "child__manifestblob__blob_id")
    sizes = dict(Blob.objects.values_list("id", "size"))
    blobs: defaultdict[int, list[int]] = defaultdict(list)
    for manifest, blob in chain(direct, nested):
        # None: a child manifest that could not be read has no blobs. Not in sizes: added by a sync since.
        if blob in sizes:
            blobs[manifest].append(blob)
    frozen = {manifest: frozenset(ids) for manifest, ids in blobs.items()}
    repositories, blobs_by_tag = [], {}
    for repository, tag, manifest in rows:
        if tag is None:
            repositories.append(repository)
        else:
            blobs_by_tag[(repository, tag)] = frozen.get(manifest, frozenset())
    repositories.extend(dict.fromkeys(repository for repository, _ in blobs_by_tag))
    return IndexedBlobs(blobs_by_tag, repositories, sizes)


STORAGE_CACHE_SECONDS = 24 * 60 * 60  # a key outlives its index marker only this long


@dataclass(frozen=True)
class RegistryStorage:
    repositories: list[RepositoryUsage]  # largest first
    total_bytes: int
    total_blobs: int
    tag_count: int
    layers: list[LayerUsage] = field(default_factory=list)  # the largest, registry-wide


def registry_storage(registry: Registry) -> RegistryStorage:
    """The Storage page: every repository's usage and the registry's total. Computed once per change of the index
    (its marker is in the cache key) and kept in the cache shared by every process: reading every tag's blobs
    takes seconds at 100,000 tags."""
    if (cached := cache.get(storage_key(registry))) is None:
        cached = compute_registry_storage(registry)
        cache.set(storage_key(registry), cached, STORAGE_CACHE_SECONDS)
        cache.set(f"storage-latest:{registry.pk}", cached, STORAGE_CACHE_SECONDS)
    return cached


def storage_key(registry: Registry) -> str:
    return f"storage-v2:{registry.pk}:{registry.index_changed_at and registry.index_changed_at.isoformat()}"


def latest_registry_storage(registry: Registry) -> tuple[RegistryStorage | None, bool]:
    """The figures as last computed, without computing them (the repository list must stay fast), and whether
    they are those of the index as it is now."""
    if (cached := cache.get(storage_key(registry))) is not None:
        return cached, True
    return cache.get(f"storage-latest:{registry.pk}"), False


def compute_registry_storage(registry: Registry) -> RegistryStorage:
    indexed = load(registry)
    by_repository = indexed.blobs_by_repository()
    total_bytes, total_blobs = distinct_total(by_repository.values(), indexed.sizes)
    return RegistryStorage(
        repositories=repository_usage(by_repository, indexed.sizes, indexed.tag_counts()),
        total_bytes=total_bytes,
        total_blobs=total_blobs,
        tag_count=len(indexed.blobs_by_tag),
        layers=layer_usages(largest_layers(indexed.blobs_by_tag, indexed.sizes), indexed.sizes),
    )


@dataclass(frozen=True)
class RepositoryStorage:
    usage: RepositoryUsage
    tags: list[TagUsage]  # the ones that free most first
    layers: list[LayerUsage]  # its largest


def repository_storage(registry: Registry, name: str) -> RepositoryStorage | None:
    """A repository's drill-down: its usage and each tag's size and what deleting it frees. None when the
    index does not know the repository."""
    indexed = load(registry)
    if name not in indexed.repositories:
        return None
    usages = repository_usage(indexed.blobs_by_repository(), indexed.sizes, indexed.tag_counts())
    usage = next(usage for usage in usages if usage.name == name)
    layers = layer_usages(largest_layers(indexed.blobs_by_tag, indexed.sizes, name), indexed.sizes)
    return RepositoryStorage(usage, tag_usage(indexed.blobs_by_tag, indexed.sizes, name), layers)


def with_sizes(rows: list[RepositoryRow], figures: RegistryStorage | None) -> list[RepositoryRow]:
    """The repository list's rows with their referenced and unique bytes, where the figures have them."""
    sizes = {usage.name: usage for usage in figures.repositories} if figures else {}
    for row in rows:
        if usage := sizes.get(row.name):
            row.referenced, row.unique = usage.referenced, usage.unique
    return rows


# --- The registry's disk --------------------------------------------------------------------

VOLUME_CACHE_SECONDS = 60
VOLUME_KEPT_SECONDS = 24 * 60 * 60  # the last measurement, for readers that must not wait for a new one


@dataclass(frozen=True)
class Volume:
    """The disk the registry's storage is on, as the bridge measured it (or why it could not)."""

    usage: bridge.Usage | None
    error: str = ""

    @property
    def used_percent(self) -> float | None:
        # As df's "Use%": of the space ordinary users can have (blocks reserved for root are not in "free").
        if not self.usage or not (self.usage.used_bytes + self.usage.free_bytes):
            return None
        return 100 * self.usage.used_bytes / (self.usage.used_bytes + self.usage.free_bytes)

    @property
    def warn_percent(self) -> float:
        return settings.GC_DISK_WARN_PERCENT

    @property
    def warning(self) -> bool:
        return self.used_percent is not None and self.used_percent >= self.warn_percent


def volume() -> Volume:
    """The registry storage's disk, cached for a minute (each reading is an exec in the container)."""
    if settings.GC_BRIDGE == "none":
        return Volume(None, "")
    cached = cache.get("registry-volume")
    if cached is None:
        try:
            cached = Volume(bridge.disk_usage())
        except bridge.BridgeError as exc:
            cached = Volume(None, exc.message)
        cache.set("registry-volume", cached, VOLUME_CACHE_SECONDS)
        cache.set("registry-volume-latest", cached, VOLUME_KEPT_SECONDS)
        # Told once when the disk goes above the level (again after a day above it), not at every measurement.
        if cached.warning and cache.add("registry-volume-warned", True, VOLUME_KEPT_SECONDS):
            transaction.on_commit(lambda: signals.disk_above_warning.send(Volume, volume=cached))
        elif cached.usage and not cached.warning:
            cache.delete("registry-volume-warned")
    return cached


def latest_volume() -> tuple[Volume | None, bool]:
    """The disk as last measured, without measuring (du over a large storage folder takes seconds), and whether
    that measurement is under a minute old."""
    if settings.GC_BRIDGE == "none":
        return Volume(None, ""), True
    if (fresh := cache.get("registry-volume")) is not None:
        return fresh, True
    return cache.get("registry-volume-latest"), False
