"""The task backends with real workers: the database backend's db_worker and RQ's worker on a real Redis.
Each runs in its own process against a database file, as in production."""

import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from devtools.localregistry import free_port
from tests.conftest import SERVICE_PASSWORD, SERVICE_USER, manage, process_environment

pytestmark = pytest.mark.slow  # workers in processes of their own


def environment(tmp_path: Path, registry, **extra) -> dict:
    return process_environment(
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        REGISTRY_URL=registry.url,
        REGISTRY_USERNAME=SERVICE_USER,
        REGISTRY_PASSWORD=SERVICE_PASSWORD,
        **extra,
    )


def indexed_tags(database: Path, repository: str) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT t.name FROM catalog_tag t JOIN catalog_repository r ON r.id = t.repository_id WHERE r.name = ?",
            (repository,),
        )
        return {row[0] for row in rows}


ENQUEUE = "from catalog.tasks import sync_repository; print(sync_repository.enqueue('shop/api').id)"


def test_the_database_backend_worker_runs_a_queued_sync(tmp_path, registry, registry_fixtures):
    env = environment(tmp_path, registry)
    manage(env, "migrate", "-v", "0")
    manage(env, "shell", "-c", ENQUEUE)
    assert indexed_tags(tmp_path / "worker.sqlite3", "shop/api") == set()  # queued, not run
    manage(env, "db_worker", "--batch", "--no-startup-delay", "-v", "0")
    assert indexed_tags(tmp_path / "worker.sqlite3", "shop/api") == {"1.0.0", "1.2.0", "1.10.0", "latest"}


ENQUEUE_PUSH = "from catalog.tasks import apply_push; apply_push.enqueue('shop/api', '1.2.0', '')"


def test_notification_updates_have_a_queue_and_worker_of_their_own(tmp_path, registry, registry_fixtures):
    """A reconcile may take minutes: the updates a push asks for must not wait behind it."""
    env = environment(tmp_path, registry)
    manage(env, "migrate", "-v", "0")
    manage(env, "shell", "-c", ENQUEUE_PUSH)
    manage(env, "db_worker", "--batch", "--no-startup-delay", "-v", "0")  # the queue for long work
    assert indexed_tags(tmp_path / "worker.sqlite3", "shop/api") == set()
    manage(env, "db_worker", "--queue-name", "notifications", "--batch", "--no-startup-delay", "-v", "0")
    assert indexed_tags(tmp_path / "worker.sqlite3", "shop/api") == {"1.2.0"}


@pytest.fixture
def redis_url(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (CI installs it)")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while (
        subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() != "PONG"
    ):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


def test_the_rq_backend_worker_runs_a_queued_sync(tmp_path, registry, registry_fixtures, redis_url):
    env = environment(tmp_path, registry, TASKS_BACKEND="rq", REDIS_URL=redis_url)
    manage(env, "migrate", "-v", "0")
    manage(env, "shell", "-c", ENQUEUE)
    assert indexed_tags(tmp_path / "worker.sqlite3", "shop/api") == set()
    manage(env, "rqworker", "--burst", "--job-class", "django_tasks_rq.Job", "default")
    assert indexed_tags(tmp_path / "worker.sqlite3", "shop/api") == {"1.0.0", "1.2.0", "1.10.0", "latest"}
    manage(env, "shell", "-c", ENQUEUE_PUSH.replace("1.2.0", "2.0.0-missing"))
    manage(env, "rqworker", "--burst", "--job-class", "django_tasks_rq.Job", "notifications")
    assert "2.0.0-missing" not in indexed_tags(tmp_path / "worker.sqlite3", "shop/api")
