"""Faults at random moments. The registry, the task worker or the web server is killed with SIGKILL in the middle of
a reconcile and then of a delete job, at a moment drawn from a seeded random generator (a failure names its seed, to
replay it); both are started through the web server, as a user starts them. Everything is started again (a user whose
request got no answer sends it again); after the scheduler's tick and one reconcile, the index equals the registry,
every tag and digest, and each tag the delete job chose has its true outcome.

The worker runs in a process of its own against a database file, as in production. Its death is noticed when its
heartbeat has been silent for a minute: the test ages the heartbeat instead of waiting that minute."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devtools.images import push_config_image
from devtools.localregistry import free_port
from registry.client import NotFound, RegistryClient
from tests.conftest import LAYER_TYPE, REPO_ROOT, manage, process_environment

REPOSITORIES = {"fault/a": 120, "fault/b": 20, "fault/c": 20}  # tags each: the delete job works on fault/a
CHOSEN = 110
CSRF = "a" * 32  # any 32 letters make a valid CSRF secret: the form posts need no page rendered first
pytestmark = pytest.mark.slow


class Dashboard:
    """The dashboard's processes around one database file: manage.py commands, and a task worker to kill."""

    def __init__(self, tmp_path: Path, local) -> None:
        self.database = tmp_path / "faults.sqlite3"
        self.env = process_environment(
            DATA_DIR=str(tmp_path),
            DATABASE_URL=f"sqlite:///{self.database}",
            REGISTRY_URL=local.url,
            REGISTRY_USERNAME="svc",
            REGISTRY_PASSWORD="pw",
            REGISTRY_HTPASSWD_PATH=str(local.htpasswd),
            DASHBOARD_ADMINS="svc",
            LOG_LEVEL="ERROR",
        )
        self.worker: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{free_port()}"
        self.session = requests.Session()
        self.orphans: set[str] = set()  # tasks a killed worker held: the queue keeps them "running" for good

    def manage(self, *args: str) -> str:
        return manage(self.env, *args)

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--queue-name",
                "*",
                "--interval",
                "0.05",
                "--no-startup-delay",
                "-v",
                "0",
            ],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_worker(self) -> None:
        if self.worker and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait()
        running = "SELECT id FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
        self.orphans |= {task_id for (task_id,) in self.query(running)}

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "registry_ui.wsgi", "--bind", self.base.removeprefix("http://")],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its worker process dies with it
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.base}/health/", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and self.web.poll() is None, "the web server did not start"
            time.sleep(0.05)

    def stop_web(self) -> None:
        if self.web and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGKILL)
            self.web.wait()

    def post(self, path: str, **data: str) -> int | None:
        """A form post as a signed-in user sends it; its status, or None when no answer came."""
        if "csrftoken" not in self.session.cookies:  # later the server's (signing in rotates it)
            self.session.cookies.set("csrftoken", CSRF, domain="127.0.0.1", path="/")
        token = self.session.cookies["csrftoken"]
        try:
            answer = self.session.post(
                self.base + path, data={**data, "csrfmiddlewaretoken": token}, allow_redirects=False, timeout=30
            )
        except requests.ConnectionError:
            return None
        return answer.status_code

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=20) as connection:
            return connection.execute(sql, params).fetchall()

    def wait_for(self, sql: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not self.query(sql):
            assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
            time.sleep(0.02)

    def wait_until_idle(self, seconds: float = 90) -> None:
        """Until the worker has no queued or running task left (but those a killed worker held)."""
        busy = "SELECT id FROM django_tasks_database_dbtaskresult WHERE status IN ('READY', 'RUNNING')"
        deadline = time.monotonic() + seconds
        while {task_id for (task_id,) in self.query(busy)} - self.orphans:
            assert time.monotonic() < deadline, "the worker never finished its tasks"
            time.sleep(0.1)

    def a_minute_later(self) -> None:
        """What a minute of silence does: every heartbeat is that old."""
        for table in ("catalog_syncrun", "cleanup_deletejob"):
            self.query(f"UPDATE {table} SET heartbeat_at = datetime('now', '-2 minutes') WHERE status = 'running'")


def fill(client: RegistryClient) -> None:
    for repository, count in REPOSITORIES.items():
        base = client.upload_blob(repository, b"base layer", LAYER_TYPE)

        def push(n: int, repository=repository, base=base) -> None:
            created = datetime(2025, 1, 1 + n % 28, tzinfo=UTC)
            push_config_image(client, repository, f"t{n}", created, base, {"n": f"{repository}:{n}"})

        client.map(push, range(count))


def registry_state(client: RegistryClient) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every tag the registry lists with its digest, and per repository the tags it lists that lead to no image
    (half-deleted: a delete cut off by the kill can leave them)."""
    digests, half_deleted = {}, {}
    for repository in client.catalog():
        half_deleted[repository] = []
        for tag in sorted(client.tags(repository)):
            try:
                digests[f"{repository}:{tag}"] = client.resolve(repository, tag)
            except NotFound:
                half_deleted[repository].append(tag)
    return digests, half_deleted


def post_as_a_user(rng: random.Random, victim: str, dashboard: Dashboard, path: str) -> None:
    """Send a form through the web server. When the web server is the victim it is killed at a random moment of
    that request and started again, and the user, who saw no answer, sends the form again."""
    if victim != "web":
        assert dashboard.post(path) == 302
        return
    answer: dict[str, int | None] = {}
    sending = threading.Thread(target=lambda: answer.update(status=dashboard.post(path)))
    sending.start()
    time.sleep(rng.uniform(0, 0.012))  # such a post takes about 10 ms here
    dashboard.stop_web()
    sending.join()
    dashboard.start_web()
    print(f"POST {path}: {'answered' if answer['status'] else 'no answer'} before the kill")
    if answer["status"] != 302:
        assert dashboard.post(path) == 302


def kill_at_random(rng: random.Random, victim: str, local, dashboard: Dashboard) -> None:
    if victim == "web":
        return  # killed during the request that started the work (post_as_a_user)
    time.sleep(rng.uniform(0, 1.0))
    if victim == "registry":
        local.process.kill()
        local.process.wait()
        time.sleep(rng.uniform(0, 0.5))  # the work meets a registry that is gone
        local.process = None
        local.start()
    else:
        dashboard.stop_worker()
        dashboard.a_minute_later()
        dashboard.start_worker()


@pytest.mark.parametrize("victim", ["registry", "worker", "web"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_a_kill_at_a_random_moment_the_index_and_every_outcome_are_true(own, tmp_path, victim, seed):
    local, client, _ = own
    rng = random.Random(seed)
    fill(client)
    dashboard = Dashboard(tmp_path, local)
    dashboard.manage("migrate", "-v", "0")
    dashboard.start_worker()
    dashboard.start_web()
    try:
        assert dashboard.post("/login/", username="svc", password="pw") == 302
        # A reconcile, killed half way.
        post_as_a_user(rng, victim, dashboard, "/sync/")
        dashboard.wait_for("SELECT 1 FROM catalog_syncrun WHERE status = 'running'")
        kill_at_random(rng, victim, local, dashboard)
        dashboard.wait_until_idle()

        # A delete job choosing most of one repository's tags, killed half way.
        chosen = [["fault/a", f"t{n}", client.resolve("fault/a", f"t{n}")] for n in range(CHOSEN)]
        create = (
            "import json, sys\n"
            "from catalog.sync import current_registry\n"
            "from cleanup.models import DeleteJob\n"
            f"selection = json.loads({json.dumps(json.dumps(chosen))})\n"
            "job = DeleteJob.objects.create(registry=current_registry(), kind='tags', requested_by='svc',\n"
            "                               status='draft', selection=selection, total=len(selection))\n"
            "print(job.pk)\n"
        )
        job_id = int(dashboard.manage("shell", "-v", "0", "-c", create))  # the draft a selection's preview makes
        post_as_a_user(rng, victim, dashboard, f"/deletes/{job_id}/confirm/")
        dashboard.wait_for("SELECT 1 FROM cleanup_deletejob WHERE status != 'queued'")
        kill_at_random(rng, victim, local, dashboard)

        # Everything runs again: the scheduler's tick ends what lost its worker and reads back, then one reconcile.
        dashboard.wait_until_idle()
        tick = "from catalog.management.commands.sync_registry import Command; Command().tick(reconcile=False)"
        dashboard.manage("shell", "-c", tick)
        dashboard.wait_until_idle()
        assert dashboard.manage("sync_registry").startswith("done:")
    finally:
        dashboard.stop_worker()
        dashboard.stop_web()

    registry, half_deleted = registry_state(client)
    index = dict(
        dashboard.query(
            "SELECT r.name || ':' || t.name, m.digest FROM catalog_tag t "
            "JOIN catalog_repository r ON r.id = t.repository_id JOIN catalog_manifest m ON m.id = t.manifest_id"
        )
    )
    assert index == registry, f"seed {seed}, {victim}"
    shown = {
        name: sorted(json.loads(tags))
        for name, tags in dashboard.query("SELECT name, half_deleted FROM catalog_repository")
    }
    assert shown == half_deleted, f"seed {seed}, {victim}: the half-deleted tags the pages show"

    ((status, job_id),) = dashboard.query("SELECT status, id FROM cleanup_deletejob")
    assert status in ("done", "failed"), f"seed {seed}, {victim}"
    outcomes = {}
    for tags, outcome in dashboard.query("SELECT tags, outcome FROM cleanup_auditentry WHERE job_id = ?", job_id):
        for tag in json.loads(tags):
            outcomes[tag] = outcome
    for repository, tag, digest in chosen:
        try:
            now = client.resolve(repository, tag)
        except NotFound:
            now = None
        outcome = outcomes.get(tag, "not attempted")
        claim = f"seed {seed}, {victim}: {tag} is {outcome!r}, the registry has {now}"
        if outcome == "done":
            assert now is None, claim
        elif outcome in ("failed", "not attempted"):
            assert now is not None, claim
        else:
            assert outcome == "skipped" and now not in (None, digest), claim
