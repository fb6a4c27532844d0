"""Server time of the 1,500-tag repository page, against a registry this script starts on this machine.

Run from the repository root: `.venv/bin/python bench/repository_page.py` (or `make bench`). Needs the
docker-registry binary (Debian package docker-registry). It prints numbers; it asserts no timing target.
It exits non-zero when the page does not answer 200 or is not the page it should be (page 1, newest first).

Measured, each through Django's test client in this process (no network between browser and dashboard):
  cold        first visit: an empty index, cache and client; the page queues the repository's indexing and
              here that task runs at once (tags list, a GET of each tag's manifest, each config)
  stale       a visit after REGISTRY_CACHE_SECONDS: the page from the index, and a check of the tags list
  warm        the index is fresh: no registry request at all
  revalidate  Refresh pressed (?refresh=1, then the page it redirects to): tags list and a HEAD per tag
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.images import push_image
from devtools.localregistry import LocalRegistry
from registry.client import RegistryClient
from registry.htpasswd import add_user

REPOSITORY = "big/many"
PAGE = f"/repositories/{REPOSITORY}/?sort=created&dir=desc"
WARM_UP_REPOSITORY = "bench/warm-up"  # one tag: loading its page compiles the same templates
SERVICE_USER = "dashboard"
BENCH_USER = "bench"
BENCH_PASSWORD = secrets.token_urlsafe(12)
COLD_RUNS, WARM_RUNS, REVALIDATE_RUNS = 5, 20, 5
FIRST_ROW_TIME_RE = re.compile(r'id="tags".*?<tbody>.*?<a href="[^"]*">([^<]+)</a>.*?<time datetime="([^"]+)"', re.S)


class RequestCounter:
    """Counts every HTTP request any RegistryClient sends (all of them go through RegistryClient._send)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        original = RegistryClient._send

        def counting_send(client, *args, **kwargs):
            with self._lock:
                self.count += 1
            return original(client, *args, **kwargs)

        RegistryClient._send = counting_send

    def reset(self) -> None:
        with self._lock:
            self.count = 0


def configure_django(registry: LocalRegistry, service_password: str, data_dir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="registry_ui.settings",
        REGISTRY_URL=registry.url,
        REGISTRY_USERNAME=SERVICE_USER,
        REGISTRY_PASSWORD=service_password,
        REGISTRY_HTPASSWD_PATH=str(registry.htpasswd),  # as the run command sets it
        DATA_DIR=str(data_dir),
        ALLOWED_HOSTS="testserver",  # the test client's host name
        # Long enough that the warm runs never see the listing expire; "revalidate" expires it on purpose.
        REGISTRY_CACHE_SECONDS="3600",
        LOG_LEVEL="WARNING",
    )
    for name in ("REGISTRY_PASSWORD_FILE", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG"):
        os.environ.pop(name, None)

    import django
    from django.core.management import call_command
    from django.test.utils import override_settings

    django.setup()
    # Plain static storage, as the test suite uses: the page then needs no collectstatic manifest in the checkout.
    override_settings(STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }).enable()  # fmt: skip
    # The first visit queues the repository's indexing; run it inside that request, as a worker would at once,
    # so "cold" measures the whole indexing of 1,500 tags.
    override_settings(
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
    ).enable()
    call_command("migrate", interactive=False, verbosity=0)


def newest_first_check(body: str, created: dict[str, datetime]) -> tuple[bool, str]:
    """Whether page 1's first row is the newest of all tags."""
    match = FIRST_ROW_TIME_RE.search(body)
    if not match:
        return False, "no tag row found in the page"
    tag, shown = match.group(1).strip(), datetime.fromisoformat(match.group(2))
    newest_tag = max(created, key=created.get)
    ok = tag == newest_tag and shown == created[newest_tag]
    detail = f"first row {tag}, created {shown.isoformat()}; newest of {len(created):,}: {newest_tag}"
    return ok, f"{detail}, created {created[newest_tag].isoformat()}"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-repository-page-") as temp:
        temp = Path(temp)
        registry = LocalRegistry(temp / "registry")
        registry.write_config()
        service_password = secrets.token_urlsafe(24)
        # Cost 4 for the service account, as the run command does: the registry checks bcrypt on every one
        # of its thousands of requests, and its long random password needs no key stretching.
        add_user(registry.htpasswd, SERVICE_USER, service_password, cost=4)
        add_user(registry.htpasswd, BENCH_USER, BENCH_PASSWORD)
        registry.start()
        try:
            return run(registry, service_password, temp / "data")
        finally:
            registry.stop()


