"""Small, reproducible images built here and pushed through the registry client: the demo images of the run
command, and the images the tests and benchmarks push."""

from __future__ import annotations

import functools
import gzip
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from registry.client import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    RegistryClient,
    sha256_digest,
)


def layer(files: dict[str, bytes | str]) -> bytes:
    """A gzipped tar layer holding `files`, byte-for-byte reproducible."""
    return _layer(
        tuple(
            sorted((name, content.encode() if isinstance(content, str) else content) for name, content in files.items())
        )
    )


@functools.lru_cache(maxsize=64)  # the same base layer goes into many images: compress it once
def _layer(files: tuple[tuple[str, bytes], ...]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


@dataclass
class ImageSpec:
    """What goes into one test or demo image. Layers are file maps; the same map gives the same blob."""

    layers: list[dict[str, bytes | str]]
    created: datetime | None = None
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""
    env: list[str] = field(default_factory=lambda: ["PATH=/usr/local/bin:/usr/bin:/bin"])
    labels: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] = field(default_factory=lambda: ["/bin/sh"])
    exposed_ports: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    oci: bool = False


def push_image(client: RegistryClient, repository: str, tag: str | None, spec: ImageSpec) -> Descriptor:
    """Push layers, config and manifest; tag it when `tag` is given. Returns the manifest's descriptor."""
    layer_type = (
        "application/vnd.oci.image.layer.v1.tar+gzip"
        if spec.oci
        else "application/vnd.docker.image.rootfs.diff.tar.gzip"
    )
    blobs = [layer(files) for files in spec.layers]
    created = (spec.created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config = {
        "architecture": spec.architecture,
        "os": spec.os,
        **({"variant": spec.variant} if spec.variant else {}),
        "created": created,
        "config": {
            "Env": spec.env,
            "Cmd": spec.cmd,
            "Entrypoint": spec.entrypoint,
            "Labels": spec.labels or None,
            "ExposedPorts": {port: {} for port in spec.exposed_ports} or None,
            "WorkingDir": spec.working_dir,
            "User": spec.user,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(gzip.decompress(blob)) for blob in blobs]},
        "history": [{"created": created, "created_by": f"ADD layer{i} /"} for i in range(len(blobs))]
        + [{"created": created, "created_by": 'CMD ["/bin/sh"]', "empty_layer": True}],
    }
    config_type = OCI_CONFIG if spec.oci else DOCKER_CONFIG
    config_descriptor = client.upload_blob(repository, _canonical(config), config_type)
    layer_descriptors = [client.upload_blob(repository, blob, layer_type) for blob in blobs]
    media_type = OCI_MANIFEST if spec.oci else DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": _descriptor_json(config_descriptor),
        "layers": [_descriptor_json(item) for item in layer_descriptors],
    }
    body = _canonical(manifest)
    digest = client.put_manifest(repository, tag or sha256_digest(body), body, media_type)
    return Descriptor(media_type=media_type, digest=digest, size=len(body))


def push_config_image(
    client: RegistryClient, repository: str, tag: str, created: datetime, base: Descriptor, labels: dict[str, str]
) -> None:
    """A distinct image in three requests: a new config over an already pushed layer. For filling test and
    benchmark registries with thousands of images."""
    config = {"architecture": "amd64", "os": "linux", "created": created.isoformat(), "config": {"Labels": labels}}
    config_descriptor = client.upload_blob(repository, _canonical(config), DOCKER_CONFIG, known_new=True)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": _descriptor_json(config_descriptor),
        "layers": [_descriptor_json(base)],
    }
    client.put_manifest(repository, tag, _canonical(manifest), DOCKER_MANIFEST)


def push_index(
    client: RegistryClient, repository: str, tag: str, specs: list[ImageSpec], *, oci: bool = True, attest: bool = False
) -> Descriptor:
    """Push one image per platform and an index over them (OCI index or Docker manifest list).
    With `attest`, each platform also gets a BuildKit-style attestation manifest in the index."""
    entries = []
    for spec in specs:
        spec.oci = oci
        child = push_image(client, repository, None, spec)
        platform = {
            "os": spec.os,
            "architecture": spec.architecture,
            **({"variant": spec.variant} if spec.variant else {}),
        }
        entries.append({**_descriptor_json(child), "platform": platform})
        if attest:
            statement = _canonical(
                {"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": child.digest}]}
            )
            statement = client.upload_blob(repository, statement, "application/vnd.in-toto+json")
            empty_config = client.upload_blob(repository, b"{}", "application/vnd.oci.image.config.v1+json")
            attestation = _canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": _descriptor_json(empty_config),
                    "layers": [_descriptor_json(statement)],
                }
            )
            digest = client.put_manifest(repository, sha256_digest(attestation), attestation, OCI_MANIFEST)
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(attestation),
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": child.digest,
                    },
                }
            )
    media_type = OCI_INDEX if oci else DOCKER_MANIFEST_LIST
    body = _canonical({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
    digest = client.put_manifest(repository, tag, body, media_type)
    return Descriptor(media_type=media_type, digest=digest, size=len(body))


def _descriptor_json(descriptor: Descriptor) -> dict:
    return {"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size}


def _canonical(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def demo_images(client: RegistryClient) -> None:
    """A few small images that show what the dashboard does: versions, shared tags, multi-arch."""
    now = datetime.now(UTC)
    noise = random.Random(2)  # incompressible bytes, so sizes look like real images
    base = {"etc/os-release": 'NAME="Demo Linux"\nID=demo\n', "lib/libdemo.so": noise.randbytes(1_400_000)}
    for days_ago, version in [(40, "1.0"), (20, "1.1"), (3, "1.2")]:
        spec = ImageSpec(
            layers=[
                base,
                {
                    "srv/www/index.html": f"<h1>Hello, version {version}</h1>\n",
                    "srv/www/app.js": noise.randbytes(400_000),
                },
            ],
            created=now - timedelta(days=days_ago),
            labels={"org.opencontainers.image.version": version},
            cmd=["httpd", "-f", "-p", "8080"],
            exposed_ports=["8080/tcp"],
            working_dir="/srv/www",
            user="www-data",
        )
        push_image(client, "demo/hello-web", version, spec)
        if version == "1.2":
            push_image(client, "demo/hello-web", "latest", spec)
    platforms = [("amd64", ""), ("arm64", "v8")]
    specs = [
        ImageSpec(
            layers=[base, {"usr/bin/api": noise.randbytes(3_000_000 if arch == "amd64" else 2_700_000)}],
            created=now - timedelta(days=1),
            architecture=arch,
            variant=variant,
            entrypoint=["/usr/bin/api"],
            cmd=["--listen", ":9000"],
        )
        for arch, variant in platforms
    ]
    push_index(client, "demo/api", "2.0", specs, attest=True)
    push_index(client, "demo/api", "stable", specs, attest=True)
    push_image(
        client,
        "tools/debug",
        "v0.3.1",
        ImageSpec(
            layers=[base, {"usr/bin/debug": noise.randbytes(1_200_000)}],
            created=now - timedelta(hours=5),
            oci=True,
            labels={"org.opencontainers.image.source": "https://example.com/tools/debug"},
        ),
    )
