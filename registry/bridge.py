"""The GC bridge: the one module that runs commands next to the registry (`registry garbage-collect`, df/du
on its storage) and restarts it read-only and back. Nothing else imports `docker` or runs the registry binary.

Backends, chosen by the setting GC_BRIDGE:

- docker: `docker exec` in the container REGISTRY_CONTAINER through the Docker Engine at DOCKER_HOST (read by
  the Docker SDK itself). Whoever can use that socket is root on that host, and a socket proxy that allows exec
  and container create (which the read-only restart needs) does not change that: keep the GC role narrow, or
  choose none and run the command by hand.
- local: the registry binary on this host (REGISTRY_BINARY), for a registry that runs here as a process. With
  REGISTRY_PID_FILE (the run command's demo registry) its supervisor starts it again whenever it stops, read-only
  while a file named `read-only` lies beside the pid file: the bridge sets or clears that file and stops the
  process, so the read-only switch works as with docker.
- none: nothing runs; `manual_command()` gives the command a person runs by hand.

How the time limit (GC_TIME_LIMIT) is enforced for docker: the exec'd command is always
`timeout GC_TIME_LIMIT <binary> <args…>`, so the process is killed inside the container when the limit passes
(registry:2 has BusyBox's `timeout`; the registry is killed, not orphaned, and nothing is left running). The
output is read in a thread and handed to the caller's thread through a queue; if it has not ended GRACE_SECONDS
after the limit (a `timeout` that did not fire, a stalled stream), the bridge closes the stream and reports a
time-out with no exit code: the caller is never held longer than the limit plus the grace. The exit code is
read with exec_inspect after the output ends. For local, the process is killed when the limit passes.
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from django.conf import settings

from registry.client import RegistryError, wait_until_answers

DEFAULT_BINARY = {"docker": "/bin/registry", "local": "/usr/bin/docker-registry", "none": "/bin/registry"}
GRACE_SECONDS = 10  # past GC_TIME_LIMIT, for the in-container `timeout` to fire and the output to end
READY_SECONDS = 60  # how long a (re)started registry may take to answer HTTP
STOP_SECONDS = 30  # SIGTERM, then SIGKILL
READONLY_ENV = "REGISTRY_STORAGE_MAINTENANCE_READONLY"
READONLY_VALUE = '{"enabled":true}'
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Result:
    """How a command ended. `output` is stdout and stderr merged, line by line, in arrival order."""

    exit_code: int | None  # None when the bridge stopped waiting (time-out without an exit code)
    output: str
    timed_out: bool
    seconds: float


@dataclass(frozen=True)
class Usage:
    """The registry storage's filesystem (df) and the storage tree itself (du), in bytes."""

    total_bytes: int
    used_bytes: int
    free_bytes: int  # available to the registry (df's "Available")
    storage_bytes: int

    @property
    def reserved_bytes(self) -> int:
        """What is neither used nor available: kept by the file system (e.g. ext4's 5% for root)."""
        return max(self.total_bytes - self.used_bytes - self.free_bytes, 0)


