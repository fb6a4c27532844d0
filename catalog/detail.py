"""The tag page's live details: each platform's manifest, layers and config, read from the registry (manifests
and configs are cached by digest, so only a moved tag costs new requests)."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.storage import distinct_size
from registry.client import Descriptor, ImageConfig, RegistryClient
from registry.client import Manifest as ManifestData


@dataclass
class PlatformImage:
    descriptor: Descriptor | None  # the index entry; None for a single-platform image
    manifest: ManifestData
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
    manifest: ManifestData
    images: list[PlatformImage]
    attestations: list[Descriptor]
    size: int


def platform_entries(manifest: ManifestData) -> tuple[list[Descriptor], list[Descriptor]]:
    """An index's runnable images and its attestation manifests, apart."""
    images = [entry for entry in manifest.manifests if not entry.is_attestation]
    return images, [entry for entry in manifest.manifests if entry.is_attestation]


def image_detail(client: RegistryClient, repository: str, tag: str) -> ImageDetail:
    """Everything the tag page shows of the image: one section per platform, with layers and config."""
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
    return ImageDetail(
        repository=repository,
        tag=tag,
        manifest=manifest,
        images=images,
        attestations=attestations,
        size=distinct_size([image.manifest for image in images]),
    )
