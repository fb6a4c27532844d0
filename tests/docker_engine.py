"""A real Docker Engine for the tests of the GC bridge: `dockerd` from Debian's docker.io, a registry:2-shaped
image built here without pulling anything, and registry containers made from it.

The image holds only what a registry:2 container offers the bridge, copied from this machine:

- /bin/registry: Debian's /usr/bin/docker-registry (distribution 2.8.2, the code of registry:2), the entrypoint.
- /usr/bin/timeout: the bridge wraps every exec in `timeout N` (registry:2 has BusyBox's; here coreutils').
- /usr/bin/df and /usr/bin/du: bridge.disk_usage() runs them in the container (BusyBox has both in registry:2).
- The C library and the loader those binaries link, found with ldd.
- /etc/docker/registry/config.yml (a default like registry:2's) and /var/lib/registry, declared a VOLUME as in
  registry:2, so recreating a container without a bind mount is tested against the same trap.

No shell and no ps: the bridge passes every command as a list and needs neither.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from devtools.localregistry import CONFIG_TEMPLATE, free_port
from registry.client import RegistryClient, wait_until_answers
from registry.htpasswd import add_user

IMAGE = "registry-ui-test/registry:2"
REGISTRY_SOURCE = "/usr/bin/docker-registry"
TOOLS = {"/usr/bin/timeout": "/usr/bin/timeout", "/usr/bin/df": "/usr/bin/df", "/usr/bin/du": "/usr/bin/du"}
CONTAINER_CONFIG = "/etc/docker/registry/config.yml"
CONTAINER_DATA = "/var/lib/registry"
TEST_LABEL = "registry-ui.test"
DEFAULT_CONFIG = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
"""


@dataclass
class RegistryContainer:
    """A registry container on the host network: its config folder is bind-mounted at /etc/docker/registry
    (config.yml and htpasswd; tests may drop other configs there), its data folder at /var/lib/registry."""

    name: str
    port: int
    data: Path  # on this host: the container's /var/lib/registry
    etc: Path  # on this host: the container's /etc/docker/registry
    username: str
    password: str
    label: str  # the value of its TEST_LABEL, which a recreated container keeps

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> str:
        return CONTAINER_CONFIG

    def client(self) -> RegistryClient:
        return RegistryClient(self.url, self.username, self.password)


def registry_config(port: int) -> str:
    """The test registry's config (devtools.localregistry's template) with the paths the container sees."""
    return CONFIG_TEMPLATE.format(
        data=CONTAINER_DATA,
        port=port,
        htpasswd="/etc/docker/registry/htpasswd",
        secret=secrets.token_hex(16),
        delete="true",
        readonly="false",
        no_access_log="true",
        notifications="",
    )


