"""The README's first command: with no REGISTRY_URL it starts a registry, fills it and serves the dashboard."""

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
import requests

from devtools.images import ImageSpec, push_image
from devtools.management.commands.rundashboard import Command
from registry.client import RegistryClient
from tests.demo import indexed_tags, post_form, sign_in, start_demo, wait_for_line, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.registry, pytest.mark.slow]  # the command starts a registry of its own


@pytest.fixture
def run_dashboard(tmp_path):
    demos = []

    def start(**env_changes):
        demos.append(start_demo(tmp_path, **env_changes))
        return demos[-1].process, demos[-1].base, demos[-1].registry_port

    yield start
    for demo in demos:
        demo.stop()


def test_the_run_command_starts_a_demo_registry_and_the_dashboard(run_dashboard, tmp_path):
    process, base, registry_port = run_dashboard()
    output = wait_for_line(process, r"Dashboard: http://")
    password = re.search(r"Sign in as admin with the password (\S+)", output).group(1)
    assert f"docker login 127.0.0.1:{registry_port}" in output
    assert password not in (tmp_path / "registry" / "htpasswd").read_text()  # only its bcrypt hash
    for private in ("", "registry", "registry/data"):
        assert (tmp_path / private).stat().st_mode & 0o777 == 0o700, private
    for private in (
        "db.sqlite3",
        "secret_key",
        "registry/config.yml",
        "registry/htpasswd",
        "registry/dashboard.password",
    ):
        assert (tmp_path / private).stat().st_mode & 0o777 == 0o600, private

    session = sign_in(base, "admin", password)
    home = session.get(f"{base}/", timeout=10)
    assert home.status_code == 200 and "Reachable" in home.text
    repositories = session.get(f"{base}/repositories/", timeout=10).text
    for name in ("demo/hello-web", "demo/api", "tools/debug"):
        assert name in repositories
    assert 'badge badge-purple">Admin' in home.text

    # The task worker and the scheduler fill the index; the registry's notifications keep it fresh.
    database = tmp_path / "db.sqlite3"
    wait_until(lambda: indexed_tags(database) >= {"demo/hello-web:latest", "demo/api:2.0", "tools/debug:v0.3.1"})
    service = RegistryClient(
        f"http://127.0.0.1:{registry_port}", "dashboard", (tmp_path / "registry" / "dashboard.password").read_text()
    )
    pushed = time.monotonic()
    push_image(service, "demo/hello-web", "1.3", ImageSpec(layers=[{"index.html": "1.3"}]))
    wait_until(lambda: "demo/hello-web:1.3" in indexed_tags(database))
    print(f"push to index: {time.monotonic() - pushed:.2f} s")


def children(pid: int) -> dict[int, str]:
    """The child processes of `pid`, by pid, with their command lines."""
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):  # it ended meanwhile
            found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def test_a_killed_task_worker_or_scheduler_is_started_again(run_dashboard, tmp_path):
    process, _, registry_port = run_dashboard()
    wait_for_line(process, r"Dashboard: http://")

    def running(marker: str) -> list[int]:
        return [pid for pid, command in children(process.pid).items() if marker in command]

    for name, marker in [
        ("task worker", " db_worker --queue-name default "),
        ("notifications worker", " db_worker --queue-name notifications "),
        ("notifications listener", " registry_ui.wsgi:notifications_listener "),
        ("scheduler", " sync_registry --every "),
    ]:
        (old,) = running(marker)
        os.kill(old, signal.SIGKILL)
        wait_for_line(process, rf"The {name} stopped \(exit code -9\); started it again", seconds=20)
        # Its replacement (just forked, it may not have its own command line yet).
        wait_until(lambda marker=marker, old=old: running(marker) not in ([], [old]))
    # The new worker does the work: a push reaches the index through its notification task.
    database = tmp_path / "db.sqlite3"
    service = RegistryClient(
        f"http://127.0.0.1:{registry_port}", "dashboard", (tmp_path / "registry" / "dashboard.password").read_text()
    )
    push_image(service, "demo/hello-web", "after-restart", ImageSpec(layers=[{"index.html": "again"}]))
    wait_until(lambda: "demo/hello-web:after-restart" in indexed_tags(database))