class BridgeError(Exception):
    """A command could not be run or the registry could not be restarted; `message` says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BridgeUnavailable(BridgeError):
    """The configured backend cannot do this (GC_BRIDGE=none, or local for restarts)."""


class BridgeMisconfigured(BridgeError):
    """The settings point at something that is not there or cannot be used."""


# --- Public API -----------------------------------------------------------------------------


def backend() -> str:
    return settings.GC_BRIDGE


def registry_binary() -> str:
    """REGISTRY_BINARY, else the usual path for the backend (/bin/registry in registry:2)."""
    return settings.REGISTRY_BINARY or DEFAULT_BINARY[backend()]


def manual_command(args: list[str]) -> str:
    """The exact command line a person runs by hand for `registry <args…>`, shell-quoted."""
    if backend() == "local":
        return shlex.join([registry_binary(), *args])
    return shlex.join(["docker", "exec", settings.REGISTRY_CONTAINER, registry_binary(), *args])


def run_registry(args: list[str], on_line: Callable[[str], None] | None = None) -> Result:
    """Run `<registry binary> <args…>` next to the registry, within GC_TIME_LIMIT seconds. Each output line goes
    to `on_line` (in the caller's thread) while the command runs."""
    command = [registry_binary(), *args]
    if backend() == "docker":
        result = _docker_exec(command, on_line)
    elif backend() == "local":
        result = _local_run(command, on_line)
    else:
        raise BridgeUnavailable(f"GC_BRIDGE=none: the dashboard runs nothing; run by hand: {manual_command(args)}")
    if result.exit_code in (126, 127) and not result.timed_out:
        raise BridgeMisconfigured(
            f"{registry_binary()} cannot be run{_where()}: {result.output.strip()[-300:]} "
            "Check REGISTRY_BINARY (the registry binary's path as the registry sees it)."
        )
    return result


def disk_usage() -> Usage:
    """Size and use of REGISTRY_STORAGE_PATH's filesystem, and the bytes the storage tree takes on it."""
    path = settings.REGISTRY_STORAGE_PATH
    if backend() == "none":
        raise BridgeUnavailable(
            "GC_BRIDGE=none: the dashboard cannot measure the registry's storage; set GC_BRIDGE to docker or local."
        )
    run = _docker_exec if backend() == "docker" else _local_run
    df = run(["df", "-P", "-k", path], None)
    du = run(["du", "-s", "-k", path], None)
    for result in (df, du):
        if result.exit_code in (126, 127):
            raise BridgeMisconfigured(f"df and du are needed{_where()}: {result.output.strip()[-300:]}")
    try:
        total, used, free = _parse_df(df.output)
        storage = _parse_du(du.output, path)
    except (ValueError, IndexError):
        raise BridgeError(
            f"Cannot measure {path}{_where()} (df exited {df.exit_code}, du exited {du.exit_code}): "
            f"{(df.output + du.output).strip()[-300:]} Check REGISTRY_STORAGE_PATH."
        ) from None
    return Usage(total_bytes=total, used_bytes=used, free_bytes=free, storage_bytes=storage)


def can_restart() -> bool:
    """Whether restart_registry() can switch the registry to read-only and back (else a person does)."""
    return backend() == "docker" or (backend() == "local" and bool(settings.REGISTRY_PID_FILE))


def restart_registry(read_only: bool) -> None:
    """Switch the registry to read-only (storage.maintenance.readonly) or back, which needs a restart.

    docker: a container's environment cannot change in place, so the container is recreated with the same
    settings plus (or minus) REGISTRY_STORAGE_MAINTENANCE_READONLY; the old one is stopped and renamed, and
    removed only once the new one answers HTTP at REGISTRY_URL. On any failure the old one is put back (if the
    dashboard itself dies half way, the old one is left stopped as NAME-before-restart-ID).

    local with REGISTRY_PID_FILE: see _restart_supervised."""
    if not can_restart():
        raise BridgeUnavailable(_manual_restart_steps(read_only))
    if backend() == "local":
        _restart_supervised(read_only)
        return
    client = _docker_client()
    try:
        old = _container(client)
        _recreate(client, old, read_only)
    finally:
        client.close()


# --- Running commands -----------------------------------------------------------------------

_END = object()


def _pump(lines: Iterable[str], deadline: float, on_line: Callable[[str], None] | None) -> tuple[list[str], bool]:
    """Read `lines` in a thread until they end or `deadline` passes; hand each to `on_line` in this thread.
    Returns (the lines, whether they ended)."""
    found: queue.Queue = queue.Queue()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for line in lines:
                found.put(line)
        except Exception as exc:  # reported to the caller's thread below
            failure.append(exc)
        finally:
            found.put(_END)

    threading.Thread(target=read, daemon=True, name="gc-bridge-output").start()
    collected: list[str] = []
    while True:
        try:
            line = found.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return collected, False
        if line is _END:
            break
        collected.append(line)
        if on_line is not None:
            on_line(line)
    if failure:
        raise failure[0]
    return collected, True


def _split_lines(chunks: Iterable[tuple[bytes | None, bytes | None]]) -> Iterator[str]:
    """Whole lines from demuxed (stdout, stderr) chunks, each stream split on its own."""
    pending = [b"", b""]
    for chunk in chunks:
        for index, data in enumerate(chunk):
            if not data:
                continue
            *complete, pending[index] = (pending[index] + data).split(b"\n")
            for raw in complete:
                yield raw.decode(errors="replace").rstrip("\r")
    for rest in pending:
        if rest:
            yield rest.decode(errors="replace").rstrip("\r")


def _docker_exec(command: list[str], on_line: Callable[[str], None] | None) -> Result:
    limit = settings.GC_TIME_LIMIT
    client = _docker_client()
    try:
        container = _container(client, running=True)
        started = time.monotonic()
        with _docker_errors("run a command in the registry container"):
            exec_id = client.api.exec_create(container.id, ["timeout", str(limit), *command], tty=False)["Id"]
            stream = client.api.exec_start(exec_id, stream=True, demux=True, tty=False)
        try:
            lines, ended = _pump(_split_lines(stream), started + limit + GRACE_SECONDS, on_line)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise _unreachable(exc) from exc
        finally:
            with contextlib.suppress(Exception):
                stream.close()
        seconds = time.monotonic() - started
        if not ended:
            lines.append(
                f"(the bridge stopped waiting after {seconds:.0f} s; the command may still be running in "
                f"{settings.REGISTRY_CONTAINER}: is `timeout` in its image?)"
            )
            return Result(exit_code=None, output=_joined(lines), timed_out=True, seconds=seconds)
        exit_code = _exec_exit_code(client, exec_id)
        # `timeout` exits 124 (coreutils) or the killed command 143 (BusyBox): a failure past the limit is it.
        timed_out = exit_code != 0 and seconds >= limit
        if exit_code == 126 and any("executable file not found" in line for line in lines):
            raise BridgeMisconfigured(
                f"The container {settings.REGISTRY_CONTAINER} cannot run `timeout` ({lines[-1][:200]}); the bridge "
                "needs it to enforce GC_TIME_LIMIT. Check that REGISTRY_CONTAINER is a registry:2 container."
            )
        return Result(exit_code=exit_code, output=_joined(lines), timed_out=timed_out, seconds=seconds)
    finally:
        client.close()


def _exec_exit_code(client, exec_id: str) -> int | None:
    """The exit code, once the process is reaped (the output can end a moment before)."""
    deadline = time.monotonic() + 5
    while True:
        with _docker_errors("read the command's exit code"):
            state = client.api.exec_inspect(exec_id)
        if not state.get("Running") or time.monotonic() > deadline:
            return state.get("ExitCode")
        time.sleep(0.05)


def _local_run(command: list[str], on_line: Callable[[str], None] | None) -> Result:
    limit = settings.GC_TIME_LIMIT
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_child_env()
        )
    except OSError as exc:
        raise BridgeMisconfigured(
            f"Cannot run {command[0]} on this host: {exc.strerror}. "
            + ("Check REGISTRY_BINARY." if command[0] == registry_binary() else "")
        ) from exc
    lines_out = (raw.decode(errors="replace").rstrip("\r\n") for raw in process.stdout)
    try:
        lines, ended = _pump(lines_out, started + limit, on_line)
        if ended:  # the output ended; the process is about to
            process.wait(timeout=max(1.0, started + limit - time.monotonic()))
    except subprocess.TimeoutExpired:
        ended = False
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
    seconds = time.monotonic() - started
    if not ended:
        return Result(exit_code=None, output=_joined(lines), timed_out=True, seconds=seconds)
    return Result(exit_code=process.returncode, output=_joined(lines), timed_out=False, seconds=seconds)


