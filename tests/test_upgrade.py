"""A database made by the version before the apps were split (tests/data/README.md) migrates to this one with
nothing lost: every row, every link between rows, the roles, and a delete job still queued in the database task
backend, which a worker then runs from its new module. On SQLite always, on PostgreSQL when the suite runs on it."""

import json
import os
import sqlite3
import uuid
from pathlib import Path

import dj_database_url
import pytest

from tests.conftest import NO_REGISTRY, manage, process_environment

DATA = Path(__file__).resolve().parent / "data"
pytestmark = pytest.mark.slow  # migrate in a process of its own

CHECK = """
import json
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django_tasks_db.models import DBTaskResult
from accounts import roles
from catalog.models import (
    Blob, Manifest, ManifestBlob, ManifestChild, Registry, RegistryEvent, Repository, SyncRun, Tag
)
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from garbage_collection.models import GcRun

models = [Registry, Repository, Tag, Manifest, Blob, ManifestBlob, ManifestChild, SyncRun, RegistryEvent, DeleteJob,
          AuditEntry, RetentionPolicy, GcRun]
real = GcRun.objects.get(dry_run=False)
with connection.cursor() as cursor:
    indexes = connection.introspection.get_constraints(cursor, "catalog_tag")
print(json.dumps({
    "counts": {model.__name__: model.objects.count() for model in models},
    "roles": {user.username: roles.role_of(user) for user in User.objects.all()},
    "latest": Tag.objects.get(name="latest").manifest.digest,
    "index_child": ManifestChild.objects.get().child.digest,
    "entry_job": AuditEntry.objects.get(action="remove-tag").job.status,
    "preview": real.preview.dry_run,
    "policy_job": DeleteJob.objects.get(kind="retention").policy.repositories,
    "tasks": sorted(DBTaskResult.objects.values_list("task_path", flat=True)),
    "old_content_types": ContentType.objects.filter(app_label="browser").count(),
    "index_names": sorted(name for name in indexes if not name.startswith(("catalog_", "browser_", "sqlite_"))),
    "new_tag_id": Tag.objects.create(repository=Repository.objects.get(name="shop/api"), name="new",
                                     manifest=Manifest.objects.get(is_index=False)).pk,
}))
"""

EXPECTED_COUNTS = {
    "Registry": 1,
    "Repository": 2,
    "Tag": 3,
    "Manifest": 2,
    "Blob": 2,
    "ManifestBlob": 2,
    "ManifestChild": 1,
    "SyncRun": 1,
    "RegistryEvent": 1,
    "DeleteJob": 3,
    "AuditEntry": 4,
    "RetentionPolicy": 1,
    "GcRun": 2,
}


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    # The old rows name a registry that is not there; the discard port makes sure no real one is reached.
    return process_environment(DATA_DIR=str(tmp_path), DATABASE_URL=database_url, REGISTRY_URL=NO_REGISTRY)


def check_upgrade(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url, tmp_path)
    migrated = manage(env, "migrate", "--no-input")
    assert "Applying catalog.0001_initial... OK" in migrated
    assert "No migrations to apply" in manage(env, "migrate", "--no-input")
    found = json.loads(manage(env, "shell", "-c", CHECK).splitlines()[-1])
    assert found["counts"] == EXPECTED_COUNTS
    assert found["roles"] == {"alice": "maintainer", "carol": "admin"}
    assert found["latest"] == "sha256:" + "1" * 64 and found["index_child"] == "sha256:" + "1" * 64
    assert (found["entry_job"], found["preview"], found["policy_job"]) == ("done", True, "shop/*")
    assert found["tasks"] == ["cleanup.tasks.run_delete_job"]
    assert found["old_content_types"] == 0
    assert {"tag_repository_pushed"} <= set(found["index_names"])
    assert found["new_tag_id"] == 4  # the ids go on where the old table's stopped
    # The queued delete job runs from its new module: its registry is gone, so it fails, and says why.
    manage(env, "db_worker", "--batch", "--no-startup-delay", "-v", "0")
    error = manage(
        env,
        "shell",
        "-c",
        "from cleanup.models import DeleteJob; job = DeleteJob.objects.get(kind='retention'); "
        "print(job.status, job.error)",
    )
    assert error.splitlines()[-1].startswith(f"failed Cannot connect to {NO_REGISTRY}"), error


def test_a_sqlite_database_of_the_previous_version_migrates_with_nothing_lost(tmp_path):
    database = tmp_path / "old.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.executescript((DATA / "before-apps.sqlite.sql").read_text())
    check_upgrade(f"sqlite:///{database}", tmp_path)
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not {table for table in tables if table.startswith("browser_")}
    assert {"catalog_tag", "cleanup_deletejob", "gc_gcrun"} <= tables


@pytest.fixture
def postgres_url():
    """A new database on the PostgreSQL the suite runs on (DATABASE_URL), dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("PostgreSQL only: the suite runs on it with bin/with-postgres (CI does)")
    import psycopg

    settings = dj_database_url.parse(url)
    name = f"upgrade_{uuid.uuid4().hex[:12]}"
    admin = {"host": settings["HOST"], "port": settings["PORT"], "user": settings["USER"], "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(**admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_postgresql_database_of_the_previous_version_migrates_with_nothing_lost(tmp_path, postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute((DATA / "before-apps.postgresql.sql").read_text())
    check_upgrade(postgres_url, tmp_path)
    with psycopg.connect(postgres_url) as connection:
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert not {table for table in tables if table.startswith("browser_")}
    assert {"catalog_tag", "cleanup_deletejob", "gc_gcrun"} <= tables
