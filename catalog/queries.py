"""What the pages read from the index: tag tables, repository counts, search, and the relations of a tag.

The index (catalog/models.py) is kept in step with the registry by catalog/sync.py; pages revalidate what
they show when it is older than REGISTRY_CACHE_SECONDS (catalog/freshness.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.cache import cache
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast

from catalog.models import Manifest, ManifestChild, Registry, Repository, Tag
from catalog.natural import natural_key

SIGNATURE_TAG_RE = re.compile(r"^sha256-([0-9a-f]{64})\.(sig|att|sbom)$")
SIGNATURE_KINDS = ("sig", "att", "sbom")
SORTS = {"name", "pushed", "created", "size"}
SORT_FIELDS = {"name": "name_key", "pushed": "pushed_at", "created": "manifest__created", "size": "manifest__size"}
SEARCH_LIMIT = 50  # results shown per kind
TAGS_PER_RESULT = 10  # tags listed under one digest or label result


def digest_prefix(query: str) -> str | None:
    """The digest prefix a query stands for ("sha256:" optional, at least 4 hex digits), or None."""
    hex_part = query.strip().lower().removeprefix("sha256:")
    if 4 <= len(hex_part) <= 64 and all(char in "0123456789abcdef" for char in hex_part):
        return f"sha256:{hex_part}"
    return None


def signature_kinds(tag_names: Iterable[str]) -> dict[str, list[str]]:
    """Cosign-style tags (sha256-<hex>.sig|.att|.sbom) as badge kinds, by the digest of the image they sign."""
    kinds: dict[str, list[str]] = defaultdict(list)
    for name in tag_names:
        if match := SIGNATURE_TAG_RE.match(name):
            kinds[f"sha256:{match[1]}"].append(match[2])
    return {digest: sorted(found) for digest, found in kinds.items()}


def siblings(tags: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """For (tag, digest) pairs: each tag's other tags on the same digest, in natural order."""
    tags = list(tags)
    by_digest: dict[str, list[str]] = defaultdict(list)
    for tag, digest in tags:
        by_digest[digest].append(tag)
    return {
        tag: sorted((other for other in by_digest[digest] if other != tag), key=natural_key) for tag, digest in tags
    }


# --- The tag table, from the index ----------------------------------------------------------


def plain_tags(repository: Repository) -> QuerySet[Tag]:
    """A repository's tags without its signature tags (those become badges of the image they sign)."""
    # The prefix first: SQLite runs REGEXP as a Python call per row, LIKE in C (50,000 tags: 30 ms against 4).
    return repository.tags.exclude(Q(name__startswith="sha256-") & Q(name__regex=SIGNATURE_TAG_RE.pattern))


def filter_tags(tags: QuerySet[Tag], query: str) -> QuerySet[Tag]:
    """Tags containing the text, or whose digest starts with it."""
    query = query.strip()
    if not query:
        return tags
    condition = Q(name__icontains=query)
    if prefix := digest_prefix(query):
        condition |= Q(manifest__digest__startswith=prefix)
    return tags.filter(condition)


def sort_tags(tags: QuerySet[Tag], sort: str, descending: bool) -> QuerySet[int]:
    """The tag ids sorted across all tags (a page's rows are read by id afterwards: sorting 50,000 narrow rows,
    not full ones). Names sort in natural order by their stored key; undated images, and tags with no known push
    time in the push sort, go last both ways."""
    value = F(SORT_FIELDS[sort])
    order = [
        value.desc(nulls_last=True) if descending else value.asc(nulls_last=True),
        "-name" if descending else "name",
    ]
    if sort == "pushed":  # tags with no known push time go last both ways, as undated images do
        order.insert(0, "-pushed_known")
    return tags.order_by(*order).values_list("pk", flat=True)


def tags_marker(repository: Repository) -> str:
    """Changes whenever a tag of the repository is added, moved or removed: what an open page polls for."""
    found = repository.tags.aggregate(count=Count("id"), last=Max("last_seen"))
    return f"{found['count']}-{found['last'].timestamp() if found['last'] else 0:.6f}"


