"""compose.yaml as shipped, started with `docker compose up -d` on a real Docker Engine and used as a person would:
sign in as the admin the first start made, push through the registry, see it on the dashboard, delete it there,
collect the garbage there and see the bytes freed, pull what was kept; then restart the stack and find it all again.
compose.scale.yaml (PostgreSQL, Redis, RQ, two replicas behind HAProxy): the same, plus a replica lost while people
browse (stopped, then killed), and the task worker killed in the middle of a delete job.

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
from registry.client import Descriptor, NotFound, RegistryClient
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
    deployment_checked(stack)

    # A push through the registry (as `docker push` does it), seen on the dashboard within 2 s.
    registry = RegistryClient(stack.registry_url, "admin", password)
    kept = push_image(registry, "team/app", "stable", ImageSpec(layers=[{"app": "the release"}]))
    old = push_image(registry, "team/app", "old", ImageSpec(layers=[{"blob": secrets.token_bytes(200_000)}]))
    pushed = time.monotonic()
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda tags: tags >= {"stable", "old"}, 30)
    seen_after = time.monotonic() - pushed
    print(f"pushes seen on the dashboard {seen_after:.2f} s after the push")
    assert seen_after <= 2

    job_id = deleted_on_its_page(stack, browser, registry, "team/app", "old", old.digest)
    collection = collected(stack, browser)
    pulls(stack, password, "team/app", "stable", kept)
    docker_client = requests.Session()
    docker_client.auth = ("admin", password)
    assert docker_client.put(  # the registry accepts pushes again after the collection's read-only spell
        f"{stack.registry_url}/v2/team/app/manifests/again",
        data=docker_client.get(
            f"{stack.registry_url}/v2/team/app/manifests/stable", headers={"Accept": kept.media_type}, timeout=10
        ).content,
        headers={"Content-Type": kept.media_type},
        timeout=10,
    ).status_code == 201  # fmt: skip

    restarted(stack, browser, password, {"stable", "again"}, {job_id: "done"}, collection)
    pulls(stack, password, "team/app", "stable", kept)


def deployment_checked(stack: Stack) -> None:
    """Django's deployment check, with the stack's settings, finds only the four settings that need HTTPS, which
    HTTPS_ONLY turns on (behind a proxy that terminates TLS, as the README says); with it, nothing."""
    check = ["python", "manage.py", "check", "--deploy"]
    found = stack.compose("exec", "-T", "dashboard", *check)
    https_settings = {"security.W004", "security.W008", "security.W012", "security.W016"}
    assert set(re.findall(r"\(([a-z_]+\.[A-Z]\d+)\)", found)) == https_settings, found
    assert "no issues" in stack.compose("exec", "-T", "-e", "HTTPS_ONLY=true", "dashboard", *check)


def deleted_on_its_page(
    stack: Stack, browser: requests.Session, registry: RegistryClient, repository: str, tag: str, digest: str
) -> str:
    """The image deleted from the tag's Delete page, as a maintainer does it; the worker deletes it from the
    registry. The job's id."""
    page = f"/repositories/{repository}/-/{tag}/delete/"
    answer = post_form(browser, stack.base, page, page, digest=digest, choice="image")
    job_id = re.search(r"/deletes/(\d+)/", answer.url).group(1)
    wait_for(
        lambda: get_json(browser, f"{stack.base}/api/v1/deletes/{job_id}"), lambda job: job["status"] == "done", 60
    )
    assert resolved(registry, repository, tag) is None
    return job_id


