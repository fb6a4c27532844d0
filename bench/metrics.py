"""/metrics at scale: a scrape of an index of 200 repositories and 10,000 tags, against its 300 ms target.

Run from the repository root: `.venv/bin/python bench/metrics.py` (or `make bench-metrics`). Needs the
docker-registry binary (Debian package docker-registry). It pushes 199 small repositories (some multi-arch) and one
big repository that brings the total to 10,000 tags into a fresh registry, indexes them with a full reconcile into a
fresh SQLite index (in this process, through the dashboard's client, so its request counters fill as they would),
has the storage figures computed as the task worker would, then times scrapes through Django's test client: the
first, and warm ones (median, p95). Counters are in multiprocess mode, as the run command and the image run them;
the disk is measured through the local bridge, as the task worker measures it. It prints each figure beside its
target with the machine's load average; it asserts no timing target and exits non-zero only when something did not
work (a scrape not 200, a tag count that differs from the registry's).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from index import SERVICE_USER, fill_big, fill_small, load_average  # noqa: E402

from devtools.localregistry import LocalRegistry, throwaway_registry  # noqa: E402
from registry.client import RegistryClient  # noqa: E402

TARGET_MS = 300
REPOSITORIES = 200
TAGS = 10_000
BIG = "big/many"
TOKEN = secrets.token_urlsafe(24)


def log(message: str) -> None:
    print(message, flush=True)


def configure_django(data_dir: Path, registry: LocalRegistry, password: str) -> None:
    """Settings from the environment, as every process of the dashboard reads them; multiprocess counters."""
    for name in [name for name in os.environ if name.startswith(("REGISTRY_", "DJANGO_", "DATABASE_URL", "REDIS"))]:
        del os.environ[name]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="registry_ui.settings",
        ALLOWED_HOSTS="testserver",
        DATA_DIR=str(data_dir),
        PROMETHEUS_MULTIPROC_DIR=str(data_dir / "metrics"),
        REGISTRY_URL=registry.url,
        REGISTRY_USERNAME=SERVICE_USER,
        REGISTRY_PASSWORD=password,
        METRICS_TOKEN=TOKEN,
        GC_BRIDGE="local",
        REGISTRY_STORAGE_PATH=str(registry.root / "data"),
        LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=50, help="warm scrapes to time")
    scrapes = parser.parse_args().scrapes
    log(f"{os.cpu_count()} CPUs, load average {load_average()} at the start")
    with throwaway_registry("bench-metrics-", SERVICE_USER) as (registry, password, temp):
        return run(registry, password, temp / "data", scrapes)


def run(registry: LocalRegistry, password: str, data_dir: Path, scrapes: int) -> int:
    pusher = RegistryClient(registry.url, SERVICE_USER, password)
    began = time.perf_counter()
    small = pusher.map(lambda number: fill_small(pusher, number), range(REPOSITORIES - 1))
    big_tags = TAGS - sum(tags for tags, _ in small)
    fill_big(pusher, big_tags, BIG)
    log(
        f"pushed {TAGS:,} tags in {REPOSITORIES} repositories ({BIG}: {big_tags:,}) in "
        f"{time.perf_counter() - began:.0f} s; load average {load_average()}"
    )

    configure_django(data_dir, registry, password)
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    from catalog import storage, sync
    from registry.client import get_client

    began = time.perf_counter()
    run = sync.reconcile(get_client(), sync.current_registry())
    log(f"full reconcile: {run.status} in {time.perf_counter() - began:.0f} s; load average {load_average()}")
    began = time.perf_counter()
    storage.registry_storage(sync.current_registry())  # what the task worker's compute_storage does
    storage_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    storage.volume()  # what the task worker's measure_volume does
    volume_ms = (time.perf_counter() - began) * 1000

    client = Client()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def scrape() -> tuple[float, bytes]:
        began = time.perf_counter()
        response = client.get("/metrics", headers=headers)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise SystemExit(f"/metrics answered {response.status_code}: {response.content[:300]!r}")
        return elapsed, response.content

    first_ms, body = scrape()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if not sample.labels
    }
    if samples.get("registry_ui_tags") != TAGS or samples.get("registry_ui_repositories") != REPOSITORIES:
        log(
            f"the scrape says {samples.get('registry_ui_tags')} tags in {samples.get('registry_ui_repositories')} "
            f"repositories, the registry holds {TAGS} in {REPOSITORIES}"
        )
        return 1
    warm = [scrape()[0] for _ in range(scrapes)]
    median, p95 = statistics.median(warm), percentile(warm, 0.95)
    files = len(list((data_dir / "metrics").glob("*.db")))
    log(f"\n/metrics at {REPOSITORIES} repositories, {TAGS:,} tags ({len(body):,} bytes, {files} counter files)")
    log(f"  storage figures (computed once per change of the index, by the task worker): {storage_ms:.0f} ms")
    log(
        f"  the disk measured through the bridge (df, du; by the task worker, at most once a minute): "
        f"{volume_ms:.0f} ms"
    )
    log(f"  first scrape: {first_ms:.0f} ms")
    for label, value in (("warm scrape, median", median), (f"warm scrape, p95 of {scrapes}", p95)):
        verdict = "ok" if value <= TARGET_MS else "MISSED"
        log(f"  {label:<28}{value:>7.1f} ms   target <= {TARGET_MS} ms  {verdict}")
    log(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