def _child_env() -> dict[str, str]:
    """The registry binary's environment: PATH and the locale only. It reads every REGISTRY_* variable as a
    config override (the dashboard's REGISTRY_URL or REGISTRY_STORAGE_PATH would break its config), and the
    dashboard's secrets have no business in another program's environment."""
    return {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ") if name in os.environ}


def _joined(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _parse_df(output: str) -> tuple[int, int, int]:
    """total, used, available bytes from `df -P -k`: the numbers before the Capacity column's `N%` (names
    may hold spaces; error lines may come first)."""
    for line in reversed(output.splitlines()):
        fields = line.split()
        capacity = next((i for i, field in enumerate(fields) if i >= 4 and re.fullmatch(r"\d+%", field)), None)
        if capacity is not None:
            total, used, free = (int(value) * 1024 for value in fields[capacity - 3 : capacity])
            return total, used, free
    raise ValueError("no df line")


def _parse_du(output: str, path: str) -> int:
    """Bytes from `du -s -k` (the line for `path`; du may also print errors about unreadable folders)."""
    for line in output.splitlines():
        size, _, name = line.partition("\t")
        if name == path:
            return int(size) * 1024
    raise ValueError(f"no total for {path}")


def _where() -> str:
    return f" in the container {settings.REGISTRY_CONTAINER}" if backend() == "docker" else " on this host"


# --- A supervised local registry -------------------------------------------------------------

READ_ONLY_FLAG = "read-only"  # beside REGISTRY_PID_FILE: the supervisor starts the registry read-only while it exists


def _restart_supervised(read_only: bool) -> None:
    """Set or clear the read-only flag, stop the registry (SIGTERM), and wait for its supervisor to start a new
    one that answers at REGISTRY_URL. Only a process whose command line names REGISTRY_CONFIG_PATH is signalled:
    a stale pid file never stops anything else."""
    pid_file = Path(settings.REGISTRY_PID_FILE)
    flag = pid_file.with_name(READ_ONLY_FLAG)
    old = _registry_pid(pid_file)
    if old is None:
        raise BridgeError(
            f"No running registry in {pid_file} (REGISTRY_PID_FILE): is the registry's supervisor running?"
        )
    if read_only:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)
    with contextlib.suppress(ProcessLookupError):
        os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + READY_SECONDS
    while (new := _registry_pid(pid_file)) in (None, old):
        if time.monotonic() > deadline:
            raise BridgeError(
                f"The registry was stopped but not started again within {READY_SECONDS} s: is its supervisor "
                "running? (The run command starts it again.)"
            )
        time.sleep(0.1)
    try:
        wait_until_answers(settings.REGISTRY_URL, max(deadline - time.monotonic(), 1.0))
    except RegistryError as exc:
        raise BridgeError(f"The registry (pid {new}) did not answer at {settings.REGISTRY_URL}: {exc}") from None


def _registry_pid(pid_file: Path) -> int | None:
    """The pid in the file if that process is running the registry with REGISTRY_CONFIG_PATH, else None."""
    try:
        pid = int(pid_file.read_text().strip())
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if os.fsencode(settings.REGISTRY_CONFIG_PATH) in command_line else None


# --- Docker Engine --------------------------------------------------------------------------


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or f"{DEFAULT_DOCKER_HOST} (the default)"


def _unreachable(exc: BaseException) -> BridgeMisconfigured:
    """A message for a Docker Engine that cannot be used at all (no socket, no permission, nothing listening)."""
    text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}"
    where = _docker_host()
    if "Permission denied" in text or "PermissionError" in text:
        reason = (
            f"permission denied on the Docker socket {where}: the dashboard's user may not use it. Give it access "
            "(the socket's group, or a socket proxy that allows exec) or set DOCKER_HOST to a socket it may use."
        )
    elif "No such file or directory" in text or "FileNotFoundError" in text:
        reason = (
            f"there is no Docker socket at {where}. Check that the Docker Engine runs there and that its socket is "
            "mounted into the dashboard's container, or set DOCKER_HOST."
        )
    elif "Connection refused" in text:
        reason = f"nothing answers at {where}. Check that the Docker Engine runs, or set DOCKER_HOST."
    else:
        reason = f"{where} does not answer as a Docker Engine ({str(exc)[:300]}). Check DOCKER_HOST."
    return BridgeMisconfigured(f"GC_BRIDGE=docker cannot reach the Docker Engine: {reason}")


