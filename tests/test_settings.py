"""Settings come from the environment and refuse bad values loudly, before anything serves."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import manage, process_environment


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DJANGO_", "SECRET_KEY"))}
    code = "import registry_ui.settings as s; print(s.REGISTRY_URL, s.REGISTRY_PASSWORD == 'from-file', s.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DATA_DIR": str(tmp_path), **env},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )


def test_a_fresh_checkout_needs_no_configuration(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http://127.0.0.1:5000", "False", "False"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    result = load_settings(tmp_path, REGISTRY_PASSWORD_FILE=str(secret))
    assert result.stdout.split()[1] == "True"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REGISTRY_URL", "registry:5000", "must be an http:// or https:// URL"),
        ("REGISTRY_VERIFY_TLS", "maybe", "is not a boolean"),
        ("DEBUG", "2", "is not a boolean"),
        ("REGISTRY_READ_TIMEOUT", "soon", "is not a number"),
        ("REGISTRY_READ_TIMEOUT", "0", "must be at least"),
        ("REGISTRY_CA_BUNDLE", "/no/such/ca.pem", "is not a readable file"),
        ("REGISTRY_HTPASSWD_PATH", "/no/such/htpasswd", "is not a readable file"),
        ("REGISTRY_PASSWORD_FILE", "/no/such/secret", "cannot be read"),
        ("CSRF_TRUSTED_ORIGINS", "dashboard.example.com", "needs its scheme"),
        ("API_RATE_LIMIT", "lots", "is not a number"),
        ("API_RATE_LIMIT", "-1", "must be at least"),
        ("METRICS_TOP_REPOSITORIES", "many", "is not a number"),
        ("METRICS_TOKEN_FILE", "/no/such/token", "cannot be read"),
    ],
)
def test_bad_values_stop_with_a_message_naming_the_variable(tmp_path, name, value, message):
    result = load_settings(tmp_path, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr and message in result.stderr


# --- DATABASE_URL and REDIS_URL --------------------------------------------------------------
PASSWORD = "s3cr3t-pw"


def load_backends(tmp_path, **env) -> subprocess.CompletedProcess:
    """Settings with only the given DATABASE_URL / REDIS_URL (none inherited); prints the default database
    and cache as JSON."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REGISTRY_", "DJANGO_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"))
    }
    code = (
        "import json, registry_ui.settings as s; "
        "print(json.dumps({'db': s.DATABASES['default'], 'cache': s.CACHES['default']}, default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DATA_DIR": str(tmp_path), **env},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )


def backends(tmp_path, **env) -> dict:
    result = load_backends(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_urls_it_is_sqlite_and_a_file_cache_in_data_dir(tmp_path):
    loaded = backends(tmp_path)
    assert (loaded["db"]["ENGINE"], loaded["db"]["NAME"]) == (
        "django.db.backends.sqlite3",
        str(tmp_path / "db.sqlite3"),
    )
    assert "journal_mode=WAL" in loaded["db"]["OPTIONS"]["init_command"]
    assert loaded["cache"]["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert loaded["cache"]["LOCATION"] == str(tmp_path / "cache")  # shared by every process on the machine


def test_database_url_selects_postgresql_with_persistent_checked_connections(tmp_path):
    db = backends(tmp_path, DATABASE_URL=f"postgres://dashboard:{PASSWORD}@db.internal:5433/registry")["db"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["HOST"], db["PORT"], db["USER"]) == ("registry", "db.internal", 5433, "dashboard")
    assert db["PASSWORD"] == PASSWORD
    assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True


def test_database_url_can_come_from_a_file(tmp_path):
    secret = tmp_path / "database_url"
    secret.write_text(f"postgresql://dashboard:{PASSWORD}@db/registry\n")
    db = backends(tmp_path, DATABASE_URL_FILE=str(secret))["db"]
    assert (db["ENGINE"], db["HOST"], db["NAME"]) == ("django.db.backends.postgresql", "db", "registry")


@pytest.mark.parametrize(
    "url",
    [
        "garbage",
        f"dashboard:{PASSWORD}@db/registry",  # no scheme
        f"pg:{PASSWORD}@db://registry",  # a scheme that is not followed by ://
        f"postgress://dashboard:{PASSWORD}@db/registry",  # a scheme dj-database-url does not know
        f"postgres://dashboard:{PASSWORD}@db:port/registry",  # a port that is no number
        f"postgres://dashboard:{PASSWORD}@[db/registry",  # not a URL at all
    ],
)
def test_a_database_url_that_cannot_be_read_stops_without_showing_the_password(tmp_path, url):
    result = load_backends(tmp_path, DATABASE_URL=url)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DATABASE_URL" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_redis_url_selects_the_redis_cache(tmp_path):
    cache = backends(tmp_path, REDIS_URL=f"redis://:{PASSWORD}@cache.internal:6379/1")["cache"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == f"redis://:{PASSWORD}@cache.internal:6379/1"
    assert cache["TIMEOUT"] is None  # digest-addressed entries never go stale; tag lists set their own expiry


@pytest.mark.parametrize("url", ["cache.internal:6379", f"http://:{PASSWORD}@cache.internal:6379/0"])
def test_a_redis_url_without_a_redis_scheme_stops_without_showing_the_password(tmp_path, url):
    result = load_backends(tmp_path, REDIS_URL=url)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "REDIS_URL" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_web_processes_share_the_sign_in_throttle_without_redis(tmp_path):
    """Several web processes serve by default: a password guesser must not get each process's allowance."""
    env = process_environment(DATA_DIR=str(tmp_path))
    request = "from django.test import RequestFactory; from accounts import throttle; r = RequestFactory().post('/')\n"
    manage(env, "shell", "-c", request + "for _ in range(50): throttle.record_failed_login(r, 'bob')")
    assert manage(env, "shell", "-v", "0", "-c", request + "print(throttle.login_blocked(r, 'bob'))").strip() == "True"


# --- HTTPS_ONLY -------------------------------------------------------------------------------


def test_https_only_redirects_pages_but_not_what_the_stack_asks_inside_over_http(tmp_path):
    """Behind a proxy that terminates TLS, people are sent to HTTPS; the health checks (Docker's, HAProxy's), the
    registry's notifications and Prometheus's scrape come over the stack's own network in plain HTTP, and a
    redirect would fail each of them."""
    code = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "print(c.get('/health/').status_code, c.get('/login/').status_code, "
        "c.post('/notifications/').status_code, c.get('/metrics').status_code, "
        "c.get('/api/v1/repositories').status_code)"
    )
    env = process_environment(
        DATA_DIR=str(tmp_path),
        HTTPS_ONLY="true",
        ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="registry_ui.settings",
    )
    manage(env, "migrate", "--noinput")
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    health, login, notifications, metrics, api = map(int, result.stdout.split())
    assert (health, login, api) == (200, 301, 301)
    assert notifications != 301 and metrics != 301, (notifications, metrics)
