"""The container image, built from the unchanged Dockerfile on a real Docker Engine and run as a user runs it:
non-root, within its size, no secret in any layer, answering its health check, telling no secret in its log.

No image can be pulled here: bin/stand-in-images makes python:3.13-slim and registry:2 from Debian's packages and
this machine's CPython, under the official names, so the Dockerfile builds as it does against Docker Hub. The image
does not depend on the database the suite runs on: it is built and run once, in the SQLite run."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import docker
import pytest
import requests

from devtools.localregistry import free_port
from tests.docker_engine import IMAGE_TEST_MARKS

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "registry-ui-test/dashboard:latest"
SIZE_LIMIT = 250_000_000

pytestmark = IMAGE_TEST_MARKS


def run(command: list[str], host: str, seconds: float) -> str:
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        timeout=seconds,
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="session")  # not per module: the Docker Engine's other tests run between these on its worker
def image(dockerd) -> str:
    """The stand-in bases, then the dashboard's image from the Dockerfile as it is (`--network host`: this engine
    has no default bridge, and pip needs the package index)."""
    run(["bash", "bin/stand-in-images", "--check"], dockerd, 600)
    began = time.monotonic()
    run(["docker", "build", "--network", "host", "--tag", IMAGE, "."], dockerd, 1200)
    print(f"image built in {time.monotonic() - began:.0f} s")
    return IMAGE


def test_the_image_runs_as_a_user_of_its_own_within_its_size_with_no_secret_baked_in(image, dockerd):
    client = docker.DockerClient(base_url=dockerd)
    built = client.images.get(image)
    assert built.attrs["Config"]["User"] not in ("", "0", "root")
    assert built.attrs["Size"] <= SIZE_LIMIT, f"{built.attrs['Size'] / 1e6:.0f} MB"
    baked = run(["docker", "history", "--no-trunc", image], dockerd, 60) + str(built.attrs["Config"])
    for name in ("SECRET_KEY", "REGISTRY_PASSWORD", "REGISTRY_NOTIFICATIONS_SECRET", "METRICS_TOKEN"):
        # collectstatic's throwaway key is the one value a build may name; it signs nothing the image serves.
        assert f"{name}=" not in baked.replace("SECRET_KEY=collectstatic-only", ""), name


def test_the_image_answers_its_health_check_soon_after_start(image, dockerd):
    port, secret_key, password = free_port(), secrets.token_urlsafe(40), secrets.token_urlsafe(16)
    began = time.monotonic()
    container = run(
        [
            "docker", "run", "--detach", "--network", "host",
            "--env", f"PORT={port}", "--env", f"SECRET_KEY={secret_key}",
            "--env", "REGISTRY_URL=http://127.0.0.1:9", "--env", "REGISTRY_USERNAME=dashboard",
            "--env", f"REGISTRY_PASSWORD={password}", "--env", "ALLOWED_HOSTS=127.0.0.1",
            image,
        ],
        dockerd,
        60,
    ).strip()  # fmt: skip
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() - began < 60, run(["docker", "logs", container], dockerd, 30)
            time.sleep(0.2)
        print(f"healthy {time.monotonic() - began:.1f} s after docker run")  # bench/image.py times it
        logs = subprocess.run(
            ["docker", "logs", container], env={**os.environ, "DOCKER_HOST": dockerd}, capture_output=True, text=True
        )
        assert secret_key not in logs.stdout + logs.stderr and password not in logs.stdout + logs.stderr
    finally:
        subprocess.run(
            ["docker", "rm", "--force", container], env={**os.environ, "DOCKER_HOST": dockerd}, capture_output=True
        )