def registry_alone(registry: LocalRegistry, service_password: str) -> float:
    """Milliseconds the registry itself needs for a cold load's GETs: the floor for the cold page."""
    import requests

    from registry.client import MANIFEST_ACCEPT

    session = requests.Session()
    session.auth = (SERVICE_USER, service_password)
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))
    base = f"{registry.url}/v2/{REPOSITORY}"
    tags = session.get(f"{base}/tags/list").json()["tags"]
    with ThreadPoolExecutor(8) as pool:
        manifests = pool.map(
            lambda tag: session.get(f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}), tags
        )
        configs = [f"{base}/blobs/{response.json()['config']['digest']}" for response in manifests]
    began = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        session.get(f"{base}/tags/list")
        list(pool.map(lambda tag: session.get(f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}), tags))
        list(pool.map(session.get, configs))
    return (time.perf_counter() - began) * 1000


def run(registry: LocalRegistry, service_password: str, data_dir: Path) -> int:
    configure_django(registry, service_password, data_dir)

    from django.core.cache import cache, caches
    from django.test import Client
    from django.utils import timezone

    from catalog.models import Manifest, Repository
    from registry.client import reset_client
    from tests.conftest import BIG_TAG_COUNT, fill_big_repository, simple  # after django.setup(): it imports models

    started = time.perf_counter()
    pusher = RegistryClient(registry.url, SERVICE_USER, service_password)
    created = fill_big_repository(pusher)
    push_image(pusher, WARM_UP_REPOSITORY, "1", simple("warm-up", datetime.now(UTC)))
    print(f"Pushed {BIG_TAG_COUNT:,} tags to {REPOSITORY} in {time.perf_counter() - started:.1f} s ({registry.url})")

    client = Client()
    client.login(username=BENCH_USER, password=BENCH_PASSWORD)  # a viewer, signed in with the registry's htpasswd
    counter = RequestCounter()
    failures: list[str] = []

    def load(path: str = PAGE) -> tuple[float, str]:
        began = time.perf_counter()
        response = client.get(path, follow=True)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            failures.append(f"GET {path} answered {response.status_code}")
        return elapsed, response.content.decode()

    def cold() -> None:
        cache.clear()
        caches["registry"].clear()  # the manifests and configs this process's client keeps
        reset_client()
        Repository.objects.filter(name=REPOSITORY).delete()
        Manifest.objects.filter(tags__isnull=True, index_links__isnull=True).delete()

    def stale() -> None:  # older than REGISTRY_CACHE_SECONDS, and no check queued for it yet
        cache.clear()
        Repository.objects.filter(name=REPOSITORY).update(synced_at=timezone.now() - timedelta(hours=2))

    def measure(runs: int, prepare=None, path: str = PAGE) -> tuple[list[float], int, str]:
        times, requests, body = [], 0, ""
        for _ in range(runs):
            if prepare:
                prepare()
            counter.reset()
            elapsed, body = load(path)
            times.append(elapsed)
            requests = counter.count  # the same on every run of a kind; the last one is reported
        return times, requests, body

    # Not counted: the first request of the process compiles templates and fills Django's own caches.
    load(f"/repositories/{WARM_UP_REPOSITORY}/")
    results = {
        "cold": measure(COLD_RUNS, cold),
        "stale": measure(REVALIDATE_RUNS, stale),
        "revalidate": measure(REVALIDATE_RUNS, path=PAGE + "&refresh=1"),
        "warm": measure(WARM_RUNS),
    }

    alone = [registry_alone(registry, service_password) for _ in range(COLD_RUNS)]
    load_average = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nGET {PAGE}  ({BIG_TAG_COUNT:,} tags, 50 a page)")
    print(f"{os.cpu_count()} CPUs, load average {load_average} (the registry runs on the same machine)\n")
    print(f"{'':<12}{'runs':>5}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'registry requests':>19}")
    for name, (times, requests, _) in results.items():
        print(f"{name:<12}{len(times):>5}{statistics.median(times):>11.1f}{min(times):>9.1f}{max(times):>9.1f}"
              f"{requests:>19,}")  # fmt: skip

    print(
        f"{'registry':<12}{len(alone):>5}{statistics.median(alone):>11.1f}{min(alone):>9.1f}{max(alone):>9.1f}"
        f"{1 + 2 * BIG_TAG_COUNT:>19,}   (the same GETs with plain requests, 8 in flight, nothing parsed)"
    )

    needed = 1 + 2 * BIG_TAG_COUNT  # the tags list, and each tag's manifest and config (every image is distinct)
    cold_requests, stale_requests = results["cold"][1], results["stale"][1]
    print(
        f"\ncold: {cold_requests:,} requests = {cold_requests / needed:.2f}x the {needed:,} it cannot do without "
        f"(target <= 1.05x): {'ok' if cold_requests <= 1.05 * needed else 'MISSED'}"
    )
    print(f"stale: {stale_requests} requests per visit (target <= 1): {'ok' if stale_requests <= 1 else 'MISSED'}")
    ok, detail = newest_first_check(results["cold"][2], created)
    print(f"\nPage 1 newest first: {'yes' if ok else 'NO'} ({detail})")
    if not ok:
        failures.append("page 1 does not start with the newest tag")
    for failure in dict.fromkeys(failures):
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
