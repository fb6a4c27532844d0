"""The index at scale: a 200-repository registry with one 10,000-tag repository, built on this machine.

Run from the repository root: `.venv/bin/python bench/index.py` (or `make bench-index`); for 100,000 tags (one
repository of 50,000): `bench/index.py --big-tags 50000 --medium 49` (49 more repositories of 1,000). Needs the
docker-registry binary (Debian package docker-registry). It prints numbers next to their targets and asserts
no timing target; it exits non-zero only when something did not work (a page not 200, a push that never
showed up, a reconcile that failed).

Measured, in this order, from one run:
  1 setup        pushing the registry: big/many (10,000 tags, one image each) and 199 small repositories
  2 full index   sync.reconcile() into an empty SQLite index, in this process, through the dashboard's client;
                 its requests against what it cannot do without (counted in the registry's access log); then,
                 with nothing new, the lists reconcile the scheduler runs every interval and the full one (the
                 sweep: a HEAD per tag) beside the registry's own time for the same requests; this process's
                 peak RSS, and the database's size
  3 raw rate     the same requests the reconcile made, replayed with plain requests (8 in flight, no parsing)
  4 warm pages   repository list, the 10,000-tag page (page 1 and a middle page), search: Django's test client
  5 push delay   the real stack (gunicorn, db_worker) with registry notifications on: push, then poll the page
  6 memory       the gunicorn worker's peak RSS after all the page loads through it

The registry posts its notifications to the gunicorn port from the start. LocalRegistry's notification
config forwards every event (pulls and blob pushes too), so phases 1-3 make it post tens of thousands of
events before gunicorn runs; a stand-in on that port accepts and counts them meanwhile, so that phase 5 measures
a push, not the draining of that backlog (the registry delivers events one at a time, in order).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests

from devtools.images import ImageSpec, layer, push_config_image, push_image, push_index
from devtools.localregistry import LocalRegistry, free_port
from registry.client import (
    MANIFEST_ACCEPT,
    RegistryClient,
)
from registry.htpasswd import add_user

BIG = "big/many"
BIG_TAGS = 10_000  # --big-tags
SMALL_REPOSITORIES = 199
MEDIUM_REPOSITORIES = (
    0  # --medium-repositories: each MEDIUM_TAGS tags (the 100,000-tag run: --big-tags 50000 --medium 49)
)
MEDIUM_TAGS = 1_000
PUSHES = 10  # phase 5: alternately to a small repository and to big/many
SERVICE_USER = "dashboard"
BENCH_USER = "bench"
WARM_RUNS = 20
GUNICORN_LOADS = 3
VISIBLE_TIMEOUT = 60.0  # seconds a pushed tag may take to show up before the run counts it as failed
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
PLATFORMS = [("amd64", ""), ("arm64", "v8")]


def pages() -> dict[str, str]:
    last = -(-BIG_TAGS // 50)
    return {
        "repository list": "/repositories/",
        f"{BIG} page 1": f"/repositories/{BIG}/?sort=created&dir=desc",
        f"{BIG} page {last // 2} by created": f"/repositories/{BIG}/?sort=created&dir=desc&page={last // 2}",
        f"{BIG} last page by size": f"/repositories/{BIG}/?sort=size&dir=asc&page={last}",
        f"{BIG} last page by name": f"/repositories/{BIG}/?sort=name&page={last}",
        "search build-77": "/search/?q=build-77",
        "storage": "/storage/",
    }


PAGE_TARGET_MS = 150
STORAGE_TARGET_MS = 300
RECONCILE_TARGET_S = 60  # a reconcile (the scheduler's: tags lists) that finds nothing new
RSS_TARGET_MB = 150
TIME_TARGET = 1.5  # the first index's time, at most this many times the registry's own for the same requests
REQUESTS_TARGET = 1.05  # its requests, at most this many times what it cannot do without
ACCESS_LINE = re.compile(rb'"(?:GET|HEAD) /v2/[^"]* HTTP/1\.1" \d{3} ')  # the registry's access log, one per request
DELAY_TARGET_S = 2.0

# Accepts the registry's notifications (and counts them by action) until gunicorn takes the port over.
STAND_IN = r"""
import json, os, signal, sys
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = Counter()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            counts.update(str(event.get("action")) for event in json.loads(body).get("events", []))
        except (ValueError, AttributeError):
            counts["unreadable"] += 1
        self.answer(b"")

    def do_GET(self):
        self.answer(json.dumps(counts).encode())

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# The dashboard's settings, with the collected static files in the run's temporary folder instead of the
# checkout's staticfiles/ (which this run leaves alone): the run command collects them the same way.
SETTINGS_MODULE = "bench_index_settings"
SETTINGS_TEXT = """\
import os
from pathlib import Path

from registry_ui.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["BENCH_STATIC_ROOT"])
"""