def collected(stack: Stack, browser: requests.Session) -> dict:
    """A garbage collection from the dashboard: the GC page's disk figures (read through the socket proxy), a dry
    run, then the collection (the registry recreated read-only and back). The collection's run; it freed the
    deleted image's 200 KB of random bytes."""
    gc_page = browser.get(f"{stack.base}/gc/", timeout=30).text
    assert "Registry storage" in gc_page and "storage folder holds" in gc_page  # the volume's figures, via exec
    answer = post_form(browser, stack.base, "/gc/", "/gc/dry-run/")
    dry_run = re.search(r"/gc/(\d+)/", answer.url).group(1)
    wait_for(
        lambda: get_json(browser, f"{stack.base}/api/v1/gc/runs/{dry_run}"), lambda run: run["status"] == "done", 120
    )
    began = time.monotonic()
    answer = post_form(browser, stack.base, f"/gc/{dry_run}/", f"/gc/{dry_run}/collect/", confirm="yes")
    collection = re.search(r"/gc/(\d+)/", answer.url).group(1)
    assert collection != dry_run, answer.text[:2000]
    run = wait_for(
        lambda: get_json(browser, f"{stack.base}/api/v1/gc/runs/{collection}"),
        lambda run: run["status"] in ("done", "failed"),
        180,
    )
    assert run["status"] == "done", run
    assert run["bytes_freed"] >= 150_000, run
    print(f"collection freed {run['bytes_freed']} bytes in {time.monotonic() - began:.1f} s")
    return run


def pulls(stack: Stack, password: str, repository: str, tag: str, image) -> None:
    """The tag pulls as `docker pull` reads it: its manifest, then its config and every layer, whole."""
    client = requests.Session()
    client.auth = ("admin", password)
    url = f"{stack.registry_url}/v2/{repository}"
    manifest = client.get(f"{url}/manifests/{tag}", headers={"Accept": image.media_type}, timeout=10)
    assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == image.digest
    for layer in [manifest.json()["config"], *manifest.json()["layers"]]:
        blob = client.get(f"{url}/blobs/{layer['digest']}", timeout=10)
        assert blob.status_code == 200 and len(blob.content) == layer["size"]


def restarted(
    stack: Stack, browser: requests.Session, password: str, tags: set[str], jobs: dict[str, str], run: dict
) -> None:
    """`docker compose restart`, and the volumes kept it all: the registry's tags, the index, the delete jobs, the
    collection, the sign-in (`tags`: team/app's); and the init service, run again, made nothing new."""
    began = time.monotonic()
    stack.compose("restart", seconds=600)
    stack.wait_until_healthy()
    print(f"{stack.file}: healthy again {time.monotonic() - began:.1f} s after `restart` began")
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda found: found == tags, 30)
    for job_id, status in jobs.items():
        assert get_json(browser, f"{stack.base}/api/v1/deletes/{job_id}")["status"] == status
    assert get_json(browser, f"{stack.base}/api/v1/gc/runs/{run['id']}")["bytes_freed"] == run["bytes_freed"]
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


def test_the_scale_out_stack_survives_a_lost_replica_and_a_killed_worker_and_collects_and_restarts(scaled_stack):
    stack = scaled_stack
    password, browser = started(stack)
    deployment_checked(stack)
    replicas = stack.compose("ps", "-q", "dashboard").split()
    assert len(replicas) == 2

    registry = RegistryClient(stack.registry_url, "admin", password)
    kept = push_image(registry, "team/app", "stable", ImageSpec(layers=[{"app": "the release"}]))
    pushed = time.monotonic()
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda tags: "stable" in tags, 30)
    print(f"push seen on the dashboard {time.monotonic() - pushed:.2f} s after it")
    assert time.monotonic() - pushed <= 2

    # People browse (four of them, without pause) while one replica is stopped, then started again; then the other
    # is killed (SIGKILL: requests in flight are cut off) and started again.
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
    wait_for(stack.states, lambda states: states["dashboard"] == "healthy", 60)
    time.sleep(3)  # HAProxy's check finds it up again (every 2 s)
    stack.docker("kill", "--signal", "KILL", replicas[1])
    time.sleep(8)
    stack.docker("start", replicas[1])
    time.sleep(3)
    stop.set()
    for person in people:
        person.join(60)
    print(f"{sum(counts)} pages while a replica was stopped, then another killed; {len(failures)} failed")
    assert sum(counts) > 80 and failures == []

    job_id, many = killed_worker_job(stack, browser, registry)

    old = push_image(registry, "team/app", "old", ImageSpec(layers=[{"blob": secrets.token_bytes(200_000)}]))
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/app"), lambda tags: "old" in tags, 30)
    deleted = deleted_on_its_page(stack, browser, registry, "team/app", "old", old.digest)  # the restarted worker
    collection = collected(stack, browser)
    pulls(stack, password, "team/app", "stable", kept)
    pulls(stack, password, "team/many", "keep", many)

    restarted(stack, browser, password, {"stable"}, {job_id: "failed", deleted: "done"}, collection)
    pulls(stack, password, "team/app", "stable", kept)
    pulls(stack, password, "team/many", "keep", many)


