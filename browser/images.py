"""What the pages show about repositories, tags and images, built from the registry client.

A repository's tag table needs every tag's manifest and config to sort by created date or size across all
tags, so the whole table is built at once (manifests and configs come from the digest cache after the first
time) and kept for REGISTRY_CACHE_SECONDS; the page says how old it is and offers a refresh.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from browser.registry import (
    INDEX_TYPES,
    Descriptor,
    ImageConfig,
    MalformedResponse,
    Manifest,
    NotFound,
    RegistryClient,
    UnsupportedManifest,
)

SIGNATURE_TAG_RE = re.compile(r"^sha256-([0-9a-f]{64})\.(sig|att|sbom)$")
SORTS = {"name", "created", "size"}


def natural_key(text: str) -> list:
    """Sort key that puts 1.9 before 1.10 (numbers compare as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text) if part]


@dataclass
class TagRow:
    tag: str
    digest: str = ""
    media_type: str = ""
    size: int = 0
    created: datetime | None = None
    platforms: list[str] = field(default_factory=list)
    has_attestations: bool = False
    shared_with: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass
class Listing:
    repository: str
    rows: list[TagRow]
    as_of: datetime


@dataclass
class RepositorySummary:
    name: str
    tag_count: int

    @property
    def namespace(self) -> str:
        return self.name.rpartition("/")[0]


@dataclass
class PlatformImage:
    descriptor: Descriptor | None  # the index entry; None for a single-platform image
    manifest: Manifest
    config: ImageConfig | None
    platform: str

    @property
    def blobs(self) -> list[tuple[Descriptor, float]]:
        """The config blob, then each layer, with its share of the image's size (0..1)."""
        total = self.manifest.image_size or 1
        return [(blob, blob.size / total) for blob in self.manifest.blobs]


@dataclass
class ImageDetail:
    repository: str
    tag: str
    manifest: Manifest
    images: list[PlatformImage]
    attestations: list[Descriptor]
    size: int
    signatures: list[str]
    shared_with: list[str]


# --- Building blocks ------------------------------------------------------------------------


def platform_entries(manifest: Manifest) -> tuple[list[Descriptor], list[Descriptor]]:
    """An index's runnable images and its attestation manifests, apart."""
    images = [entry for entry in manifest.manifests if not entry.is_attestation]
    return images, [entry for entry in manifest.manifests if entry.is_attestation]


def distinct_size(manifests: list[Manifest]) -> int:
    """Bytes of all config and layer blobs of these manifests, each blob counted once."""
    return sum({blob.digest: blob.size for manifest in manifests for blob in manifest.blobs}.values())


def describe_tag(client: RegistryClient, repository: str, tag: str) -> TagRow | None:
    """One row of the tag table; None if the tag vanished since the tag list was read."""
    try:
        manifest = client.manifest(repository, tag)
    except NotFound:
        return None
    except (UnsupportedManifest, MalformedResponse) as exc:
        return TagRow(tag=tag, error=exc.message)
    row = TagRow(tag=tag, digest=manifest.digest, media_type=manifest.media_type)
    try:
        if manifest.is_index:
            entries, attestations = platform_entries(manifest)
            children = [client.manifest(repository, entry.digest) for entry in entries]
            row.platforms = [str(entry.platform) for entry in entries if entry.platform]
            row.has_attestations = bool(attestations)
        else:
            children = [manifest]
        configs = [client.config(repository, child.config.digest) for child in children if child.config]
        row.size = distinct_size(children)
        row.created = max((config.created for config in configs if config.created), default=None)
        if not manifest.is_index:
            row.platforms = [str(config.platform) for config in configs if config.platform]
    except (NotFound, UnsupportedManifest, MalformedResponse) as exc:
        row.error = exc.message  # a child manifest or config blob is missing or broken
    return row


