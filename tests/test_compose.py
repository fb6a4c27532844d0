"""compose.yaml as shipped, started with `docker compose up -d` on a real Docker Engine and used as a person would:
sign in as the admin the first start made, push through the registry, see it on the dashboard, delete it there,
collect the garbage there and see the bytes freed, pull what was kept; then restart the stack and find it all again.
compose.scale.yaml (PostgreSQL, Redis, RQ, two replicas behind HAProxy): up, sign in, a push seen, and a replica
lost while people browse.

The images come from bin/stand-in-images (no image can be pulled here) and the Dockerfile as it is. The one change
to the shipped files is tests/data/compose.host-build.yaml: this engine has no default bridge, so the image build
reaches the package index through the host's network. The stack runs on compose.yaml's own networks, with its
ports published on free ones (DASHBOARD_PORT, REGISTRY_PORT) and its registry container named for this run."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from devtools.images import ImageSpec, push_image
from devtools.localregistry import free_port
from registry.client import RegistryClient
from tests.demo import post_form, sign_in
from tests.docker_engine import IMAGE_TEST_MARKS

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("registry", "dashboard", "notifications", "worker", "notifications-worker", "scheduler", "docker-proxy")
SCALE_SERVICES = (*SERVICES, "postgres", "redis", "proxy")

pytestmark = IMAGE_TEST_MARKS


class Stack:
    def __init__(self, docker_host: str, file: str = "compose.yaml", services: tuple[str, ...] = SERVICES) -> None:
        self.file, self.services = file, services
        self.project = f"registryui{secrets.token_hex(3)}"
        self.dashboard_port, self.registry_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "DOCKER_HOST": docker_host,
            "DOCKER_SOCKET": docker_host.removeprefix("unix://"),
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
            "COMPOSE_PROJECT_NAME": self.project,
            # The tests' engine stores images with vfs, a full copy per container: creating a stack's ten takes
            # minutes on a busy machine, longer than compose's default 60 s per request.
            "COMPOSE_HTTP_TIMEOUT": "600",
            "DASHBOARD_PORT": str(self.dashboard_port),
            "REGISTRY_PORT": str(self.registry_port),
            "REGISTRY_CONTAINER": f"{self.project}-registry",
            "REGISTRY_PUBLIC_HOST": f"127.0.0.1:{self.registry_port}",
        }
        self.base = f"http://127.0.0.1:{self.dashboard_port}"
        self.registry_url = f"http://127.0.0.1:{self.registry_port}"

    def compose(self, *args: str, seconds: float = 300, check: bool = True) -> str:
        command = ["docker-compose", "-f", self.file, "-f", "tests/data/compose.host-build.yaml", *args]
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=seconds)
        assert not check or result.returncode == 0, (
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result.stdout + result.stderr

    def docker(self, *args: str) -> str:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def states(self) -> dict[str, str]:
        """service -> "running", "healthy", "exited 0", ... (the least ready of a service's containers)"""
        ids = self.compose("ps", "-q").split()
        found: dict[str, str] = {}
        for container_id in ids:
            line = subprocess.run(
                ["docker", "inspect", "-f",
                 '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} '
                 "{{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.ExitCode}}",
                 container_id],
                env=self.env, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            if line:
                service, status, *rest = line
                state = rest[0] if status == "running" and len(rest) == 2 else status
                if status == "exited":
                    state = f"exited {rest[-1]}"
                if found.get(service, "healthy") in ("healthy", "running"):
                    found[service] = state
        return found

    def wait_until_healthy(self, seconds: float = 300) -> float:
        began = time.monotonic()
        while True:
            states = self.states()
            if states.get("dashboard") == "healthy" and all(
                states.get(service) in ("running", "healthy") for service in self.services
            ):
                return time.monotonic() - began
            assert time.monotonic() - began < seconds, f"{states}\n{self.compose('logs', '--tail=30', check=False)}"
            time.sleep(1)


def built(stack: Stack, docker_host: str) -> Stack:
    made = subprocess.run(
        ["bash", "bin/stand-in-images", "--check"],
        cwd=ROOT, env={**os.environ, "DOCKER_HOST": docker_host}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    began = time.monotonic()
    stack.compose("build", "init", seconds=1200)  # every service runs this image (compose.yaml's `image:`)
    print(f"image built (or found in the build cache) in {time.monotonic() - began:.0f} s")
    return stack


@pytest.fixture
def stack(dockerd):
    stack = built(Stack(dockerd), dockerd)
    try:
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


@pytest.fixture
def scaled_stack(dockerd):
    stack = built(Stack(dockerd, "compose.scale.yaml", SCALE_SERVICES), dockerd)
    try:
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def get_json(session: requests.Session, url: str) -> dict:
    answer = session.get(url, timeout=10)
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return answer.json()


def wait_for(read, done, seconds: float):
    deadline = time.monotonic() + seconds
    while not done(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.2)
    return value


def tags_on_dashboard(session: requests.Session, base: str, repository: str) -> set[str]:
    answer = session.get(f"{base}/api/v1/repositories/{repository}/-/tags?format=txt&limit=1000", timeout=10)
    return set(answer.text.split()) if answer.status_code == 200 else set()


def started(stack: Stack) -> tuple[str, requests.Session]:
    """`up -d` to healthy; the first admin's password (from the init service's log, where it is printed once) and
    a browser signed in with it."""
    began = time.monotonic()
    stack.compose("up", "-d", "--no-build")
    stack.wait_until_healthy()
    print(f"{stack.file}: healthy {time.monotonic() - began:.1f} s after `up -d` began")
    assert stack.states()["init"] == "exited 0"
    match = re.search(r"as admin with the password (\S+)", stack.compose("logs", "--no-color", "init"))
    assert match, stack.compose("logs", "--no-color", "init")
    password = match.group(1)
    browser = sign_in(stack.base, "admin", password)
    assert "Log out" in browser.get(f"{stack.base}/", timeout=10).text
    return password, browser


def test_docker_compose_up_gives_a_registry_and_dashboard_that_push_delete_collect_and_survive_a_restart(stack):
    password, browser = started(stack)

    # A push through the registry (as `docker push` does it), seen on the dashboard within 2 s.
    registry = RegistryClient(stack.registry_url, "admin", password)
    docker_client = requests.Session()  # what `docker pull` sends, signed in as the admin
    docker_client.auth = ("admin", password)
    kept = push_image(registry, "team/app", "stable", ImageSpec(layers=[{"app": "the release"}]))
    old = push_image(registry, "team/app", "old", ImageSpec(layers=[{"blob": secrets.token_bytes(200_000)}]))
    pushed = time.monotonic()
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda tags: tags >= {"stable", "old"}, 30)
    seen_after = time.monotonic() - pushed
    print(f"pushes seen on the dashboard {seen_after:.2f} s after the push")
    assert seen_after <= 2

    # Delete the old image on the dashboard; the worker deletes it from the registry.
    answer = post_form(
        browser, stack.base, "/repositories/team/app/-/old/delete/", "/repositories/team/app/-/old/delete/",
        digest=old.digest, choice="image",
    )  # fmt: skip
    job_id = re.search(r"/deletes/(\d+)/", answer.url).group(1)
    wait_for(
        lambda: get_json(browser, f"{stack.base}/api/v1/deletes/{job_id}"), lambda job: job["status"] == "done", 60
    )
    assert docker_client.head(f"{stack.registry_url}/v2/team/app/manifests/old", timeout=5).status_code == 404

    # The garbage collection, from the dashboard: a dry run, then the collection, through the socket proxy.
    gc_page = browser.get(f"{stack.base}/gc/", timeout=30).text
    assert "Registry storage" in gc_page and "storage folder holds" in gc_page  # the volume's figures, via exec
    answer = post_form(browser, stack.base, "/gc/", "/gc/dry-run/")
    dry_run = re.search(r"/gc/(\d+)/", answer.url).group(1)
    wait_for(
        lambda: get_json(browser, f"{stack.base}/api/v1/gc/runs/{dry_run}"), lambda run: run["status"] == "done", 120
    )
    answer = post_form(browser, stack.base, f"/gc/{dry_run}/", f"/gc/{dry_run}/collect/", confirm="yes")
    collection = re.search(r"/gc/(\d+)/", answer.url).group(1)
    assert collection != dry_run, answer.text[:2000]
    run = wait_for(
        lambda: get_json(browser, f"{stack.base}/api/v1/gc/runs/{collection}"),
        lambda run: run["status"] in ("done", "failed"),
        180,
    )
    assert run["status"] == "done", run
    assert run["bytes_freed"] >= 150_000, run  # the old image's 200 KB of random bytes, gone for good
    print(f"collection freed {run['bytes_freed']} bytes")

    def kept_tag_pulls() -> None:
        manifest = docker_client.get(
            f"{stack.registry_url}/v2/team/app/manifests/stable",
            headers={"Accept": kept.media_type},
            timeout=10,
        )
        assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == kept.digest
        for layer in [manifest.json()["config"], *manifest.json()["layers"]]:
            blob = docker_client.get(f"{stack.registry_url}/v2/team/app/blobs/{layer['digest']}", timeout=10)
            assert blob.status_code == 200 and len(blob.content) == layer["size"]

    kept_tag_pulls()
    assert docker_client.put(  # the registry accepts pushes again after the collection's read-only spell
        f"{stack.registry_url}/v2/team/app/manifests/again",
        data=docker_client.get(
            f"{stack.registry_url}/v2/team/app/manifests/stable", headers={"Accept": kept.media_type}, timeout=10
        ).content,
        headers={"Content-Type": kept.media_type},
        timeout=10,
    ).status_code == 201  # fmt: skip

    # Restart: the volumes keep the registry, the index, the jobs, the runs and the sign-in.
    stack.compose("restart", seconds=300)
    stack.wait_until_healthy()
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda tags: tags == {"stable", "again"}, 30)
    assert get_json(browser, f"{stack.base}/api/v1/deletes/{job_id}")["status"] == "done"
    assert get_json(browser, f"{stack.base}/api/v1/gc/runs/{collection}")["bytes_freed"] == run["bytes_freed"]
    kept_tag_pulls()
    # A second start made nothing new: the same admin password still signs in, and no new one was printed.
    assert "Log out" in sign_in(stack.base, "admin", password).get(f"{stack.base}/", timeout=10).text
    assert stack.compose("logs", "--no-color", "init").count("with the password") == 1


def browse(stack: Stack, session: requests.Session, pages: list[str], stop: threading.Event, failures: list) -> int:
    """GET the pages round and round until told to stop; each answer that is not a 200 is a failure."""
    count = 0
    while not stop.is_set():
        for page in pages:
            try:
                answer = session.get(f"{stack.base}{page}", timeout=30)
                if answer.status_code != 200:
                    failures.append(f"{page}: {answer.status_code}")
            except requests.RequestException as exc:
                failures.append(f"{page}: {exc}")
            count += 1
    return count


def test_the_scale_out_stack_serves_through_a_lost_replica(scaled_stack):
    stack = scaled_stack
    password, browser = started(stack)
    replicas = stack.compose("ps", "-q", "dashboard").split()
    assert len(replicas) == 2

    registry = RegistryClient(stack.registry_url, "admin", password)
    push_image(registry, "team/app", "stable", ImageSpec(layers=[{"app": "the release"}]))
    pushed = time.monotonic()
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda tags: "stable" in tags, 30)
    print(f"push seen on the dashboard {time.monotonic() - pushed:.2f} s after it")
    assert time.monotonic() - pushed <= 2

    # People browse (four of them, without pause) while one replica is stopped, then started again.
    pages = ["/", "/repositories/", "/repositories/team/app/", "/repositories/team/app/-/stable/", "/storage/"]
    stop, failures, counts = threading.Event(), [], []

    def person() -> None:
        counts.append(browse(stack, sign_in(stack.base, "admin", password), pages, stop, failures))

    people = [threading.Thread(target=person) for _ in range(4)]
    for person in people:
        person.start()
    time.sleep(3)
    stack.docker("stop", replicas[0])
    time.sleep(8)
    stack.docker("start", replicas[0])
    time.sleep(3)
    stop.set()
    for person in people:
        person.join(60)
    print(f"{sum(counts)} pages while a replica stopped and started again; {len(failures)} failed")
    assert sum(counts) > 40 and failures == []