def killed_worker_job(stack: Stack, browser: requests.Session, registry: RegistryClient) -> tuple[str, Descriptor]:
    """A delete job of 300 tags through the API; the RQ worker killed (SIGKILL, nothing said to it) while it runs,
    then started again. The scheduler ends the job once its heartbeat has been silent for a minute, and the
    restarted worker reads back what became of the tags the job had not written down: every tag's outcome is then
    what the registry shows. The job's id, and the image that kept a tag."""
    image = push_image(registry, "team/many", "keep", ImageSpec(layers=[{"app": "many tags"}]))
    body, media_type = registry.manifest_bytes("team/many", image.digest)
    chosen = {f"v{number:03}" for number in range(300)}
    for tag in sorted(chosen):  # one image, 301 tags: each chosen tag is removed alone, one after another
        registry.put_manifest("team/many", tag, body, media_type)
    wait_for(lambda: tags_on_dashboard(browser, stack.base, "team/many"), lambda tags: tags >= chosen, 60)

    headers = {"X-CSRFToken": browser.cookies["csrftoken"]}
    draft = browser.post(
        f"{stack.base}/api/v1/deletes",
        json={"repository": "team/many", "filter": {"pattern": "^v"}},
        headers=headers,
        timeout=30,
    )
    assert draft.status_code == 201 and draft.json()["total"] == 300, draft.text[:1000]
    job_url = f"{stack.base}/api/v1/deletes/{draft.json()['id']}"
    confirmed = browser.post(f"{job_url}/confirm", headers=headers, timeout=30)
    assert confirmed.status_code == 202, confirmed.text[:1000]

    worker = stack.compose("ps", "-q", "worker").split()[0]
    progress = wait_for(lambda: get_json(browser, job_url), lambda job: job["done"] >= 32, 120)  # a chunk written
    time.sleep(0.5)  # into the next chunk, whose outcomes are not written down yet
    stack.docker("kill", "--signal", "KILL", worker)
    killed = time.monotonic()
    print(f"worker killed with {progress['done']} of 300 tags written down")
    time.sleep(2)
    stack.docker("start", worker)

    job = wait_for(lambda: get_json(browser, job_url), lambda job: job["status"] in ("done", "failed"), 240)
    print(f"job {job['status']} {time.monotonic() - killed:.0f} s after the kill: {job['error']}")
    # What the registry shows now (nothing writes team/many any more): each tag gone, still on the image, left on a
    # removal's placeholder by the kill, or (by nobody here) moved.
    now = registry.map(lambda tag: resolved(registry, "team/many", tag), sorted(chosen))
    truth = {
        tag: "done" if digest is None
        else "not-attempted" if digest == image.digest
        else "failed" if registry.is_placeholder("team/many", digest)
        else "skipped"
        for tag, digest in zip(sorted(chosen), now, strict=True)
    }  # fmt: skip
    assert 0 < list(truth.values()).count("done") < 300, truth  # the kill came in the middle of the job

    def outcomes() -> dict[str, str]:
        return {row["tag"]: row["outcome"] for row in get_json(browser, job_url)["results"]}

    wait_for(outcomes, lambda found: found == truth, 120)
    job = get_json(browser, job_url)
    read_back = [row for row in job["results"] if "read back" in row["message"]]
    print(
        f"{list(truth.values()).count('done')} tags removed, {list(truth.values()).count('not-attempted')} not "
        f"attempted, {len(read_back)} outcomes read back from the registry; all settled "
        f"{time.monotonic() - killed:.0f} s after the kill"
    )
    assert job["status"] == "failed" and "worker" in job["error"], job["error"]
    return str(job["id"]), image


def resolved(registry: RegistryClient, repository: str, tag: str) -> str | None:
    """The digest the tag points to, or None once it is gone."""
    try:
        return registry.resolve(repository, tag)
    except NotFound:
        return None