def mark_relations(rows: list[TagRow], signature_tags: list[str]) -> None:
    """Note which tags share a digest and which images have cosign-style signature tags."""
    by_digest: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.digest:
            by_digest[row.digest].append(row.tag)
    signatures: dict[str, list[str]] = defaultdict(list)
    for tag in signature_tags:
        hex_digest, kind = SIGNATURE_TAG_RE.match(tag).groups()
        signatures[f"sha256:{hex_digest}"].append(kind)
    for row in rows:
        row.shared_with = [tag for tag in by_digest.get(row.digest, []) if tag != row.tag]
        row.signatures = sorted(signatures.get(row.digest, []))


# --- What pages ask for ---------------------------------------------------------------------


def repository_listing(client: RegistryClient, repository: str, *, refresh: bool = False) -> Listing:
    """Every tag of a repository with its digest, size, created date and platforms."""
    key = f"listing:{client.url}:{repository}"
    if not refresh and (listing := cache.get(key)):
        return listing
    tags = client.tags(repository)
    signature_tags = [tag for tag in tags if SIGNATURE_TAG_RE.match(tag)]
    plain_tags = [tag for tag in tags if not SIGNATURE_TAG_RE.match(tag)]
    rows = [row for row in client.map(lambda tag: describe_tag(client, repository, tag), plain_tags) if row]
    mark_relations(rows, signature_tags)
    listing = Listing(repository=repository, rows=rows, as_of=timezone.now())
    cache.set(key, listing, settings.REGISTRY_CACHE_SECONDS)
    return listing


def sort_rows(rows: list[TagRow], sort: str, descending: bool) -> list[TagRow]:
    """Sort across all rows. Rows without a created date go last either way."""
    if sort == "created":
        dated = sorted((row for row in rows if row.created), key=lambda row: row.created, reverse=descending)
        return dated + sorted((row for row in rows if not row.created), key=lambda row: natural_key(row.tag))
    if sort == "size":
        return sorted(rows, key=lambda row: (row.size, natural_key(row.tag)), reverse=descending)
    return sorted(rows, key=lambda row: natural_key(row.tag), reverse=descending)


def filter_rows(rows: list[TagRow], query: str) -> list[TagRow]:
    """Tags containing the text, or whose digest starts with it (with or without sha256:)."""
    query = query.strip().lower()
    if not query:
        return rows
    digest_prefix = query if query.startswith("sha256:") else f"sha256:{query}"
    return [
        row for row in rows if query in row.tag.lower() or (len(query) >= 4 and row.digest.startswith(digest_prefix))
    ]


def repository_summaries(client: RegistryClient, *, refresh: bool = False) -> list[RepositorySummary]:
    """Every repository in the catalog with its tag count."""
    key = f"summaries:{client.url}"
    if not refresh and (summaries := cache.get(key)) is not None:
        return summaries

    def summarize(name: str) -> RepositorySummary:
        try:
            return RepositorySummary(name, len(client.tags(name)))
        except NotFound:  # listed in the catalog, but its tags are gone
            return RepositorySummary(name, 0)

    summaries = client.map(summarize, sorted(client.catalog(), key=natural_key))
    cache.set(key, summaries, settings.REGISTRY_CACHE_SECONDS)
    return summaries


def image_detail(client: RegistryClient, repository: str, tag: str) -> ImageDetail:
    """Everything the tag page shows: one section per platform, with layers and config."""
    manifest = client.manifest(repository, tag)
    if manifest.is_index:
        entries, attestations = platform_entries(manifest)
        children = client.map(lambda entry: client.manifest(repository, entry.digest), entries)
        pairs = list(zip(entries, children, strict=True))
    else:
        attestations, pairs = [], [(None, manifest)]
    images = []
    for entry, child in pairs:
        config = client.config(repository, child.config.digest) if child.config else None
        platform = entry.platform if entry else (config.platform if config else None)
        images.append(PlatformImage(descriptor=entry, manifest=child, config=config, platform=str(platform or "")))
    listing = repository_listing(client, repository)
    row = next((row for row in listing.rows if row.tag == tag), None)
    return ImageDetail(
        repository=repository,
        tag=tag,
        manifest=manifest,
        images=images,
        attestations=attestations,
        size=distinct_size([image.manifest for image in images]),
        signatures=row.signatures if row and row.digest == manifest.digest else [],
        shared_with=row.shared_with if row and row.digest == manifest.digest else [],
    )
