"""A registry on this machine: the one the run command starts when no REGISTRY_URL is given, and the
one the test suite runs against. Also builds small images and pushes them through the registry client.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import random
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt

from browser import registry
from browser.registry import Descriptor, RegistryClient, RegistryError

CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: {delete}
  maintenance:
    readonly:
      enabled: {readonly}
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
auth:
  htpasswd:
    realm: registry
    path: {htpasswd}
{notifications}"""

NOTIFICATIONS_TEMPLATE = """\
notifications:
  endpoints:
    - name: registry-ui
      url: {url}
      headers:
        Authorization: [Bearer {secret}]
      timeout: 2s
      threshold: 5
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        actions: [pull]
"""


def registry_command() -> list[str] | None:
    """How to start a registry here: a registry binary on PATH, else Docker, else None."""
    for binary in ("docker-registry", "registry"):
        if path := shutil.which(binary):
            return [path, "serve"]
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen there now (connections of a stopped one lingering in TIME_WAIT
    don't count: servers set SO_REUSEADDR, and so does this probe)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_until_answers(url: str, seconds: float = 15, process: subprocess.Popen | None = None) -> None:
    """Wait until a registry answers /v2/ (an exited `process` stops the wait at once)."""
    deadline = time.monotonic() + seconds
    client = RegistryClient(url, connect_timeout=0.5, read_timeout=1)
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"The registry exited with code {process.returncode}; see its log.")
        try:
            client.check_credentials("-", "-")
            return
        except RegistryError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def add_user(htpasswd: Path, username: str, password: str, cost: int = 10) -> None:
    """Add (or replace) a bcrypt entry, as `htpasswd -B` does."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    lines = htpasswd.read_text().splitlines() if htpasswd.exists() else []
    lines = [line for line in lines if not line.startswith(f"{username}:")] + [f"{username}:{hashed}"]
    htpasswd.write_text("\n".join(lines) + "\n")


@dataclass
class LocalRegistry:
    """A `docker-registry serve` process with htpasswd auth and its data in `root`."""

    root: Path
    port: int = field(default_factory=free_port)
    delete_enabled: bool = True
    readonly: bool = False
    notifications_url: str = ""  # where the registry posts its events, with `notifications_secret`
    notifications_secret: str = ""
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def htpasswd(self) -> Path:
        return self.root / "htpasswd"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yml"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self.htpasswd.touch()
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                data=self.root / "data",
                port=self.port,
                htpasswd=self.htpasswd,
                secret=secrets.token_hex(16),
                delete=str(self.delete_enabled).lower(),
                readonly=str(self.readonly).lower(),
                notifications=NOTIFICATIONS_TEMPLATE.format(
                    url=self.notifications_url, secret=self.notifications_secret
                )
                if self.notifications_url
                else "",
            )
        )

    def start(self, command: list[str] | None = None, log=subprocess.DEVNULL) -> LocalRegistry:
        command = command or registry_command()
        if command is None:
            raise RuntimeError("No registry binary found: install the docker-registry package.")
        if not port_is_free("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is in use; is another registry still running?")
        self.write_config()
        self.process = subprocess.Popen([*command, str(self.config_path)], stdout=log, stderr=log)
        self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 15) -> None:
        wait_until_answers(self.url, seconds, self.process)

    def restart(self, **changes) -> None:
        """Stop, change settings (delete_enabled=…, readonly=…), start again on the same port and data."""
        self.stop()
        for name, value in changes.items():
            setattr(self, name, value)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- Building images ------------------------------------------------------------------------


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
        "rootfs": {"type": "layers", "diff_ids": [registry.sha256_digest(gzip.decompress(blob)) for blob in blobs]},
        "history": [{"created": created, "created_by": f"ADD layer{i} /"} for i in range(len(blobs))]
        + [{"created": created, "created_by": 'CMD ["/bin/sh"]', "empty_layer": True}],
    }
    config_type = registry.OCI_CONFIG if spec.oci else registry.DOCKER_CONFIG
    config_descriptor = client.upload_blob(repository, _canonical(config), config_type)
    layer_descriptors = [client.upload_blob(repository, blob, layer_type) for blob in blobs]
    media_type = registry.OCI_MANIFEST if spec.oci else registry.DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": _descriptor_json(config_descriptor),
        "layers": [_descriptor_json(item) for item in layer_descriptors],
    }
    body = _canonical(manifest)
    digest = client.put_manifest(repository, tag or registry.sha256_digest(body), body, media_type)
    return Descriptor(media_type=media_type, digest=digest, size=len(body))


def push_config_image(
    client: RegistryClient, repository: str, tag: str, created: datetime, base: Descriptor, labels: dict[str, str]
) -> None:
    """A distinct image in three requests: a new config over an already pushed layer. For filling test and
    benchmark registries with thousands of images."""
    config = {"architecture": "amd64", "os": "linux", "created": created.isoformat(), "config": {"Labels": labels}}
    config_descriptor = client.upload_blob(repository, _canonical(config), registry.DOCKER_CONFIG, known_new=True)
    manifest = {
        "schemaVersion": 2,
        "mediaType": registry.DOCKER_MANIFEST,
        "config": _descriptor_json(config_descriptor),
        "layers": [_descriptor_json(base)],
    }
    client.put_manifest(repository, tag, _canonical(manifest), registry.DOCKER_MANIFEST)


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
                    "mediaType": registry.OCI_MANIFEST,
                    "config": _descriptor_json(empty_config),
                    "layers": [_descriptor_json(statement)],
                }
            )
            digest = client.put_manifest(
                repository, registry.sha256_digest(attestation), attestation, registry.OCI_MANIFEST
            )
            entries.append(
                {
                    "mediaType": registry.OCI_MANIFEST,
                    "digest": digest,
                    "size": len(attestation),
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": child.digest,
                    },
                }
            )
    media_type = registry.OCI_INDEX if oci else registry.DOCKER_MANIFEST_LIST
    body = _canonical({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
    digest = client.put_manifest(repository, tag, body, media_type)
    return Descriptor(media_type=media_type, digest=digest, size=len(body))


def _descriptor_json(descriptor: Descriptor) -> dict:
    return {"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size}


def _canonical(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


# --- The demo registry of the run command ---------------------------------------------------


def docker_command(root: Path) -> list[str] | None:
    """`docker run registry:2` with the data folder mounted at the same path, so one config serves both."""
    if not shutil.which("docker"):
        return None
    return [
        "docker",
        "run",
        "--rm",
        "--name",
        "registry-ui-demo",
        "--network",
        "host",
        "-v",
        f"{root}:{root}",
        "registry:2",
        "serve",
    ]


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
