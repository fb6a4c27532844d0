"""Fixtures. Outside processes are opt-in: a test gets a real registry only when it asks for one.

- `registry`: the session's registry process (docker-registry from Debian), filled once with the fixture images
  (`registry_fixtures` has their digests), with the dashboard's settings pointed at it.
- `own`: an empty registry of the test's own, for tests that push and delete.
- `dockerd`, `registry_container` (tests/docker_engine.py): a real Docker Engine and registry containers.
Without any of these, the dashboard points at an address where nothing listens, so a test that needs a
registry and forgot to ask fails at once instead of reaching one by chance."""

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.utils import translation

from accounts import roles
from catalog import sync
from devtools.images import ImageSpec, layer, push_config_image, push_image, push_index
from devtools.localregistry import LocalRegistry
from registry.client import RegistryClient, reset_client
from registry.htpasswd import add_user

pytest_plugins = ["tests.docker_engine", "tests.browser"]

# The outside process each fixture starts or reaches, as the marker its tests get.
OUTSIDE = {
    "registry_process": "registry",
    "own": "registry",
    "dockerd": "docker",
    "chromium": "browser",
    "redis_url": "redis",
    "postgres_url": "postgres",
}

LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"

SERVICE_USER, SERVICE_PASSWORD = "dashboard", "service-secret"
USERS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BIG_TAG_COUNT = 1500
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
NO_REGISTRY = "http://127.0.0.1:9"  # the discard port: nothing listens there
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Fixtures:
    """What the session registry holds, with the digests tests compare against."""

    api_digest: str  # shop/api:1.10.0 and shop/api:latest
    api_old_digest: str  # shop/api:1.2.0
    web_digest: str  # shop/web:v1 (OCI image manifest)
    multi_digest: str  # tools/multi:2.0 (OCI index, two platforms + attestations)
    list_digest: str  # tools/legacy-list:1 (Docker manifest list)
    signature_tag: str  # tools/multi:sha256-….sig
    xss_digest: str  # evil/xss:latest
    big_created: dict[str, datetime]  # big/many: tag -> created


def simple(name: str, created: datetime, **extra) -> ImageSpec:
    return ImageSpec(layers=[{"etc/os-release": "ID=test\n"}, {f"app/{name}.txt": name * 50}], created=created, **extra)


def fill(client: RegistryClient) -> Fixtures:
    api_old = push_image(client, "shop/api", "1.2.0", simple("api-1.2", BASE_TIME, labels={"team": "payments"}))
    push_image(client, "shop/api", "1.0.0", simple("api-1.0", BASE_TIME - timedelta(days=30)))
    api_spec = simple(
        "api-1.10",
        BASE_TIME + timedelta(days=10),
        labels={"org.opencontainers.image.version": "1.10.0"},
        entrypoint=["/app/api"],
        cmd=["--port", "8080"],
        exposed_ports=["8080/tcp"],
        working_dir="/app",
        user="1000",
    )
    api = push_image(client, "shop/api", "1.10.0", api_spec)
    push_image(client, "shop/api", "latest", api_spec)  # the same bytes: the same digest
    web = push_image(client, "shop/web", "v1", simple("web", BASE_TIME + timedelta(days=2), oci=True))
    multi = push_index(
        client,
        "tools/multi",
        "2.0",
        [
            simple("multi-amd64", BASE_TIME + timedelta(days=5)),
            simple("multi-arm64", BASE_TIME + timedelta(days=5), architecture="arm64", variant="v8"),
        ],
        oci=True,
        attest=True,
    )
    signature_tag = multi.digest.replace("sha256:", "sha256-") + ".sig"
    push_image(client, "tools/multi", signature_tag, simple("signature", BASE_TIME + timedelta(days=5), oci=True))
    legacy = push_index(
        client,
        "tools/legacy-list",
        "1",
        [
            simple("list-amd64", BASE_TIME + timedelta(days=3)),
            simple("list-arm", BASE_TIME + timedelta(days=3), architecture="arm", variant="v7"),
        ],
        oci=False,
    )
    gone = push_image(client, "empty/gone", "only", simple("gone", BASE_TIME))
    client.delete_manifest("empty/gone", gone.digest)
    xss = push_image(
        client,
        "evil/xss",
        "latest",
        simple("xss", BASE_TIME, labels={"description": XSS}, env=[f"GREETING={XSS}"], cmd=["sh", "-c", XSS]),
    )
    return Fixtures(
        api_digest=api.digest,
        api_old_digest=api_old.digest,
        web_digest=web.digest,
        multi_digest=multi.digest,
        list_digest=legacy.digest,
        signature_tag=signature_tag,
        xss_digest=xss.digest,
        big_created=fill_big_repository(client),
    )


