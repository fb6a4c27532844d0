"""Peak memory of the processes that index: `manage.py sync_registry` (what the task worker runs) in a process
of its own, so that nothing of the benchmark (its pushing, its records of requests) counts.

Run from the repository root: `.venv/bin/python bench/index_memory.py --big-tags 50000` (one repository of
50,000 tags, one image each, as bench/index.py pushes them). It pushes into a fresh registry, then runs, each in
a new process: the first index (a full reconcile into an empty SQLite index), a lists reconcile (what the
scheduler runs every interval) and a full reconcile (the sweep), and prints each one's peak RSS (the kernel's
count for that child, ru_maxrss) beside the target. It asserts no target; it exits non-zero when something did
not work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from index import BIG, SERVICE_USER, fill_big, load_average  # noqa: E402

from devtools.localregistry import throwaway_registry  # noqa: E402
from registry.client import RegistryClient  # noqa: E402

RSS_TARGET_MB = 150
STEPS = {
    "first index (full reconcile, empty index)": "from catalog import sync; from registry.client import get_client; "
    "run = sync.reconcile(get_client(), sync.current_registry()); print(run.status, run.manifests_fetched)",
    "lists reconcile, nothing new": "from catalog import sync; from registry.client import get_client; "
    "run = sync.reconcile(get_client(), sync.current_registry(), verify=False); print(run.status, 0)",
    "full reconcile (the sweep), nothing new": "from catalog import sync; from registry.client import get_client; "
    "run = sync.reconcile(get_client(), sync.current_registry()); print(run.status, run.manifests_fetched)",
}


def child(code: str, environment: dict[str, str]) -> tuple[float, float, str]:
    """Run Django code in a new process; (seconds, its peak RSS in MB, its last output line)."""
    script = f"import django; django.setup(); {code}"
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    output = process.stdout.read().strip().splitlines()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"the step exited with {process.returncode}: {output[-3:]}")
    return seconds, usage.ru_maxrss / 1024, output[-1] if output else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-tags", type=int, default=50_000, help=f"tags of {BIG}")
    tags = parser.parse_args().big_tags
    print(f"{os.cpu_count()} CPUs, load average {load_average()} at the start", flush=True)
    with throwaway_registry("bench-memory-", SERVICE_USER) as (registry, password, temp):
        began = time.perf_counter()
        fill_big(RegistryClient(registry.url, SERVICE_USER, password), tags)
        print(f"pushed {tags:,} tags to {BIG} in {time.perf_counter() - began:.0f} s", flush=True)
        environment = {
            **{name: value for name, value in os.environ.items() if not name.startswith(("REGISTRY_", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "registry_ui.settings",
            "DATA_DIR": str(temp / "data"),
            "REGISTRY_URL": registry.url,
            "REGISTRY_USERNAME": SERVICE_USER,
            "REGISTRY_PASSWORD": password,
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=environment, check=True)
        rows = []
        for label, code in STEPS.items():
            seconds, peak, output = child(code, environment)
            rows.append((label, seconds, peak))
            print(f"  {label}: {seconds:.1f} s, peak RSS {peak:.0f} MB ({output}); load average {load_average()}")
        print(f"\nSummary ({tags:,} tags in one repository; load average at the end {load_average()})")
        print(f"  {'':<44}{'':>10}{'target':>12}")
        for label, seconds, peak in rows:
            verdict = "ok" if peak <= RSS_TARGET_MB else "MISSED"
            print(f"  {label:<44}{peak:>7.0f} MB   <= {RSS_TARGET_MB} MB {verdict}   ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