# --- dockerd --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory) -> Iterator[str]:
    """dockerd started as ENVIRONMENT.md says (no bridge, no iptables, vfs), in a temp folder; yields its
    DOCKER_HOST. Stopped by the pid in its pidfile, never by name."""
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root; the GC bridge's Docker tests run as root (CI does)")
    if not shutil.which("dockerd"):
        pytest.skip("dockerd is missing: install Debian's docker.io (make system-packages does)")
    root = tmp_path_factory.mktemp("dockerd")
    socket_path, pidfile, log_path = root / "docker.sock", root / "docker.pid", root / "dockerd.log"
    host = f"unix://{socket_path}"
    command = [
        "dockerd",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--storage-driver=vfs",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={pidfile}",
        f"--host={host}",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"dockerd exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if socket_path.exists() and _answers(host):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"dockerd did not answer within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield host
    finally:
        _stop_dockerd(process, pidfile, root)


def _answers(host: str) -> bool:
    try:
        client = docker.DockerClient(base_url=host, timeout=5)
    except docker.errors.DockerException:
        return False
    client.close()
    return True


def _stop_dockerd(process: subprocess.Popen, pidfile: Path, root: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        pid = process.pid  # it died before writing one, or removed it on the way out
    containerd_pidfile = root / "exec" / "containerd" / "containerd.pid"
    containerd_pid = int(containerd_pidfile.read_text()) if containerd_pidfile.exists() else None
    if process.poll() is None:
        os.kill(pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            process.wait()
    # dockerd stops the containerd it started; after a SIGKILL that one would be left behind.
    if containerd_pid and Path(f"/proc/{containerd_pid}").exists():
        os.kill(containerd_pid, signal.SIGTERM)
    # It leaves its network namespace mounted (exec/netns/default); vfs keeps a full copy per container.
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", mount], check=False)
    shutil.rmtree(root, ignore_errors=True)


# --- The image ------------------------------------------------------------------------------


def linked_libraries(binary: str) -> list[str]:
    """The shared libraries and loader a binary needs, as ldd names them (the paths it will look at)."""
    output = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return re.findall(r"(?:=> )?(/\S+) \(0x", output)


def image_tar() -> bytes:
    """The root filesystem of the test image, as a tar for `docker import`."""
    files = {"/bin/registry": REGISTRY_SOURCE, **TOOLS}
    for binary in [REGISTRY_SOURCE, *TOOLS.values()]:
        files.update({library: library for library in linked_libraries(binary)})
    folders = {"tmp", "etc/docker/registry", CONTAINER_DATA.lstrip("/")}
    folders |= {str(Path(path).parent).lstrip("/") for path in files}
    folders = {str(parent) for folder in folders for parent in [Path(folder), *Path(folder).parents]} - {"."}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            archive.addfile(info)
        for target, source in sorted(files.items()):
            data = Path(source).resolve().read_bytes()  # the file a symlink (libc.so.6, the loader) points to
            info = tarfile.TarInfo(target.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        config = DEFAULT_CONFIG.encode()
        info = tarfile.TarInfo(CONTAINER_CONFIG.lstrip("/"))
        info.size, info.mode = len(config), 0o644
        archive.addfile(info, io.BytesIO(config))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def registry_image(dockerd) -> str:
    """The registry:2-shaped image (see the module docstring), built once per session; returns its name."""
    client = docker.DockerClient(base_url=dockerd)
    repository, tag = IMAGE.rsplit(":", 1)
    client.api.import_image_from_data(
        image_tar(),
        repository=repository,
        tag=tag,
        changes=[
            'ENTRYPOINT ["/bin/registry"]',
            f'CMD ["serve","{CONTAINER_CONFIG}"]',
            f'VOLUME ["{CONTAINER_DATA}"]',
            "EXPOSE 5000",
        ],
    )
    client.close()
    return IMAGE


# --- Containers -----------------------------------------------------------------------------


def start_registry(
    client, image: str, folder: Path, label: str, *, bind_data: bool = True, **options
) -> RegistryContainer:
    """Run a registry container of the image on a free port of the host network, with htpasswd auth (user
    svc, bcrypt cost 4) and delete enabled; its config folder is `folder`/etc, its data `folder`/data (or,
    without `bind_data`, the anonymous volume the image declares). Waits until /v2/ answers."""
    found = RegistryContainer(
        name=f"registry-test-{label}",
        port=free_port(),
        data=folder / "data",
        etc=folder / "etc",
        username="svc",
        password="pw",
        label=label,
    )
    found.data.mkdir(parents=True)
    found.etc.mkdir(parents=True)
    (found.etc / "config.yml").write_text(registry_config(found.port))
    add_user(found.etc / "htpasswd", found.username, found.password, cost=4)
    volumes = {str(found.etc): {"bind": "/etc/docker/registry", "mode": "rw"}}
    if bind_data:
        volumes[str(found.data)] = {"bind": CONTAINER_DATA, "mode": "rw"}
    client.containers.run(
        image,
        name=found.name,
        detach=True,
        network_mode="host",
        volumes=volumes,
        labels={TEST_LABEL: label},
        **options,
    )
    wait_until_answers(found.url, 20)
    return found


def remove_labelled(client, label: str) -> None:
    """Every container of one test registry: a container the bridge recreated has a new id, and an old one
    may be left renamed."""
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={label}"}):
        container.remove(force=True, v=True)


@pytest.fixture
def docker_client(dockerd):
    client = docker.DockerClient(base_url=dockerd)
    yield client
    client.close()


@pytest.fixture
def registry_container(docker_client, registry_image, tmp_path) -> Iterator[RegistryContainer]:
    """An empty registry container of the test's own, its data bind-mounted from the host; removed afterwards."""
    label = secrets.token_hex(4)
    try:
        yield start_registry(docker_client, registry_image, tmp_path, label)
    finally:
        remove_labelled(docker_client, label)


@pytest.fixture
def registry_container_on_volume(docker_client, registry_image, tmp_path) -> Iterator[RegistryContainer]:
    """As registry_container, with its data in the anonymous volume the image declares (registry:2 run
    without -v): only the container itself holds on to it."""
    label = secrets.token_hex(4)
    try:
        yield start_registry(docker_client, registry_image, tmp_path, label, bind_data=False)
    finally:
        remove_labelled(docker_client, label)


# The marks of the tests that build the dashboard's image and run it (test_image.py, test_compose.py).
IMAGE_TEST_MARKS = [
    pytest.mark.docker,
    pytest.mark.slow,
    # Setup makes the base images and builds the dashboard's (several minutes on a busy machine), inside the budget.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the image does not depend on the suite's database: the SQLite run builds and runs it",
    ),
]
