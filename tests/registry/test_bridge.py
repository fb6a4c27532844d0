"""The GC bridge against a real Docker Engine and real registry containers (tests/docker_engine.py), and against
the registry binary on this host."""

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.images import ImageSpec, layer, push_image
from devtools.localregistry import free_port, port_is_free
from registry import bridge
from registry.bridge import BridgeError, BridgeMisconfigured, BridgeUnavailable
from registry.client import ReadOnly, sha256_digest
from tests.docker_engine import TEST_LABEL, registry_config, remove_labelled, start_registry

CONFIG = "/etc/docker/registry/config.yml"
SUMMARY = re.compile(r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion$", re.MULTILINE)


def image(name: str, size: int = 1000) -> ImageSpec:
    """An image with a shared base layer and one layer of `size` incompressible bytes of its own."""
    return ImageSpec(layers=[{"etc/os-release": "ID=gc\n"}, {f"app/{name}": random.Random(name).randbytes(size)}])


def host_du_bytes(path: Path) -> int:
    return int(subprocess.run(["du", "-s", "-k", str(path)], capture_output=True, text=True).stdout.split()[0]) * 1024


@pytest.fixture
def docker_bridge(settings, monkeypatch, dockerd, registry_container):
    """The dashboard's bridge pointed at the test's own registry container."""
    monkeypatch.setenv("DOCKER_HOST", dockerd)
    settings.GC_BRIDGE = "docker"
    settings.REGISTRY_CONTAINER = registry_container.name
    settings.REGISTRY_URL = registry_container.url
    settings.REGISTRY_BINARY = ""
    settings.REGISTRY_STORAGE_PATH = "/var/lib/registry"
    settings.GC_TIME_LIMIT = 60
    return registry_container


def slow_config(folder: Path, name: str = "slow.yml") -> tuple[str, int]:
    """A registry config on another free port that logs at info level: `serve` with it never ends."""
    port = free_port()
    (folder / name).write_text(registry_config(port).replace("level: warn", "level: info"))
    return name, port


# --- docker backend -------------------------------------------------------------------------


def test_docker_runs_the_registry_binary_in_the_container(docker_bridge):
    result = bridge.run_registry(["--version"])
    assert result.exit_code == 0 and not result.timed_out
    assert re.fullmatch(r"/bin/registry github\.com/docker/distribution 2\.8\.\d\S*\n", result.output)


def test_a_gc_dry_run_in_the_container_lists_what_a_deleted_image_leaves_behind(docker_bridge):
    client = docker_bridge.client()
    push_image(client, "gc/app", "keep", image("keep"))
    gone = push_image(client, "gc/app", "gone", image("gone"))
    client.delete_manifest("gc/app", gone.digest)
    lines = []

    result = bridge.run_registry(["garbage-collect", "--dry-run", CONFIG], on_line=lines.append)

    assert result.exit_code == 0 and not result.timed_out
    assert result.output == "".join(f"{line}\n" for line in lines)
    marked, eligible, _ = map(int, SUMMARY.search(result.output).groups())
    assert (marked, eligible) == (4, 3)  # keep: manifest, config, 2 layers; gone: manifest, config, own layer
    gone_layer = sha256_digest(layer(image("gone").layers[1]))
    keep_layer = sha256_digest(layer(image("keep").layers[1]))
    assert f"blob eligible for deletion: {gone_layer}" in lines
    assert f"blob eligible for deletion: {gone.digest}" in lines
    assert f"gc/app: marking blob {keep_layer}" in lines
    blob = docker_bridge.data / "docker/registry/v2/blobs/sha256" / gone_layer[7:9] / gone_layer[7:] / "data"
    assert blob.stat().st_size == len(layer(image("gone").layers[1]))  # a dry run deletes nothing


def test_gc_of_an_empty_registry_exits_1_with_path_not_found(docker_bridge):
    result = bridge.run_registry(["garbage-collect", "--dry-run", CONFIG])
    assert result.exit_code == 1 and not result.timed_out
    assert "Path not found: /docker/registry/v2/repositories" in result.output


def test_a_command_past_the_time_limit_is_killed_in_the_container(docker_bridge, settings, docker_client):
    settings.GC_TIME_LIMIT = 1
    name, port = slow_config(docker_bridge.etc)
    arrivals = []

    result = bridge.run_registry(["serve", f"/etc/docker/registry/{name}"], on_line=arrivals.append)

    assert result.timed_out and result.exit_code == 124
    assert 1 <= result.seconds < 5
    assert any(f"listening on 127.0.0.1:{port}" in line for line in arrivals)
    assert port_is_free("127.0.0.1", port)
    container = docker_client.containers.get(docker_bridge.name)
    top = container.top()
    pids = [int(process[top["Titles"].index("PID")]) for process in top["Processes"]]
    assert pids == [container.attrs["State"]["Pid"]]  # only the registry the container runs


def test_output_lines_reach_on_line_while_the_command_runs(docker_bridge, settings):
    settings.GC_TIME_LIMIT = 2
    name, _ = slow_config(docker_bridge.etc)
    started = time.monotonic()
    arrivals = []

    result = bridge.run_registry(
        ["serve", f"/etc/docker/registry/{name}"], on_line=lambda line: arrivals.append(time.monotonic() - started)
    )

    assert result.timed_out and arrivals
    assert arrivals[0] < 1.5 < result.seconds  # the first line came long before the command was killed


def test_disk_usage_measures_the_storage_filesystem_and_tree(docker_bridge):
    before = bridge.disk_usage()
    push_image(docker_bridge.client(), "disk/usage", "1", image("big", size=3_000_000))
    after = bridge.disk_usage()

    host = shutil.disk_usage(docker_bridge.data)
    assert after.total_bytes == host.total
    assert 0 < after.used_bytes <= after.total_bytes and 0 < after.free_bytes <= after.total_bytes
    assert after.storage_bytes == host_du_bytes(docker_bridge.data)
    assert 3_000_000 <= after.storage_bytes - before.storage_bytes < 3_200_000


def test_read_only_restart_refuses_uploads_keeps_pulls_and_switches_back(docker_bridge, docker_client):
    client = docker_bridge.client()
    pushed = push_image(client, "ro/app", "1", image("ro"))

    bridge.restart_registry(read_only=True)

    with pytest.raises(ReadOnly) as refused:
        client.request("POST", "/v2/ro/app/blobs/uploads/")
    assert refused.value.status == 405
    assert client.manifest("ro/app", "1").digest == pushed.digest
    container = docker_client.containers.get(docker_bridge.name)
    assert 'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}' in container.attrs["Config"]["Env"]

    bridge.restart_registry(read_only=False)

    assert client.request("POST", "/v2/ro/app/blobs/uploads/").status_code == 202
    assert client.manifest("ro/app", "1").digest == pushed.digest
    push_image(client, "ro/app", "2", image("ro-2"))
    containers = docker_client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={docker_bridge.label}"})
    assert [(found.name, found.status) for found in containers] == [(docker_bridge.name, "running")]
    assert not any(item.startswith("REGISTRY_STORAGE_") for item in containers[0].attrs["Config"]["Env"] or [])
    assert containers[0].attrs["HostConfig"]["NetworkMode"] == "host"
    assert sorted(containers[0].attrs["HostConfig"]["Binds"]) == sorted(
        container.attrs["HostConfig"]["Binds"]
    )  # the same mounts


def test_recreating_keeps_data_in_the_anonymous_volume_registry_2_declares(
    settings, monkeypatch, dockerd, registry_container_on_volume
):
    found = registry_container_on_volume
    monkeypatch.setenv("DOCKER_HOST", dockerd)
    settings.GC_BRIDGE, settings.REGISTRY_CONTAINER, settings.REGISTRY_URL = "docker", found.name, found.url
    pushed = push_image(found.client(), "vol/app", "1", image("vol"))

    bridge.restart_registry(read_only=True)
    bridge.restart_registry(read_only=False)

    assert found.client().manifest("vol/app", "1").digest == pushed.digest


def test_a_failed_restart_puts_the_old_container_back(docker_bridge, docker_client, monkeypatch):
    """The new container is made to exit at once (a config path that does not exist): a fault a healthy
    registry does not produce on its own."""
    old = docker_client.containers.get(docker_bridge.name)
    clone = bridge._clone_config
    monkeypatch.setattr(bridge, "_clone_config", lambda *args: {**clone(*args), "Cmd": ["serve", "/no/such.yml"]})

    with pytest.raises(BridgeError) as failed:
        bridge.restart_registry(read_only=True)

    assert "exited with code 1" in failed.value.message and "The old one runs again." in failed.value.message
    containers = docker_client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={docker_bridge.label}"})
    assert [(found.id, found.name, found.status) for found in containers] == [(old.id, old.name, "running")]
    assert docker_bridge.client().request("POST", "/v2/back/app/blobs/uploads/").status_code == 202


def test_switching_back_to_writable_restarts_the_registry_and_keeps_its_data(docker_bridge, docker_client):
    pushed = push_image(docker_bridge.client(), "restart/app", "1", image("restart"))
    started = docker_client.containers.get(docker_bridge.name).attrs["State"]["StartedAt"]

    bridge.restart_registry(read_only=False)

    container = docker_client.containers.get(docker_bridge.name)
    assert container.attrs["State"]["StartedAt"] != started and container.status == "running"
    assert docker_bridge.client().manifest("restart/app", "1").digest == pushed.digest


def test_a_container_started_with_rm_is_not_recreated(
    settings, monkeypatch, dockerd, docker_client, registry_image, tmp_path
):
    """Stopping it would delete it with its anonymous volume: the bridge refuses before touching it."""
    label = "rm-" + os.urandom(4).hex()
    try:
        found = start_registry(docker_client, registry_image, tmp_path, label, bind_data=False, auto_remove=True)
        monkeypatch.setenv("DOCKER_HOST", dockerd)
        settings.GC_BRIDGE, settings.REGISTRY_CONTAINER, settings.REGISTRY_URL = "docker", found.name, found.url
        with pytest.raises(BridgeMisconfigured, match="was started with --rm"):
            bridge.restart_registry(read_only=True)
        assert docker_client.containers.get(found.name).status == "running"
    finally:
        remove_labelled(docker_client, label)


# --- Misconfiguration -----------------------------------------------------------------------


def test_a_missing_container_names_the_setting(docker_bridge, settings):
    settings.REGISTRY_CONTAINER = "no-such-registry"
    with pytest.raises(BridgeMisconfigured) as failed:
        bridge.run_registry(["--version"])
    assert "'no-such-registry'" in failed.value.message and "REGISTRY_CONTAINER" in failed.value.message


def test_a_missing_binary_in_the_container_names_the_setting(docker_bridge, settings):
    settings.REGISTRY_BINARY = "/usr/local/bin/registry"
    with pytest.raises(BridgeMisconfigured) as failed:
        bridge.run_registry(["--version"])
    assert "/usr/local/bin/registry" in failed.value.message and "REGISTRY_BINARY" in failed.value.message


def test_a_missing_docker_socket_names_the_setting(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    settings.GC_BRIDGE = "docker"
    calls = (lambda: bridge.run_registry(["--version"]), bridge.disk_usage, lambda: bridge.restart_registry(False))
    for call in calls:
        with pytest.raises(BridgeMisconfigured) as failed:
            call()
        assert f"no Docker socket at unix://{tmp_path}/docker.sock" in failed.value.message
        assert "DOCKER_HOST" in failed.value.message


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_a_socket_the_dashboard_may_not_use_names_the_setting(tmp_path):
    """A real EACCES: a unix socket with mode 000, used from a process that runs as root without the
    capabilities that let root ignore file modes (root's owner bits are then just as empty)."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        path.chmod(0)
        code = (
            "import django; django.setup()\n"
            "from registry import bridge\n"
            "try: bridge.run_registry(['--version'])\n"
            "except bridge.BridgeMisconfigured as exc: print(exc.message)\n"
        )
        result = subprocess.run(
            ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code],
            env={**os.environ, "GC_BRIDGE": "docker", "DOCKER_HOST": f"unix://{path}", "SECRET_KEY": "x"},
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
        )
    assert result.returncode == 0, result.stderr
    assert f"permission denied on the Docker socket unix://{path}" in result.stdout
    assert "DOCKER_HOST" in result.stdout


def test_without_a_bridge_nothing_runs_and_the_command_is_shown(settings):
    settings.GC_BRIDGE, settings.REGISTRY_CONTAINER, settings.REGISTRY_BINARY = "none", "my registry", ""
    expected = "docker exec 'my registry' /bin/registry garbage-collect /etc/docker/registry/config.yml"
    assert bridge.manual_command(["garbage-collect", CONFIG]) == expected
    with pytest.raises(BridgeUnavailable) as failed:
        bridge.run_registry(["garbage-collect", CONFIG])
    assert expected in failed.value.message and "GC_BRIDGE=none" in failed.value.message
    for call in (bridge.disk_usage, lambda: bridge.restart_registry(True), lambda: bridge.restart_registry(False)):
        with pytest.raises(BridgeUnavailable):
            call()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("GC_BRIDGE", "kubernetes", "must be docker, local or none"), ("GC_TIME_LIMIT", "0", "must be at least 1")],
)
def test_bad_gc_settings_stop_with_a_message_naming_the_variable(tmp_path, name, value, message):
    result = subprocess.run(
        [sys.executable, "-c", "import registry_ui.settings"],
        env={**os.environ, "DATA_DIR": str(tmp_path), name: value},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
    )
    assert "ImproperlyConfigured" in result.stderr and f"{name}=" in result.stderr and message in result.stderr


# --- local backend --------------------------------------------------------------------------


@pytest.fixture
def local_bridge(settings, registry):
    settings.GC_BRIDGE, settings.REGISTRY_BINARY, settings.GC_TIME_LIMIT = "local", "", 60
    settings.REGISTRY_STORAGE_PATH = str(registry.root / "data")
    return registry


def test_local_gc_dry_run_marks_the_session_registry(local_bridge, registry_fixtures):
    lines = []
    result = bridge.run_registry(["garbage-collect", "--dry-run", str(local_bridge.config_path)], on_line=lines.append)
    assert result.exit_code == 0 and not result.timed_out
    assert f"shop/api: marking manifest {registry_fixtures.api_digest} " in result.output
    assert SUMMARY.search(result.output) and lines == result.output.splitlines()


def test_local_disk_usage_measures_the_registry_data(local_bridge):
    usage = bridge.disk_usage()
    data = local_bridge.root / "data"
    assert usage.storage_bytes == host_du_bytes(data) > 0
    assert usage.total_bytes == shutil.disk_usage(data).total and usage.used_bytes <= usage.total_bytes


def test_a_storage_path_that_does_not_exist_names_the_setting(local_bridge, settings, tmp_path):
    settings.REGISTRY_STORAGE_PATH = str(tmp_path / "nowhere")
    with pytest.raises(BridgeError) as failed:
        bridge.disk_usage()
    assert "No such file or directory" in failed.value.message and "REGISTRY_STORAGE_PATH" in failed.value.message


def test_local_commands_are_killed_at_the_time_limit(local_bridge, settings, tmp_path):
    settings.GC_TIME_LIMIT = 1
    port = free_port()
    (tmp_path / "data").mkdir()
    config = tmp_path / "slow.yml"
    config.write_text(
        registry_config(port)
        .replace("/var/lib/registry", str(tmp_path / "data"))
        .replace("/etc/docker/registry/htpasswd", str(local_bridge.htpasswd))
    )
    result = bridge.run_registry(["serve", str(config)])
    assert result.timed_out and result.exit_code is None and 1 <= result.seconds < 3
    assert port_is_free("127.0.0.1", port)


def test_a_missing_local_binary_names_the_setting(local_bridge, settings):
    settings.REGISTRY_BINARY = "/opt/nowhere/registry"
    with pytest.raises(BridgeMisconfigured, match="REGISTRY_BINARY"):
        bridge.run_registry(["--version"])


def test_the_local_backend_cannot_restart_the_registry(local_bridge):
    with pytest.raises(BridgeUnavailable) as failed:
        bridge.restart_registry(read_only=True)
    assert failed.value.message.startswith("restart the registry yourself")
    assert "storage.maintenance.readonly.enabled: true" in failed.value.message


def test_docker_sdk_module_is_only_imported_by_the_bridge():
    users = [
        path
        for path in Path(bridge.__file__).parent.rglob("*.py")
        if re.search(r"^\s*(import docker|from docker)", path.read_text(), re.MULTILINE)
    ]
    assert users == [Path(bridge.__file__)]


def test_the_local_binary_does_not_see_the_dashboards_environment(local_bridge, monkeypatch):
    """The registry reads every REGISTRY_* variable as a config override: the dashboard's own settings (set in
    its environment, as `make run` and deployments do) must not reach it, and nor must its secrets."""
    monkeypatch.setenv("REGISTRY_STORAGE_PATH", "/var/lib/registry")
    monkeypatch.setenv("REGISTRY_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("REGISTRY_PASSWORD", "service-secret")
    result = bridge.run_registry(["garbage-collect", "--dry-run", str(local_bridge.config_path)])
    assert result.exit_code == 0 and SUMMARY.search(result.output), result.output
    assert "Ignoring unrecognized environment variable" not in result.output