@contextlib.contextmanager
def _docker_errors(doing: str) -> Iterator[None]:
    """SDK and transport exceptions as BridgeErrors: none escapes this module raw."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise BridgeError(f"The Docker Engine would not {doing}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise _unreachable(exc) from exc


def _docker_client():
    if backend() != "docker":
        raise BridgeUnavailable(f"GC_BRIDGE={backend()}: the dashboard does not use the Docker Engine.")
    try:
        return docker.from_env()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise _unreachable(exc) from exc


def _container(client, running: bool = False):
    name = settings.REGISTRY_CONTAINER
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        raise BridgeMisconfigured(
            f"There is no container named {name!r} on the Docker Engine at {_docker_host()}. Set "
            "REGISTRY_CONTAINER to the registry container's name (see `docker ps`)."
        ) from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise _unreachable(exc) from exc
    if running and container.status != "running":
        raise BridgeError(f"The registry container {name} is {container.status}, not running: start it first.")
    return container


def _recreate(client, old, read_only: bool) -> None:
    name = settings.REGISTRY_CONTAINER
    attrs = old.attrs
    if attrs["HostConfig"].get("AutoRemove"):
        raise BridgeMisconfigured(
            f"The registry container {name} was started with --rm: stopping it would delete it (and an anonymous "
            "volume with its data). Run it without --rm, with a named volume or a bind mount for its storage."
        )
    config = _clone_config(client, attrs, read_only)
    backup = f"{name}-before-restart-{attrs['Id'][:12]}"
    with _docker_errors("stop the registry container"):
        old.stop(timeout=STOP_SECONDS)
    new_id = None
    try:
        with _docker_errors("recreate the registry container"):
            old.rename(backup)
            new_id = client.api.create_container_from_config(config, name=name)["Id"]
            for network, endpoint in _other_networks(attrs).items():
                client.api.connect_container_to_network(new_id, network, aliases=endpoint.get("Aliases"))
            client.api.start(new_id)
        _wait_until_serving(client, new_id)
    except BridgeError as exc:
        problems = _put_back(client, old, name, new_id)
        raise BridgeError(
            f"Restarting {name} {'read-only' if read_only else 'writable'} failed: {exc.message} "
            + (f"Putting the old container back failed too: {problems}" if problems else "The old one runs again.")
        ) from exc
    with _docker_errors("remove the old registry container"):
        old.remove(v=False)  # its volumes now belong to the new one


def _put_back(client, old, name: str, new_id: str | None) -> str:
    """Undo a failed recreate; returns what went wrong doing so ("" when all is back)."""

    def remove_new() -> None:
        if new_id:
            client.api.remove_container(new_id, force=True)

    def rename_old() -> None:
        old.reload()
        if old.name != name:
            old.rename(name)

    problems = []
    for step in (remove_new, rename_old, old.start, lambda: _wait_until_serving(client, old.id)):
        try:
            step()
        except (docker.errors.DockerException, requests.RequestException, BridgeError) as exc:
            problems.append(str(getattr(exc, "message", exc)))
    return "; ".join(problems)


def _clone_config(client, attrs: dict, read_only: bool) -> dict:
    """The create request that gives the same container as `attrs` (inspect's answer), with the read-only
    variable set or removed."""
    config = copy.deepcopy(attrs["Config"])
    host_config = copy.deepcopy(attrs["HostConfig"])
    env = [item for item in config.get("Env") or [] if not item.startswith(f"{READONLY_ENV}=")]
    config["Env"] = [*env, f"{READONLY_ENV}={READONLY_VALUE}"] if read_only else env
    # The image by the name it was run with, unless that name now means another image (then its id).
    try:
        same_image = client.images.get(config["Image"]).id == attrs["Image"]
    except (docker.errors.DockerException, requests.RequestException):
        same_image = False
    if not same_image:
        config["Image"] = attrs["Image"]
    # Anonymous volumes (registry:2 declares VOLUME /var/lib/registry) would come back empty: reuse them by name.
    mounted = {bind.split(":")[1] for bind in host_config.get("Binds") or []}
    mounted |= {mount.get("Target") for mount in host_config.get("Mounts") or []}
    volumes = [
        f"{mount['Name']}:{mount['Destination']}{'' if mount.get('RW', True) else ':ro'}"
        for mount in attrs.get("Mounts") or []
        if mount.get("Type") == "volume" and mount["Destination"] not in mounted
    ]
    host_config["Binds"] = [*(host_config.get("Binds") or []), *volumes] or None
    mode = host_config.get("NetworkMode") or "default"
    if mode == "host" or mode.startswith("container:") or config.get("Hostname") == attrs["Id"][:12]:
        config.pop("Hostname", None)  # the host's name, or one derived from the old container's id
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    if mode in networks and mode not in ("host", "none", "bridge", "default"):
        config["NetworkingConfig"] = {"EndpointsConfig": {mode: _endpoint(networks[mode], attrs["Id"])}}
    config["HostConfig"] = host_config
    return config


def _endpoint(network: dict, container_id: str) -> dict:
    aliases = [alias for alias in network.get("Aliases") or [] if alias != container_id[:12]]
    return {"Aliases": aliases or None, "IPAMConfig": network.get("IPAMConfig"), "Links": network.get("Links")}


def _other_networks(attrs: dict) -> dict[str, dict]:
    """Networks the container was connected to besides its NetworkMode (a create names only one)."""
    mode = attrs["HostConfig"].get("NetworkMode") or "default"
    if mode in ("host", "none") or mode.startswith("container:"):
        return {}
    primary = "bridge" if mode == "default" else mode
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    return {name: _endpoint(network, attrs["Id"]) for name, network in networks.items() if name != primary}


def _wait_until_serving(client, container_id: str) -> None:
    """Until REGISTRY_URL answers HTTP (any status); fails early if the container stops."""

    def alive() -> None:
        with _docker_errors("inspect the registry container"):
            state = client.api.inspect_container(container_id)["State"]
        if state.get("Status") in ("exited", "dead"):
            with _docker_errors("read the registry container's log"):
                log = client.api.logs(container_id, tail=5).decode(errors="replace").strip()
            raise BridgeError(f"The registry container exited with code {state.get('ExitCode')}: {log[-500:]}")

    verify = settings.REGISTRY_CA_BUNDLE or settings.REGISTRY_VERIFY_TLS
    try:
        wait_until_answers(settings.REGISTRY_URL, READY_SECONDS, verify=verify, alive=alive)
    except RegistryError as exc:
        raise BridgeError(
            f"The registry did not answer at REGISTRY_URL={settings.REGISTRY_URL} within {READY_SECONDS} s "
            f"({exc}). Check REGISTRY_URL."
        ) from None


def _manual_restart_steps(read_only: bool) -> str:
    config = settings.REGISTRY_CONFIG_PATH
    if read_only:
        change = (
            f"set storage.maintenance.readonly.enabled: true in {config} (or start it with "
            f"{READONLY_ENV}='{READONLY_VALUE}')"
        )
    else:
        change = f"set storage.maintenance.readonly.enabled back to false in {config} (or drop {READONLY_ENV})"
    return (
        f"restart the registry yourself (GC_BRIDGE={backend()} cannot manage its process): stop it, {change}, and "
        "start it again; check that it answers before going on."
    )
