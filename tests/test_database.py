"""The suite runs on whichever database DATABASE_URL names: SQLite by default, PostgreSQL in CI's second run
(`bin/with-postgres make test`). This checks that the run really is on that database, so a broken
DATABASE_URL cannot pass the PostgreSQL run on SQLite unnoticed."""

import os
import re

import dj_database_url
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_suite_runs_on_the_database_database_url_names():
    url = os.environ.get("DATABASE_URL")
    expected = dj_database_url.parse(url) if url else {"ENGINE": "django.db.backends.sqlite3"}
    assert connection.settings_dict["ENGINE"] == expected["ENGINE"]
    if url:
        # pytest-django's own database (test_NAME, or test_NAME_gw0 … with one per xdist worker)
        assert re.fullmatch(rf"test_{expected['NAME']}(_gw\d+)?", connection.settings_dict["NAME"])
        assert (connection.settings_dict["HOST"], connection.settings_dict["PORT"]) == (
            expected["HOST"],
            expected["PORT"],
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
def test_postgresql_connections_are_kept_and_checked():
    assert connection.settings_dict["CONN_MAX_AGE"] == 60
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_encoding")
        assert cursor.fetchone() == ("UTF8",)
