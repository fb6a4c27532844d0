"""The API's tag listing of a 10,000-tag repository: the server's time per page of 100, warm, against its 150 ms
target.

Run from the repository root: `.venv/bin/python bench/api.py` (or `make bench-api`). Needs the docker-registry binary
(Debian package docker-registry). It pushes one repository of 10,000 tags into a fresh registry, each its own image
(bench/index.py's big repository, fill_big), indexes it into a fresh SQLite index (a repository sync, in this
process, through the dashboard's client), makes a personal token, then walks the whole tag list 100 a page through
Django's test client, each page from the cursor of the one before, as a script would: one walk to warm up, then timed
walks, as JSON and as plain text (`format=txt`). The test client calls the dashboard in this process, so the times are
the server's own, without a network. It prints each figure beside its target with the machine's load average; it
asserts no timing target and exits non-zero only when a walk does not list exactly the registry's tags.
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

from index import SERVICE_USER, configure_django, dashboard_environment, fill_big, load_average  # noqa: E402

from devtools.localregistry import LocalRegistry, throwaway_registry  # noqa: E402
from registry.client import RegistryClient  # noqa: E402

TARGET_MS = 150
TAGS = 10_000
PAGE = 100
REPOSITORY = "big/many"
TAGS_URL = f"/api/v1/repositories/{REPOSITORY}/-/tags"


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=3, help="timed walks of the whole list, per format")
    walks = parser.parse_args().walks
    log(f"{os.cpu_count()} CPUs, load average {load_average()} at the start")
    with throwaway_registry("bench-api-", SERVICE_USER) as (registry, password, temp):
        return run(registry, password, temp / "data", walks)


def run(registry: LocalRegistry, password: str, data_dir: Path, walks: int) -> int:
    pusher = RegistryClient(registry.url, SERVICE_USER, password)
    began = time.perf_counter()
    fill_big(pusher, TAGS, REPOSITORY)
    log(f"pushed {TAGS:,} tags to {REPOSITORY} in {time.perf_counter() - began:.0f} s; load average {load_average()}")

    environment = dashboard_environment(registry, password, data_dir, secrets.token_urlsafe(24))
    configure_django({**environment, "API_RATE_LIMIT": "0"})  # a walk is 100 requests; timed walks would pass 600
    from django.contrib.auth.models import User
    from django.test import Client

    from accounts import roles
    from api.tokens import create_token
    from catalog import sync
    from registry.client import get_client

    began = time.perf_counter()
    sync.sync_repository(get_client(), sync.current_registry(), REPOSITORY)
    log(f"indexed {REPOSITORY} in {time.perf_counter() - began:.0f} s")
    user = User.objects.create_user("bench", password=secrets.token_urlsafe(16))  # a local user: no htpasswd entry
    roles.set_role(user, roles.VIEWER)
    client = Client(headers={"Authorization": f"Bearer {create_token(user, 'bench')[1]}"})

    def walk(text: bool) -> tuple[list[float], list[str]]:
        """Every page of the list, each from the `Link: rel="next"` of the one before, as a script follows it: each
        page's time, and the tags listed."""
        times, names = [], []
        url = f"{TAGS_URL}?limit={PAGE}" + ("&format=txt" if text else "")
        while url:
            began = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.content[:300]!r}")
            if text:
                names += response.content.decode().splitlines()
            else:
                names += [tag["name"] for tag in response.json()["items"]]
            url = response.get("Link", "").removeprefix("<").partition(">")[0]
        return times, names

    expected = sorted(pusher.tags(REPOSITORY))
    log(f"\nGET {TAGS_URL}?limit={PAGE}, {TAGS:,} tags: {TAGS // PAGE} pages a walk, {walks} timed walks each")
    for label, text in (("JSON", False), ("plain text", True)):
        first, names = walk(text)  # warms the caches: the registry row, the token's user, the query plans
        if sorted(names) != expected:
            distinct = len(set(names))
            log(f"the {label} walk listed {len(names):,} tags ({distinct:,} distinct); the registry holds {TAGS:,}")
            return 1
        timed = [ms for _ in range(walks) for ms in walk(text)[0]]
        log(f"  {label}: first walk's first page {first[0]:.0f} ms")
        for name, value in (
            ("warm page, median", statistics.median(timed)),
            (f"warm page, p95 of {len(timed)}", percentile(timed, 0.95)),
            ("warm page, slowest", max(timed)),
        ):
            verdict = "ok" if value <= TARGET_MS else "MISSED"
            log(f"    {name:<26}{value:>7.1f} ms   target <= {TARGET_MS} ms  {verdict}")
    log(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