def log(message: str) -> None:
    print(message, flush=True)


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def ms(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


# --- Counting the dashboard's registry requests ---------------------------------------------------


class RequestRecorder:
    """Counts (and, while recording, keeps) every request any RegistryClient sends through _send."""

    def __init__(self) -> None:
        self.recording = False
        self.requests: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()
        original = RegistryClient._send

        def recording_send(client, method, url, *args, **kwargs):
            if self.recording:
                headers = {key: value for key, value in (kwargs.get("headers") or {}).items() if key == "Accept"}
                with self._lock:
                    self.requests.append((method, url, headers))
            return original(client, method, url, *args, **kwargs)

        RegistryClient._send = recording_send


# --- Phase 1: the registry ----------------------------------------------------------------------------


def small_name(number: int) -> str:
    return f"team{number % 12}/service-{number:03d}"


def fill_big(client: RegistryClient, count: int, repository: str = BIG) -> None:
    """`count` tags, each its own image (a distinct config, one shared layer), created in shuffled order;
    three requests a tag, as tests/conftest.py fill_big_repository writes them."""
    minutes = list(range(count))
    random.Random(7).shuffle(minutes)
    created = {f"build-{n}": BASE_TIME + timedelta(minutes=minute) for n, minute in enumerate(minutes)}
    shared = client.upload_blob(repository, layer({"etc/os-release": "ID=big\n"}), LAYER_TYPE)
    labels = {"in": repository}  # images of different repositories differ

    def push(tag: str) -> None:
        push_config_image(client, repository, tag, created[tag], shared, {"build": tag, **labels})

    client.map(push, list(created))


def fill_small(client: RegistryClient, number: int) -> tuple[int, int]:
    """3 or 4 versions and `latest` (the newest version again). Every 4th repository is multi-arch
    (an OCI index over two platforms), every 8th with attestations. Returns (tags, multi-arch tags)."""
    name = small_name(number)
    versions = 3 + number % 2
    multi, attest = number % 4 == 0, number % 8 == 0
    base = {"etc/os-release": f"ID=team{number % 12}\n"}
    descriptor = None
    for version in range(versions):
        tag = f"1.{version}"
        files = {f"srv/{name}/{tag}.txt": f"{name} {tag}\n" * 20}
        created = BASE_TIME + timedelta(days=number % 30, hours=version)
        labels = {"org.opencontainers.image.version": tag, "team": f"team{number % 12}"}
        if multi:
            specs = [
                ImageSpec(
                    layers=[base, {**files, "arch": arch}],
                    created=created,
                    architecture=arch,
                    variant=variant,
                    labels=labels,
                )
                for arch, variant in PLATFORMS
            ]
            descriptor = push_index(client, name, tag, specs, attest=attest)
        else:
            descriptor = push_image(client, name, tag, ImageSpec(layers=[base, files], created=created, labels=labels))
    body = client.request(
        "GET", f"/v2/{name}/manifests/{descriptor.digest}", headers={"Accept": MANIFEST_ACCEPT}
    ).content
    client.put_manifest(name, "latest", body, descriptor.media_type)
    return versions + 1, (versions + 1) if multi else 0


# --- Phase 3: the registry alone ----------------------------------------------------------------------


def replay(base_requests: list[tuple[str, str, dict]], password: str) -> tuple[float, int]:
    """The same requests with plain requests sessions (one per thread), 8 in flight, bodies read, not parsed.
    Returns (seconds, answers of 400 or more)."""
    local = threading.local()

    def send(item: tuple[str, str, dict]) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = (SERVICE_USER, password)
        method, url, headers = item
        response = session.request(method, url, headers=headers, timeout=30)
        response.content  # noqa: B018  (read the whole body, as the client does)
        return response.status_code

    began = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, base_requests))
    return time.perf_counter() - began, sum(1 for status in statuses if status >= 400)