def fill_big_repository(client: RegistryClient, repository: str = "big/many") -> dict[str, datetime]:
    """1,500 tags, each its own image, created in an order unrelated to the tag names."""
    minutes = list(range(BIG_TAG_COUNT))
    random.Random(7).shuffle(minutes)
    created = {f"build-{n}": BASE_TIME + timedelta(minutes=minute) for n, minute in enumerate(minutes)}
    shared = client.upload_blob(repository, layer({"etc/os-release": "ID=big\n"}), LAYER_TYPE)

    def push(tag: str) -> None:
        push_config_image(client, repository, tag, created[tag], shared, {"build": tag})

    # Three requests a tag instead of push_image's six keeps the session start short.
    client.map(push, list(created))
    return created


def pytest_collection_modifyitems(items):
    """Mark each test with the outside processes its fixtures bring, and `real` when there is any."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for marker in {OUTSIDE[name] for name in fixtures & OUTSIDE.keys()}:
            item.add_marker(marker)
        if any(item.get_closest_marker(marker) for marker in set(OUTSIDE.values())):
            item.add_marker("real")
        if item.get_closest_marker("docker"):  # one Docker Engine per run: its tests share one xdist worker
            item.add_marker(pytest.mark.xdist_group("docker"))


@pytest.fixture(scope="session")
def registry_process(tmp_path_factory) -> LocalRegistry:
    local = LocalRegistry(tmp_path_factory.mktemp("registry"))
    local.write_config()
    add_user(local.htpasswd, SERVICE_USER, SERVICE_PASSWORD, cost=4)
    for name, password in USERS.items():
        add_user(local.htpasswd, name, password, cost=4)
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def registry_contents(registry_process) -> Fixtures:
    return fill(RegistryClient(registry_process.url, SERVICE_USER, SERVICE_PASSWORD))


@pytest.fixture
def registry(settings, registry_process, registry_contents) -> LocalRegistry:
    """The session's registry, filled, with the dashboard pointed at it (its service account, its htpasswd)."""
    settings.REGISTRY_URL = registry_process.url
    settings.REGISTRY_PUBLIC_HOST = f"127.0.0.1:{registry_process.port}"
    settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = SERVICE_USER, SERVICE_PASSWORD
    settings.REGISTRY_HTPASSWD_PATH = str(registry_process.htpasswd)
    reset_client()
    return registry_process


@pytest.fixture
def registry_fixtures(registry, registry_contents) -> Fixtures:
    return registry_contents


@pytest.fixture(autouse=True)
def dashboard_settings(settings, request, monkeypatch):
    """Fast password hashing, tasks run at once, a clean cache, and no registry unless the test asks for one."""
    translation.deactivate()  # a Spanish request of an earlier test leaves its language active in this thread
    if not request.node.get_closest_marker("registry"):  # keeps `-m "not real"` honest
        monkeypatch.setattr(LocalRegistry, "start", refuse_to_start)
    settings.REGISTRY_URL = NO_REGISTRY
    settings.REGISTRY_PUBLIC_HOST = "registry.invalid"
    settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = SERVICE_USER, SERVICE_PASSWORD
    settings.REGISTRY_HTPASSWD_PATH = ""
    settings.DASHBOARD_ADMINS = ["carol"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Queued work runs at once, inside the request that queues it (tests of real workers set their own).
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # This process's memory, not the files in DATA_DIR that parallel test processes would share.
    memory = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "TIMEOUT": None}
    settings.CACHES = {"default": {**memory, "LOCATION": "tests"}, "registry": {**memory, "LOCATION": "tests-registry"}}
    cache.clear()
    reset_client()
    yield
    reset_client()


def process_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any of the dashboard's settings, then `settings`: for manage.py run in a
    process of its own."""
    prefixes = ("REGISTRY_", "DJANGO_", "DATABASE_URL", "REDIS_URL", "TASKS")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **settings}


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    """Run manage.py in a process of its own, as a worker or cron would; its output, or the test fails with it."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refuse_to_start(*args, **kwargs):
    pytest.fail("This test starts a registry process: mark it @pytest.mark.registry (or use the registry fixtures).")


@pytest.fixture
def client_for(client, db):
    """A logged-in test client for a user with the given role."""

    def login(role: str = roles.VIEWER, username: str | None = None):
        user, _ = User.objects.get_or_create(username=username or f"{role}-user")
        roles.set_role(user, role)
        client.force_login(user)
        return client

    return login


@pytest.fixture
def registry_client(registry) -> RegistryClient:
    return RegistryClient(registry.url, SERVICE_USER, SERVICE_PASSWORD)


@pytest.fixture
def own(tmp_path, settings, db):
    """An empty registry of the test's own, for tests that push and delete, with the dashboard pointed at
    it: (the registry process, a client with its service account, its index row)."""
    local = LocalRegistry(tmp_path)
    local.write_config()
    add_user(local.htpasswd, "svc", "pw", cost=4)
    local.start()
    settings.REGISTRY_URL, settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = local.url, "svc", "pw"
    settings.REGISTRY_PUBLIC_HOST = f"127.0.0.1:{local.port}"
    settings.REGISTRY_HTPASSWD_PATH = str(local.htpasswd)
    reset_client()
    yield local, RegistryClient(local.url, "svc", "pw"), sync.current_registry()
    local.stop()