def test_notifications_are_answered_while_every_page_thread_is_busy(run_dashboard, tmp_path):
    """Under page load the registry's notifications must not wait behind page requests (it gives up after 2 s,
    backs off, and its backlog lives only in its memory)."""
    process, base, _ = run_dashboard()
    wait_for_line(process, r"Dashboard: http://")
    endpoint = re.search(r"url: (\S+)", (tmp_path / "registry" / "config.yml").read_text()).group(1)
    secret = (tmp_path / "registry" / "notifications.secret").read_text()
    host, port = base.removeprefix("http://").split(":")
    # A request whose headers never end holds a page thread until gunicorn's timeout. Which process takes a
    # connection is up to the kernel (and a process still starting takes none), so hold more until none is left.
    held = []
    try:
        for _ in range(20):
            for _ in range(8):
                held.append(socket.create_connection((host, int(port))))
                held[-1].sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            try:
                requests.get(f"{base}/health/", timeout=1)
            except requests.Timeout:
                break  # the page server has no thread left
        else:
            pytest.fail(f"{len(held)} held requests left the page server answering")
        began = time.monotonic()
        answer = requests.post(
            endpoint,
            data=b'{"events": []}',
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - began < 2  # the registry's own timeout: behind a page thread it would be minutes
    finally:
        for connection in held:
            connection.close()
    # The listener takes nothing but the registry's notifications (and a health check).
    listener = endpoint.removesuffix("/notifications/")
    assert requests.get(f"{listener}/health/", timeout=5).status_code == 200
    assert requests.get(f"{listener}/login/", timeout=5).status_code == 404


def test_a_second_start_keeps_the_data_and_prints_no_password(run_dashboard, tmp_path):
    process, _, _ = run_dashboard()
    wait_for_line(process, r"Dashboard: http://")
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)
    process, _, _ = run_dashboard()
    output = wait_for_line(process, r"Dashboard: http://")
    assert "the password was printed at the first start" in output
    assert "Pushing demo images" not in output


def test_with_registry_url_set_it_serves_only_the_dashboard(run_dashboard, registry, tmp_path):
    process, base, _ = run_dashboard(REGISTRY_URL=registry.url)
    output = wait_for_line(process, r"Dashboard: http://")
    assert "Demo registry" not in output
    assert not (tmp_path / "registry").exists()


def test_a_port_in_use_is_refused_with_a_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "rundashboard", "--bind", f"127.0.0.1:{port}"],
            env={**os.environ, "DATA_DIR": str(tmp_path)},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr


def gc_runs(database) -> list[tuple]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute(
            "SELECT id, dry_run, status, used_before, used_after, error FROM gc_gcrun ORDER BY id"
        ).fetchall()


def test_garbage_collection_works_in_the_demo_out_of_the_box(run_dashboard, tmp_path):
    """The run command owns its registry: a collection switches it read-only, collects, and puts it back."""
    process, base, registry_port = run_dashboard()
    output = wait_for_line(process, r"Dashboard: http://")
    session = sign_in(base, "admin", re.search(r"Sign in as admin with the password (\S+)", output).group(1))
    service = RegistryClient(
        f"http://127.0.0.1:{registry_port}", "dashboard", (tmp_path / "registry" / "dashboard.password").read_text()
    )
    garbage = push_image(service, "demo/old", "1", ImageSpec(layers=[{"big": os.urandom(200_000).hex()}]))
    service.delete_manifest("demo/old", garbage.digest)
    database = tmp_path / "db.sqlite3"

    post_form(session, base, "/gc/", "/gc/dry-run/")
    wait_until(lambda: gc_runs(database)[-1][2] in ("done", "failed"), seconds=60)
    preview_id, _, status, *_ = gc_runs(database)[-1]
    assert status == "done", gc_runs(database)
    page = f"/gc/{preview_id}/"
    assert "make the registry read-only" in session.get(f"{base}{page}", timeout=10).text
    post_form(session, base, page, f"/gc/{preview_id}/collect/", confirm="yes")
    wait_until(lambda: len(gc_runs(database)) == 2 and gc_runs(database)[-1][2] in ("done", "failed"), seconds=90)
    _, dry_run, status, before, after, error = gc_runs(database)[-1]
    assert (dry_run, status, error) == (0, "done", "")
    assert before - after >= 150_000  # the deleted image's layer (200 KB of random bytes), gone for good
    wait_for_line(process, r"Demo registry started again read-only", seconds=30)
    # Writable again: a push works.
    push_image(service, "demo/old", "2", ImageSpec(layers=[{"index.html": "after"}]))


class StoppedRegistry:
    """The demo registry as the run command's loop finds it after the bridge stopped it. Its start() stands for a
    start whose process exits before the loop's own wait for it ends; `switch` says whether the bridge, which saw
    it answer first, switched the read-only flag back meanwhile (a short collection, done)."""

    def __init__(self, root: Path, switch: bool) -> None:
        self.root, self.switch, self.readonly = root, switch, False
        self.process = subprocess.Popen(["true"])
        self.process.wait()

    def start(self, command, log) -> None:
        if self.switch:
            (self.root / "read-only").unlink()
        raise RuntimeError("The registry exited with code 0; see its log.")


@pytest.mark.parametrize("switched_back", [True, False])
def test_a_registry_the_bridge_stopped_again_while_it_was_being_waited_for_is_not_a_failed_start(
    tmp_path, switched_back
):
    (tmp_path / "read-only").touch()  # the bridge's switch to read-only
    out, err = StringIO(), StringIO()
    command = Command(stdout=out, stderr=err)
    command.registry_command = ["docker-registry", "serve"]
    command.restart_registry_if_stopped(StoppedRegistry(tmp_path, switched_back))
    if switched_back:
        assert (out.getvalue().strip(), err.getvalue()) == ("Demo registry started again read-only.", "")
    else:
        assert out.getvalue() == "" and "did not start again" in err.getvalue()