def marker_time(marker: str) -> datetime | None:
    """The time in a marker an open page sent back (None for anything else: it comes from the browser)."""
    try:
        return datetime.fromtimestamp(float(marker.partition("-")[2]), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def tag_rows(repository: Repository, ids: Iterable[int]) -> list[Tag]:
    """One page of the tag table, in the order of `ids`, each row with .shared_with (other tags on its digest)
    and .signatures."""
    ids = list(ids)
    found = Tag.objects.select_related("manifest").in_bulk(ids)
    rows = [found[pk] for pk in ids if pk in found]
    pairs = plain_tags(repository).filter(manifest__in={row.manifest_id for row in rows})
    shared = siblings(pairs.values_list("name", "manifest__digest"))
    signed = signature_tag_names(row.manifest.digest for row in rows)
    kinds = signature_kinds(repository.tags.filter(name__in=signed).values_list("name", flat=True))
    for row in rows:
        row.shared_with = shared.get(row.name, [])
        row.signatures = kinds.get(row.manifest.digest, [])
    return rows


def signature_tag_names(digests: Iterable[str]) -> list[str]:
    """The tag names a cosign-style signature, attestation or SBOM of these images would have."""
    return [f"{digest.replace(':', '-')}.{kind}" for digest in set(digests) for kind in SIGNATURE_KINDS]


def index_relations(repository: Repository | None, tag: str, digest: str) -> tuple[list[str], list[str]]:
    """The tag page's "Also tagged" (other tags on this digest) and signature badges, from the index."""
    if repository is None:
        return [], []
    others = plain_tags(repository).filter(manifest__digest=digest).exclude(name=tag).values_list("name", flat=True)
    names = repository.tags.filter(name__in=signature_tag_names([digest])).values_list("name", flat=True)
    return sorted(others, key=natural_key), signature_kinds(names).get(digest, [])


# --- Repositories, from the index -----------------------------------------------------------


def index_state(registry: Registry) -> dict:
    """The index card: the latest reconcile, and since when every tag's digest has been checked (None while
    a repository never was: the sweep that asks every tag comes after the tags lists)."""
    unchecked = registry.repositories.filter(verified_at__isnull=True).exists()
    oldest = registry.repositories.aggregate(oldest=Min("verified_at"))["oldest"]
    return {
        "registry": registry,
        "run": registry.sync_runs.order_by("-started_at").first(),
        "checked_since": None if unchecked else oldest,
        "queued": bool(cache.get("reconcile-queued")),  # catalog.tasks.QUEUED_KEY: asked for, not started yet
    }


REPOSITORY_SORTS = {"name", "tags", "size", "pushed", "created"}


@dataclass
class RepositoryRow:
    """A repository list row: its counts from the index, its sizes from the storage figures (when computed)."""

    name: str
    synced_at: datetime | None
    tag_count: int
    last_push: datetime | None  # the latest known push of one of its tags
    newest: datetime | None  # its newest image's creation time
    referenced: int | None = None
    unique: int | None = None

    @property
    def namespace(self) -> str:
        return self.name.rpartition("/")[0]


def repository_rows(registry: Registry, query: str = "", namespace: str = "") -> list[RepositoryRow]:
    """Every repository (filtered by name and namespace) with its tag count, latest known push and newest image."""
    repositories = repositories_with_counts(registry).annotate(
        last_push=Max("tags__pushed_at", filter=Q(tags__pushed_known=True)), newest=Max("tags__manifest__created")
    )
    if query:
        repositories = repositories.filter(name__icontains=query)
    if namespace:
        repositories = repositories.filter(name__startswith=f"{namespace}/")
    fields = ("name", "synced_at", "tag_count", "last_push", "newest")
    return [RepositoryRow(*row) for row in repositories.values_list(*fields)]


def sort_repositories(rows: list[RepositoryRow], sort: str, descending: bool) -> list[RepositoryRow]:
    """By name (natural order), or by a figure with the unknown ones last both ways, then by name."""
    rows = sorted(rows, key=lambda row: natural_key(row.name), reverse=descending and sort == "name")
    if sort == "name":
        return rows
    value = {"tags": "tag_count", "size": "referenced", "pushed": "last_push", "created": "newest"}[sort]
    known = [row for row in rows if getattr(row, value) is not None]
    unknown = [row for row in rows if getattr(row, value) is None]
    return sorted(known, key=lambda row: getattr(row, value), reverse=descending) + unknown


def repositories_with_counts(registry: Registry) -> QuerySet[Repository]:
    return registry.repositories.annotate(tag_count=Count("tags")).order_by("name")


# --- Search ---------------------------------------------------------------------------------


@dataclass
class Found:
    """One kind of search result: at most SEARCH_LIMIT items, and whether there were more."""

    items: list
    more: bool = False


@dataclass
class ManifestHit:
    """A manifest found by digest or label, with the tags that reach it (directly or through an index)."""

    manifest: Manifest
    tags: list[Tag] = field(default_factory=list)
    more_tags: int = 0
    labels: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SearchResults:
    query: str
    repositories: Found
    tags: Found
    digests: Found
    labels: Found

    @property
    def empty(self) -> bool:
        return not (self.repositories.items or self.tags.items or self.digests.items or self.labels.items)


def capped(items: Iterable) -> Found:
    items = list(items)
    return Found(items[:SEARCH_LIMIT], more=len(items) > SEARCH_LIMIT)


def search(registry: Registry, query: str) -> SearchResults:
    """Repositories and tags by name, manifests by digest prefix, and images by label value, in the index."""
    query = query.strip()
    tags = Tag.objects.filter(repository__registry=registry)
    repositories = repositories_with_counts(registry).filter(name__icontains=query)
    by_name = tags.filter(name__icontains=query).select_related("repository", "manifest")
    # Manifests this registry's tags reach: tagged ones, and the platform images of tagged indexes.
    # (EXISTS per candidate, not IN: the candidates are few, the registry's tags are 100,000.)
    reached = Manifest.objects.filter(
        Exists(tags.filter(manifest=OuterRef("pk")))
        | Exists(ManifestChild.objects.filter(child=OuterRef("pk"), index__tags__repository__registry=registry))
    )
    prefix = digest_prefix(query)
    by_digest = reached.filter(digest__startswith=prefix).order_by("digest") if prefix else reached.none()
    digests = capped(ManifestHit(manifest) for manifest in by_digest[: SEARCH_LIMIT + 1])
    labels = capped(label_matches(reached, query))
    attach_tags(tags, digests.items + labels.items)
    return SearchResults(
        query=query,
        repositories=capped(repositories[: SEARCH_LIMIT + 1]),
        tags=capped(by_name.order_by("repository__name", "name")[: SEARCH_LIMIT + 1]),
        digests=digests,
        labels=labels,
    )


def label_matches(manifests: QuerySet[Manifest], query: str) -> Iterable[ManifestHit]:
    """Manifests with a label value containing the text (case-insensitive), up to SEARCH_LIMIT + 1.

    The database narrows the candidates by the labels' JSON text (which holds keys too, so the values are
    checked here); that text escapes quotes, backslashes and, on SQLite, non-ASCII characters, so a query
    with any of those is checked here alone."""
    needle = query.casefold()
    # In the order they were indexed: ordering by digest makes SQLite walk the digest index over every row.
    candidates = manifests.exclude(labels={}).order_by("pk")
    if query.isascii() and query.isprintable() and '"' not in query and "\\" not in query:
        candidates = candidates.annotate(labels_text=Cast("labels", TextField())).filter(labels_text__icontains=query)
    found = 0
    for manifest in candidates.iterator():
        matching = [
            (key, str(value)) for key, value in sorted(manifest.labels.items()) if needle in str(value).casefold()
        ]
        if matching:
            yield ManifestHit(manifest, labels=matching)
            found += 1
            if found > SEARCH_LIMIT:
                return


def attach_tags(tags: QuerySet[Tag], hits: list[ManifestHit]) -> None:
    """Give each hit the tags pointing at its manifest, or at an index holding it."""
    ids = [hit.manifest.pk for hit in hits]
    parents: dict[int, list[int]] = defaultdict(list)
    for child, parent in ManifestChild.objects.filter(child__in=ids).values_list("child", "index"):
        parents[child].append(parent)
    wanted = set(ids) | {parent for parent_ids in parents.values() for parent in parent_ids}
    by_manifest: dict[int, list[Tag]] = defaultdict(list)
    for tag in tags.filter(manifest__in=wanted).select_related("repository").order_by("repository__name", "name"):
        by_manifest[tag.manifest_id].append(tag)
    for hit in hits:
        reaching = by_manifest[hit.manifest.pk] + [
            tag for parent in parents[hit.manifest.pk] for tag in by_manifest[parent]
        ]
        hit.tags, hit.more_tags = reaching[:TAGS_PER_RESULT], max(len(reaching) - TAGS_PER_RESULT, 0)


def index_tags_containing(repository: Repository | None, digest: str) -> list[str]:
    """Tags of this repository's multi-platform images that contain the image `digest`."""
    if repository is None:
        return []
    indexes = ManifestChild.objects.filter(child__digest=digest).values("index_id")
    return sorted(repository.tags.filter(manifest__in=indexes).values_list("name", flat=True), key=natural_key)
