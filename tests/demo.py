"""The README's first command, `manage.py rundashboard` (what `make run` starts), run for a test: its own registry,
task workers, scheduler and gunicorn, in a data folder of the test's, reached over HTTP as a user would."""

import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from devtools.localregistry import free_port
from registry.client import RegistryClient
from tests.conftest import process_environment

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Demo:
    """A running `rundashboard`: its process (output on a pipe), the dashboard's address and its registry's port."""

    process: subprocess.Popen
    base: str
    registry_port: int
    data_dir: Path

    def service_client(self) -> RegistryClient:
        """The registry as the dashboard's own account reaches it (it may push and delete)."""
        password = (self.data_dir / "registry" / "dashboard.password").read_text()
        return RegistryClient(f"http://127.0.0.1:{self.registry_port}", "dashboard", password)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:  # a machine this busy: end it anyway
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start_demo(data_dir: Path, **env_changes: str) -> Demo:
    env = process_environment(DATA_DIR=str(data_dir), **env_changes)
    web_port, registry_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "rundashboard",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--registry-port",
            str(registry_port),
            "--notifications-port",
            str(free_port()),
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output_lines(process)
    return Demo(process, f"http://127.0.0.1:{web_port}", registry_port, data_dir)


def output_lines(process: subprocess.Popen) -> queue.Queue:
    """The command's output, line by line (None once it ends), read all along by a thread of its own: a wait for a
    line keeps its deadline when the command goes quiet, and the pipe never fills (gunicorn and the workers log
    every request; a full pipe would stop them)."""
    if not hasattr(process, "output_lines"):
        process.output_lines = lines = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, name=f"output-of-{process.pid}", daemon=True).start()
    return process.output_lines


def wait_for_line(process: subprocess.Popen, pattern: str, seconds: float = 60) -> str:
    """Read the command's output until a line matches; return everything read so far."""
    lines, seen, deadline = output_lines(process), "", time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:  # the command ended
            lines.put(None)
            break
        seen += line
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"{pattern!r} never appeared within {seconds} s; output so far:\n{seen}")


def indexed_tags(database) -> set[str]:
    """What the dashboard's index holds, read straight from its SQLite file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        rows = connection.execute(
            "SELECT r.name || ':' || t.name FROM catalog_tag t JOIN catalog_repository r ON r.id = t.repository_id"
        )
        return {row[0] for row in rows}


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except sqlite3.OperationalError:  # no tables yet, or a writer holds the lock
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def sign_in(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    return session


def post_form(session: requests.Session, base: str, page: str, action: str, **fields) -> requests.Response:
    """Submit a form as the browser does: the CSRF token from the page it is on, and that page as the Referer."""
    html = session.get(f"{base}{page}", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return session.post(
        f"{base}{action}",
        data={"csrfmiddlewaretoken": token, **fields},
        headers={"Referer": f"{base}{page}"},
        timeout=30,
    )