# --- Processes ----------------------------------------------------------------------------------------


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with code {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:g} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def gunicorn_worker_pid(master: int) -> int | None:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def current_rss_mb() -> float:
    return int(re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1)) / 1024


def peak_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else None


def reset_peak_rss() -> None:
    """Start this process's VmHWM again from its current RSS (Linux: clear_refs 5), so that the indexing's peak is
    not the pushing's."""
    Path("/proc/self/clear_refs").write_text("5")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- Django in this process -------------------------------------------------------------------------


def configure_django(environment: dict[str, str]) -> None:
    os.environ.update(environment, DJANGO_SETTINGS_MODULE="registry_ui.settings", ALLOWED_HOSTS="testserver")
    import django
    from django.core.management import call_command
    from django.test.utils import override_settings

    django.setup()
    # Plain static storage, as the test suite uses: the test client's pages need no collectstatic manifest.
    override_settings(STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }).enable()  # fmt: skip
    call_command("migrate", interactive=False, verbosity=0)


def dashboard_environment(registry: LocalRegistry, service_password: str, data_dir: Path, secret: str) -> dict:
    """What gunicorn and the worker get (and this process, for its in-process phases)."""
    keep = ("REGISTRY_", "DJANGO_", "DATABASE_URL", "REDIS_URL", "TASKS", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")
    for name in [name for name in os.environ if name.startswith(keep)]:
        del os.environ[name]
    return {
        "DATA_DIR": str(data_dir),  # SQLite at DATA_DIR/db.sqlite3 (WAL), as the run command uses it
        "REGISTRY_URL": registry.url,
        "REGISTRY_USERNAME": SERVICE_USER,
        "REGISTRY_PASSWORD": service_password,
        "REGISTRY_HTPASSWD_PATH": str(registry.htpasswd),
        "REGISTRY_NOTIFICATIONS_SECRET": secret,
        # Pages must show what the index holds, not revalidate the repository themselves.
        "REGISTRY_CACHE_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
    }


# --- The run --------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, temp: Path) -> None:
        self.temp = temp
        self.failures: list[str] = []
        self.results: dict[str, object] = {}
        self.processes: dict[str, subprocess.Popen] = {}

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"FAILED: {message}", file=sys.stderr, flush=True)

    def main(self) -> int:
        began = time.perf_counter()
        log(f"{os.cpu_count()} CPUs, load average {load_average()} at the start")
        web_port = free_port()
        secret = secrets.token_urlsafe(24)
        registry = LocalRegistry(
            self.temp / "registry",
            notifications_url=f"http://127.0.0.1:{web_port}/notifications/",
            notifications_secret=secret,
            access_log=True,  # phase 2 counts the requests the registry saw
        )
        registry.write_config()
        service_password, bench_password = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        # Cost 4, as the run command sets for its service account: the registry checks bcrypt on every request.
        add_user(registry.htpasswd, SERVICE_USER, service_password, cost=4)
        add_user(registry.htpasswd, BENCH_USER, bench_password, cost=4)
        try:
            self.processes["stand-in"] = subprocess.Popen(
                [sys.executable, "-c", STAND_IN, str(web_port)], stdout=subprocess.DEVNULL
            )
            wait_for_port(web_port, self.processes["stand-in"])
            with open(self.temp / "registry.log", "ab") as registry_log:
                registry.start(log=registry_log)
            self.run(registry, service_password, bench_password, web_port, secret)
        except Exception as exc:
            self.fail(f"{type(exc).__name__}: {exc}")
            import traceback

            traceback.print_exc()
        finally:
            for name in ("gunicorn", "worker", "stand-in"):
                stop(self.processes.get(name))
            registry.stop()
        self.summary(time.perf_counter() - began)
        for name, path in (("gunicorn", "gunicorn.log"), ("worker", "worker.log"), ("registry", "registry.log")):
            if self.failures and (text := tail(self.temp / path)):
                print(f"\n--- last lines of the {name} log ---\n{text}", file=sys.stderr)
        return 1 if self.failures else 0

    def run(self, registry: LocalRegistry, service_password: str, bench_password: str, web_port: int, secret: str):
        recorder = RequestRecorder()
        pusher = RegistryClient(registry.url, SERVICE_USER, service_password)

        # 1. Setup
        log(f"\n1. Pushing {BIG} ({BIG_TAGS:,} tags) and {SMALL_REPOSITORIES} small repositories to {registry.url}")
        started = time.perf_counter()
        fill_big(pusher, BIG_TAGS)
        big_seconds = time.perf_counter() - started
        counts = pusher.map(lambda number: fill_small(pusher, number), range(SMALL_REPOSITORIES))
        for number in range(MEDIUM_REPOSITORIES):
            fill_big(pusher, MEDIUM_TAGS, f"medium/repository-{number:02d}")
        push_seconds = time.perf_counter() - started
        small_tags, multi_tags = sum(tags for tags, _ in counts), sum(multi for _, multi in counts)
        total_tags = BIG_TAGS + small_tags + MEDIUM_REPOSITORIES * MEDIUM_TAGS
        self.results["push"] = push_seconds
        log(
            f"   {total_tags:,} tags in {SMALL_REPOSITORIES + 1} repositories ({multi_tags} of them multi-arch tags) "
            f"in {push_seconds:.1f} s ({BIG}: {big_seconds:.1f} s); load average {load_average()}"
        )

        # 2. Full index
        environment = dashboard_environment(registry, service_password, self.temp / "data", secret)
        configure_django(environment)
        from django.db import connections
        from django.test import Client

        from catalog import sync
        from catalog.models import RegistryEvent, SyncRun, Tag
        from registry.client import get_client, reset_client

        reset_client()
        del counts  # the setup's memory is not the index's
        gc.collect()
        reset_peak_rss()
        log(
            f"\n2. Full reconcile into an empty index ({environment['DATA_DIR']}/db.sqlite3); this process's RSS "
            f"{current_rss_mb():,.0f} MB before it (its peak is measured from here)"
        )
        registry_log = self.temp / "registry.log"
        log_offset = registry_log.stat().st_size
        recorder.recording = True
        started = time.perf_counter()
        run = sync.reconcile(get_client(), sync.current_registry())
        index_seconds = time.perf_counter() - started
        recorder.recording = False
        made = list(recorder.requests)
        time.sleep(0.5)  # the registry's last log lines
        with open(registry_log, "rb") as lines:
            lines.seek(log_offset)
            seen = sum(1 for line in lines if ACCESS_LINE.search(line))
        self.results.update(seen=seen)
        indexed = Tag.objects.count()
        manifest_gets = sum(1 for method, url, _ in made if method == "GET" and "/manifests/" in url)
        self.results.update(index_seconds=index_seconds, manifests=run.manifests_fetched, requests=len(made))
        log(
            f"   {index_seconds:.1f} s, status {run.status}; {run.manifests_fetched:,} manifests fetched "
            f"({run.manifests_fetched / index_seconds:,.0f}/s; {manifest_gets:,} manifest GETs with index children); "
            f"{len(made):,} registry requests ({len(made) / index_seconds:,.0f}/s); {indexed:,} tags indexed; "
            f"load average {load_average()}"
        )
        if run.status != SyncRun.DONE or run.errors:
            self.fail(f"the reconcile ended {run.status} with errors {run.errors[:3]}")
        if indexed != total_tags:
            self.fail(f"the index holds {indexed:,} tags, the registry {total_tags:,}")
        # What a first index cannot do without: each catalog page and tags list, each tag, each distinct config,
        # and each platform image (or attestation) inside a multi-platform image, which only a GET of it reveals.
        from catalog.models import Manifest, ManifestChild

        lists = sum(1 for method, url, _ in made if method == "GET" and ("_catalog" in url or "/tags/list" in url))
        configs = Manifest.objects.exclude(config_digest="").values("config_digest").distinct().count()
        children = ManifestChild.objects.values("child").distinct().count()
        needed = lists + indexed + configs + children
        self.results.update(needed=needed)
        log(
            f"   needed: {lists:,} catalog pages and tags lists + {indexed:,} tags + {configs:,} distinct configs + "
            f"{children:,} images inside multi-platform ones = {needed:,}; sent {len(made):,} = "
            f"{len(made) / needed:.2f}x (target <= {REQUESTS_TARGET}x); the registry's access log counts {seen:,}"
        )

        # 2b. Nothing new: the lists reconcile the scheduler runs every interval, then the full one (its sweep)
        self.results["index_rss"] = peak_rss_mb(os.getpid())
        started = time.perf_counter()
        lists = sync.reconcile(get_client(), sync.current_registry(), verify=False)
        self.results["reconcile_again"] = time.perf_counter() - started
        recorder.requests.clear()
        recorder.recording = True
        started = time.perf_counter()
        full = sync.reconcile(get_client(), sync.current_registry())
        self.results["sweep_seconds"] = time.perf_counter() - started
        recorder.recording = False
        swept = list(recorder.requests)
        self.results["sweep_rss"] = peak_rss_mb(os.getpid())
        database = Path(environment["DATA_DIR"]) / "db.sqlite3"
        size = sum(path.stat().st_size for path in database.parent.glob("db.sqlite3*"))
        self.results["database_mb"] = size / 1024 / 1024
        sweep_raw, errors = replay(swept, service_password)
        if errors:
            self.fail(f"{errors} replayed sweep requests answered 400 or more")
        self.results.update(sweep_raw=sweep_raw, sweep_requests=len(swept))
        log(
            f"   again, nothing new: the lists reconcile {self.results['reconcile_again']:.1f} s (status "
            f"{lists.status}); the full one (the sweep) {self.results['sweep_seconds']:.1f} s, {len(swept):,} requests "
            f"(status {full.status}), the same requests with plain requests {sweep_raw:.1f} s; this process's peak "
            f"RSS {self.results['sweep_rss']:,.0f} MB (after the first index {self.results['index_rss']:,.0f} MB); "
            f"database {self.results['database_mb']:,.0f} MB; load average {load_average()}"
        )
        if lists.status != SyncRun.DONE or full.status != SyncRun.DONE:
            self.fail(f"a reconcile with nothing new ended {lists.status} / {full.status}")

        # 3. The registry alone
        kinds: dict[str, int] = {}
        for method, url, _ in made:
            kind = next(k for k in ("_catalog", "/tags/list", "/manifests/", "/blobs/", "") if k in url)
            key = f"{method} {kind.strip('/') or 'other'}"
            kinds[key] = kinds.get(key, 0) + 1
        log(f"\n3. Replaying the same {len(made):,} requests with plain requests, 8 in flight, nothing parsed")
        log("   " + ", ".join(f"{key}: {count:,}" for key, count in sorted(kinds.items())))
        raw_seconds, errors = replay(made, service_password)
        if errors:
            self.fail(f"{errors} replayed requests answered 400 or more")
        index_rate, raw_rate = len(made) / index_seconds, len(made) / raw_seconds
        self.results.update(raw_seconds=raw_seconds, index_rate=index_rate, raw_rate=raw_rate)
        log(
            f"   {raw_seconds:.1f} s, {raw_rate:,.0f} requests/s; the reconcile ran at {index_rate:,.0f}/s = "
            f"{index_rate / raw_rate:.0%} of that; load average {load_average()}"
        )

        # 4. Warm pages in this process
        client = Client()
        if not client.login(username=BENCH_USER, password=bench_password):  # a viewer, as from the sign-in page
            self.fail(f"{BENCH_USER} could not sign in")
        log(f"\n4. Warm server time, Django test client in this process, {WARM_RUNS} runs after one warm-up")
        log(f"   {'page':<26}{'median ms':>10}{'min ms':>9}{'max ms':>9}   path")
        warm: dict[str, tuple[float, float, float] | str] = {}
        for label, path in pages().items():
            warm[label] = self.warm_page(client, label, path)
            numbers = warm[label]
            shown = (
                f"{numbers[0]:>10.1f}{numbers[1]:>9.1f}{numbers[2]:>9.1f}"
                if isinstance(numbers, tuple)
                else (f"{numbers:>28}")
            )
            log(f"   {label:<26}{shown}   {path}")
        self.results["warm"] = warm
        connections.close_all()

        # 5. The real stack
        log(f"\n5. Push-to-dashboard delay: gunicorn and db_worker on 127.0.0.1:{web_port}, notifications on")
        stand_in = self.processes["stand-in"]
        waited = time.perf_counter()
        events = self.quiet_stand_in(web_port)
        waited = time.perf_counter() - waited
        stop(stand_in)
        log(
            f"   the registry had posted {sum(events.values()):,} events before the dashboard ran "
            f"({', '.join(f'{action} {count:,}' for action, count in sorted(events.items()))}); "
            f"a stand-in accepted them (waited {waited:.1f} s for its count to hold still for 1.5 s)"
        )
        self.results["events"] = events
        base = f"http://127.0.0.1:{web_port}"
        master = self.start_stack(environment, web_port)
        session = self.sign_in(base, bench_password)

        small = small_name(1)  # single-platform, 4 tags
        delays: list[tuple[str, float]] = []
        for number in range(PUSHES + 1):  # push 0 warms up the whole path (worker start, templates)
            repository = BIG if number % 2 else small
            tag = f"pushed-{number:02d}"
            pushed = self.push_one(pusher, repository, tag, number)
            delay = self.wait_visible(session, base, repository, tag, pushed)
            if delay is None:
                self.fail(f"{repository}:{tag} did not show up within {VISIBLE_TIMEOUT:g} s")
            elif number:
                delays.append((repository, delay))
                log(f"   {repository}:{tag} visible after {delay * 1000:,.0f} ms")
            else:
                log(f"   (warm-up push {repository}:{tag} visible after {delay * 1000:,.0f} ms)")
        recorded = RegistryEvent.objects.filter(action="push", tag__startswith="pushed-").count()
        if recorded != PUSHES + 1:
            self.fail(f"{recorded} push events of the {PUSHES + 1} pushes reached the dashboard")
        self.results["delays"] = delays
        if delays:
            values = [delay for _, delay in delays]
            log(f"   median {statistics.median(values) * 1000:,.0f} ms, max {max(values) * 1000:,.0f} ms")

        # 6. Memory of the web worker, after loading the big pages through gunicorn
        log(f"\n6. Pages through gunicorn, {GUNICORN_LOADS} loads each (ms), then the peak RSS of its worker")
        for label, path in pages().items():
            times = []
            for _ in range(GUNICORN_LOADS):
                began = time.perf_counter()
                response = session.get(base + path, allow_redirects=False, timeout=60)
                times.append((time.perf_counter() - began) * 1000)
                if response.status_code == 404 and label.startswith("search"):
                    break
                if response.status_code != 200:
                    self.fail(f"GET {path} through gunicorn answered {response.status_code}")
                    break
            median, low, high = ms(times)
            log(f"   {label:<26}{median:>10.1f}{low:>9.1f}{high:>9.1f}   (HTTP {response.status_code})")
        worker = gunicorn_worker_pid(master.pid)
        peak = peak_rss_mb(worker) if worker else None
        self.results["rss"] = peak
        if peak is None:
            self.fail("could not read the gunicorn worker's VmHWM")
        else:
            log(f"   gunicorn worker (pid {worker}) VmHWM {peak:,.0f} MB")
        self.results["load_end"] = load_average()

    def warm_page(self, client, label: str, path: str) -> tuple[float, float, float] | str:
        times = []
        for run in range(WARM_RUNS + 1):
            began = time.perf_counter()
            try:
                response = client.get(path)
            except Exception as exc:
                self.fail(f"GET {path} raised {type(exc).__name__}: {exc}")
                return "error"
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code == 404 and label.startswith("search"):
                return "n/a (404)"
            if response.status_code != 200:
                self.fail(f"GET {path} answered {response.status_code}")
                return f"HTTP {response.status_code}"
            if run:
                times.append(elapsed)
        return ms(times)

    def quiet_stand_in(self, port: int, seconds: float = 120) -> dict[str, int]:
        """Wait until the registry has delivered its backlog to the stand-in (the count stops growing)."""
        deadline, last, steady_since = time.monotonic() + seconds, None, time.monotonic()
        while time.monotonic() < deadline:
            counts = requests.get(f"http://127.0.0.1:{port}/", timeout=5).json()
            if counts != last:
                last, steady_since = counts, time.monotonic()
            elif time.monotonic() - steady_since >= 1.5:
                break
            time.sleep(0.25)
        return last or {}

    def start_stack(self, environment: dict[str, str], port: int) -> subprocess.Popen:
        settings_dir = self.temp / "settings"
        settings_dir.mkdir()
        (settings_dir / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_TEXT)
        env = {
            **os.environ,
            **environment,
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "BENCH_STATIC_ROOT": str(self.temp / "static"),
            "PYTHONPATH": os.pathsep.join([str(settings_dir), str(ROOT)]),
        }
        env.pop("ALLOWED_HOSTS", None)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        gunicorn_log = open(self.temp / "gunicorn.log", "ab")  # noqa: SIM115  (the child keeps its own copy)
        worker_log = open(self.temp / "worker.log", "ab")  # noqa: SIM115
        with gunicorn_log, worker_log:
            self.processes["gunicorn"] = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "registry_ui.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", "1", "--threads", "8", "--log-level", "warning"],
                env=env, cwd=ROOT, stdout=gunicorn_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.processes["worker"] = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--interval", "0.25",
                 "--no-startup-delay"],
                env=env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            for name in ("gunicorn", "worker"):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with code {self.processes[name].returncode}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /health/ within 60 s")
            time.sleep(0.1)
        log(f"   collectstatic, gunicorn and db_worker up in {time.perf_counter() - started:.1f} s")
        return self.processes["gunicorn"]

    def sign_in(self, base: str, password: str) -> requests.Session:
        session = requests.Session()
        page = session.get(f"{base}/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if page.status_code != 200 or not token:
            raise RuntimeError(f"GET /login/ answered {page.status_code} without a CSRF token")
        answer = session.post(
            f"{base}/login/",
            data={"username": BENCH_USER, "password": password, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"{base}/login/"},
            allow_redirects=False,
            timeout=30,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"signing in as {BENCH_USER} answered {answer.status_code}, not a redirect")
        return session

    def push_one(self, client: RegistryClient, repository: str, tag: str, number: int) -> float:
        """Push a new image under `tag`; returns when its manifest PUT returned (perf_counter)."""
        now = datetime.now(UTC)
        if repository == BIG:
            shared = client.upload_blob(BIG, layer({"etc/os-release": "ID=big\n"}), LAYER_TYPE)
            push_config_image(client, BIG, tag, now, shared, {"build": tag})
        else:
            files = {"srv/pushed.txt": f"{tag} {now}\n"}
            spec = ImageSpec(layers=[{"etc/os-release": "ID=team1\n"}, files], created=now)
            push_image(client, repository, tag, spec)  # the manifest PUT is its last request
        return time.perf_counter()

    def wait_visible(
        self, session: requests.Session, base: str, repository: str, tag: str, pushed: float
    ) -> float | None:
        """Seconds from the push until the repository page (filtered to the tag) first lists it."""
        url, needle = f"{base}/repositories/{repository}/?q={tag}", f'/-/{tag}/"'
        while time.perf_counter() - pushed < VISIBLE_TIMEOUT:
            response = session.get(url, allow_redirects=False, timeout=30)
            if response.status_code != 200:
                self.fail(f"GET {url} answered {response.status_code}")
                return None
            if needle in response.text:
                return time.perf_counter() - pushed
            time.sleep(0.05)
        return None

    def summary(self, total_seconds: float) -> None:
        r = self.results

        def row(what: str, value: str, target: str = "", met: bool | None = None) -> None:
            verdict = "" if met is None else ("ok" if met else "MISSED")
            log(f"  {what:<44}{value:>22}   {target:<12}{verdict}")

        log(f"\nSummary ({os.cpu_count()} CPUs, load average at the end {load_average()}, {total_seconds:.0f} s)")
        row("", "", "target")
        if "push" in r:
            row(f"setup push ({BIG_TAGS:,} + small repos)", f"{r['push']:.1f} s")
        if "index_seconds" in r:
            row("full index from empty", f"{r['index_seconds']:.1f} s")
            row("  manifests fetched", f"{r['manifests']:,} ({r['manifests'] / r['index_seconds']:,.0f}/s)")
            row("  registry requests", f"{r['requests']:,}")
        if "reconcile_again" in r:
            again = r["reconcile_again"]
            row(
                "reconcile (tags lists), nothing new",
                f"{again:.1f} s",
                f"<= {RECONCILE_TARGET_S} s",
                again <= RECONCILE_TARGET_S,
            )
            row("  full reconcile (a HEAD per tag: the sweep)", f"{r['sweep_seconds']:.1f} s")
            row("  the same requests, registry alone", f"{r['sweep_raw']:.1f} s ({r['sweep_requests']:,} requests)")
            row("  sweep time / registry's own time", f"{r['sweep_seconds'] / r['sweep_raw']:.2f}x")
            # This process also holds its record of every request it replays, so its peak is no measure of the
            # indexing's own: bench/index_memory.py measures that, each step in a process of its own.
            row("  peak RSS of this process (with its records)", f"{r['sweep_rss']:,.0f} MB")
            row("database size", f"{r['database_mb']:,.0f} MB")
        if "needed" in r:
            ratio = r["seen"] / r["needed"]
            row("  requests in the registry's access log", f"{r['seen']:,} (client: {r['requests']:,})")
            row("  requests / needed", f"{ratio:.2f}x", f"<= {REQUESTS_TARGET}x", ratio <= REQUESTS_TARGET)
        if "raw_rate" in r:
            ratio = r["index_seconds"] / r["raw_seconds"]
            row("  index rate", f"{r['index_rate']:,.0f} req/s")
            row("  registry alone (plain requests)", f"{r['raw_rate']:,.0f} req/s ({r['raw_seconds']:.1f} s)")
            row("  index time / registry's own time", f"{ratio:.2f}x", f"<= {TIME_TARGET}x", ratio <= TIME_TARGET)
        for label, numbers in r.get("warm", {}).items():
            target = STORAGE_TARGET_MS if label == "storage" else PAGE_TARGET_MS
            if isinstance(numbers, tuple):
                row(f"warm {label} (median)", f"{numbers[0]:.1f} ms", f"<= {target} ms", numbers[0] <= target)
            else:
                row(f"warm {label} (median)", numbers, f"<= {target} ms")
        if delays := [delay for _, delay in r.get("delays", [])]:
            median, high = statistics.median(delays), max(delays)
            row("push to dashboard, median", f"{median:.2f} s", f"<= {DELAY_TARGET_S:g} s", median <= DELAY_TARGET_S)
            row("push to dashboard, max", f"{high:.2f} s", f"<= {DELAY_TARGET_S:g} s", high <= DELAY_TARGET_S)
        if r.get("rss") is not None:
            row(
                "gunicorn worker peak RSS (VmHWM)",
                f"{r['rss']:,.0f} MB",
                f"<= {RSS_TARGET_MB} MB",
                r["rss"] <= RSS_TARGET_MB,
            )
        if self.failures:
            log(f"\n{len(self.failures)} thing(s) did not work:")
            for failure in dict.fromkeys(self.failures):
                log(f"  - {failure}")


def main() -> int:
    global BIG_TAGS, MEDIUM_REPOSITORIES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-tags", type=int, default=BIG_TAGS, help=f"tags of {BIG}")
    parser.add_argument(
        "--medium", type=int, default=0, help=f"repositories of {MEDIUM_TAGS:,} tags each (100,000 tags: 49)"
    )
    options = parser.parse_args()
    BIG_TAGS, MEDIUM_REPOSITORIES = options.big_tags, options.medium
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks on a plain kill
    with tempfile.TemporaryDirectory(prefix="bench-index-") as temp:
        status = Bench(Path(temp)).main()
        log(f"Removing {temp} (the registry's {BIG_TAGS:,}-tag storage is many small files)…")
    return status


if __name__ == "__main__":
    sys.exit(main())
