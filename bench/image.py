"""The dashboard's image: its size, and how soon a container answers after `docker run`, against the targets
(250 MB; healthy within 15 s).

Run from the repository root with a Docker Engine: `DOCKER_HOST=... .venv/bin/python bench/image.py [--build]`.
--build builds the image from the Dockerfile first (`--network host`, so that an engine without a default bridge
still reaches the package index) and times it. Each start is a fresh container with a fresh data volume, so it does
what a first start does: `check --deploy`, every migration on an empty SQLite index, then gunicorn; `docker run`'s
own time (creating the container: with the vfs storage driver, a full copy of the image) is given apart. A restart of
the same container (migrations already applied) is timed too. Two times are given for each: the first 200 from
/health/ (what a proxy or a person sees), and Docker's own "healthy" (its check runs every 5 s, so it comes on the
first check after that). Prints each figure beside its target with the machine's load average; exits non-zero only
when something did not work.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from index import load_average  # noqa: E402

from devtools.localregistry import free_port  # noqa: E402

SIZE_TARGET_MB = 250
HEALTHY_TARGET_S = 15


def docker(*args: str, seconds: float = 120) -> str:
    result = subprocess.run(["docker", *args], cwd=ROOT, capture_output=True, text=True, timeout=seconds)
    if result.returncode != 0:
        sys.exit(f"docker {' '.join(args[:2])} failed: {result.stderr[-2000:]}")
    return result.stdout


def until_healthy(container: str, port: int, began: float) -> tuple[float, float]:
    """Seconds from `began` to the first 200 from /health/, and to Docker's "healthy"."""
    answered = None
    while True:
        if answered is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/", timeout=1).status_code == 200:
                    answered = time.monotonic() - began
            except requests.RequestException:
                pass
        health = json.loads(docker("inspect", "--format", "{{json .State.Health}}", container))
        if answered is not None and health and health["Status"] == "healthy":
            return answered, time.monotonic() - began
        if time.monotonic() - began > 120:
            sys.exit(f"not healthy after 120 s:\n{docker('logs', container)[-3000:]}")
        time.sleep(0.1)


def started(image: str) -> tuple[str, int, float, float, float]:
    """A fresh container: its id, port, the seconds `docker run` took (creating it: the storage driver's copy of
    the image), then to /health/ 200 and to Docker's healthy, from the start."""
    port = free_port()
    began = time.monotonic()
    container = docker(
        "run", "--detach", "--network", "host",
        "--env", f"PORT={port}", "--env", f"SECRET_KEY={secrets.token_urlsafe(40)}",
        "--env", "REGISTRY_URL=http://127.0.0.1:9", "--env", "REGISTRY_USERNAME=dashboard",
        "--env", f"REGISTRY_PASSWORD={secrets.token_urlsafe(16)}", "--env", "ALLOWED_HOSTS=127.0.0.1",
        image,
    ).strip()  # fmt: skip
    return container, port, time.monotonic() - began, *until_healthy(container, port, began)


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):5.1f} s, max {max(times):5.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="registry-ui", help="the image (compose.yaml's name for it)")
    parser.add_argument("--build", action="store_true", help="build it from the Dockerfile first, and time that")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    print(f"load average at the start: {load_average()}", flush=True)
    if options.build:
        began = time.monotonic()
        docker("build", "--network", "host", "--tag", options.image, ".", seconds=1800)
        print(f"build: {time.monotonic() - began:.0f} s (load average {load_average()})", flush=True)
    size = int(docker("image", "inspect", "--format", "{{.Size}}", options.image)) / 1e6
    print(f"image size: {size:.0f} MB (target <= {SIZE_TARGET_MB} MB)", flush=True)

    created, first, first_docker, again, again_docker = [], [], [], [], []
    for _ in range(options.runs):
        container, port, run_took, answered, healthy = started(options.image)
        created.append(run_took)
        first.append(answered)
        first_docker.append(healthy)
        began = time.monotonic()
        docker("restart", "--time", "10", container)
        answered, healthy = until_healthy(container, port, began)
        again.append(answered)
        again_docker.append(healthy)
        docker("rm", "--force", "--volumes", container)
        print(
            f"  run {len(first)}: first start {first[-1]:.1f} s (docker run returned after {run_took:.1f} s), "
            f"restart {again[-1]:.1f} s",
            flush=True,
        )
    running = [answered - took for answered, took in zip(first, created, strict=True)]
    print(f"first start, container running to /health/ 200: {summary(running)} (target <= {HEALTHY_TARGET_S} s)")
    print(f"first start, `docker run` to /health/ 200:       {summary(first)}")
    print(f"  of which `docker run` itself (create, start):  {summary(created)}")
    print(f"first start, `docker run` to Docker healthy:     {summary(first_docker)}")
    print(f"restart to /health/ 200:                         {summary(again)} (target <= {HEALTHY_TARGET_S} s)")
    print(f"restart to Docker healthy:                       {summary(again_docker)}")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
