"""A registry process on this machine: the one the run command starts when no REGISTRY_URL is given, and the
ones the tests and benchmarks run against. Images to push into it are built by devtools/images.py.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from registry.client import wait_until_answers
from registry.htpasswd import add_user

CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: {no_access_log}
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


@dataclass
class LocalRegistry:
    """A `docker-registry serve` process with htpasswd auth and its data in `root`."""

    root: Path
    port: int = field(default_factory=free_port)
    delete_enabled: bool = True
    readonly: bool = False
    notifications_url: str = ""  # where the registry posts its events, with `notifications_secret`
    notifications_secret: str = ""
    access_log: bool = False  # a line per request in its log, as a web server's access log (benchmarks count them)
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

    @property
    def pid_file(self) -> Path:
        return self.root / "registry.pid"

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
                no_access_log=str(not self.access_log).lower(),
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
        self.pid_file.write_text(str(self.process.pid))
        self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 15) -> None:
        wait_until_answers(self.url, seconds, alive=self.check_running)

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"The registry exited with code {self.process.returncode}; see its log.")

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
        self.pid_file.unlink(missing_ok=True)


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


@contextlib.contextmanager
def throwaway_registry(prefix: str, username: str) -> Iterator[tuple[LocalRegistry, str, Path]]:
    """A running registry in a temporary folder with one htpasswd account of a random password: yields the registry,
    that password and the folder (for the rest of a benchmark's files); all of it is gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        registry = LocalRegistry(Path(temp) / "registry")
        registry.write_config()
        password = secrets.token_urlsafe(24)
        add_user(registry.htpasswd, username, password, cost=4)
        registry.start()
        try:
            yield registry, password, Path(temp)
        finally:
            registry.stop()
