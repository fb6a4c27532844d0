"""A team at once: signed-in users browsing the `make run` deployment while tags are pushed to its registry.

Run from the repository root: `.venv/bin/python bench/load.py` (or `make bench-load`). Needs what `make run`
needs (the docker-registry binary). It prints numbers next to their targets and asserts no timing target; it
exits non-zero only when something did not work (the deployment did not start, a push never showed up).

What it does, in one run:
  setup   starts `manage.py rundashboard` (the deployment `make run` starts: demo registry with notifications,
          gunicorn, task worker, scheduler) in a temporary DATA_DIR, pushes a 2,000-tag repository, waits
          until the index holds it, and adds USERS users to the registry's htpasswd
  loads   each user signs in, then browses a mix of pages (the repository list, the 2,000-tag repository
          sorted by created at pages 1-5, tag pages, search, storage, the home page) for SECONDS:
            team    a random pause of 0-4 s (2 s on average) between clicks, while PUSHES new tags are pushed at an
                    even pace; a separate session polls the repository page (filtered to the tag) every 100 ms
                    and counts from the manifest PUT until the tag is listed
            stress  no pause, no pushes: how many pages a second the deployment serves
          Each user's browser keeps the pages it got with their ETag and sends If-None-Match when it opens one
          again, as browsers do (the pages say Cache-Control: private, no-cache); --no-browser-cache turns that off.
  figures p50/p95/p99 per page (a 304 counts: the browser shows its copy), how many were 304, requests/s,
          errors (any answer but 200 or 304, or none within 30 s), push delays; the load average around each load.

The load generator is a thread per user (requests sessions) in this process: on this 2-core machine it
takes part of the CPU the dashboard would otherwise have, which the figures include.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests

from devtools.images import layer, push_config_image
from devtools.localregistry import free_port
from registry.client import RegistryClient
from registry.htpasswd import add_user

BIG = "big/many"
BIG_TAGS = 2_000
PUSHED = "team/pushed"  # the repository the pushes during the load go to
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
P95_TARGET_MS = 300
STRESS_TARGET_RPS = 150
VISIBLE_TARGET_S = 2.0
VISIBLE_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
PASSWORD_RE = re.compile(r"Sign in as admin with the password (\S+)")
NOTIFICATION_LOG_RE = re.compile(r'"POST /notifications/ [^"]*" 2\d\d \S+ (\d+)ms')
NOTIFICATION_TARGET_MS = 100


def log(message: str) -> None:
    print(message, flush=True)


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def page_mix(rng: random.Random) -> tuple[str, str]:
    """(page type, path) of one click, in the proportions a team browsing the dashboard might have."""
    roll = rng.random()
    if roll < 0.15:
        return "repository list", "/repositories/"
    if roll < 0.45:
        page = rng.randint(1, 5)
        return "2,000 tags by created, pages 1-5", f"/repositories/{BIG}/?sort=created&dir=desc&page={page}"
    if roll < 0.70:
        return "tag page", f"/repositories/{BIG}/-/build-{rng.randrange(BIG_TAGS)}/"
    if roll < 0.82:
        return "search", f"/search/?q=build-{rng.randrange(100)}"
    if roll < 0.92:
        return "storage", "/storage/"
    return "home", "/"


class Dashboard:
    """`manage.py rundashboard` in a temporary DATA_DIR, on free ports, with nothing from this shell's settings."""

    def __init__(self, temp: Path) -> None:
        self.temp, self.data = temp, temp / "data"
        self.port, self.registry_port, self.notifications_port = free_port(), free_port(), free_port()
        self.notification_ms: list[int] = []  # from the notifications listener's access log
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_password = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        keep = ("REGISTRY_", "DJANGO_", "DATABASE_URL", "REDIS_URL", "TASKS", "SECRET_KEY", "DEBUG", "GC_")
        env = {name: value for name, value in os.environ.items() if not name.startswith(keep)}
        env |= {"DATA_DIR": str(self.data), "LOG_LEVEL": "WARNING"}
        command = [sys.executable, "manage.py", "rundashboard", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--registry-port", str(self.registry_port), "--notifications-port", str(self.notifications_port)]
        self.output = open(self.temp / "rundashboard.log", "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.output)
        threading.Thread(target=self._read_output, daemon=True).start()
        deadline = time.monotonic() + 120
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the run command did not start; see {self.temp / 'rundashboard.log'}")
            time.sleep(0.2)

    def _read_output(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            if match := PASSWORD_RE.search(line):
                self.admin_password = match.group(1)
            elif match := NOTIFICATION_LOG_RE.search(line):
                self.notification_ms.append(int(match.group(1)))
            elif "GET " not in line and "POST " not in line:  # gunicorn's access log stays out of the figures
                self.output.write(line)
                self.output.flush()

    def ready(self) -> bool:
        try:
            return bool(self.admin_password) and requests.get(f"{self.base}/health/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def service_client(self) -> RegistryClient:
        password = (self.data / "registry" / "dashboard.password").read_text()
        return RegistryClient(f"http://127.0.0.1:{self.registry_port}", "dashboard", password)

    def indexed_tags(self, repository: str) -> int:
        with sqlite3.connect(f"file:{self.data / 'db.sqlite3'}?mode=ro", uri=True, timeout=30) as db:
            row = db.execute(
                "SELECT count(*) FROM catalog_tag JOIN catalog_repository r ON r.id = catalog_tag.repository_id "
                "WHERE r.name = ?",
                (repository,),
            ).fetchone()
        return row[0]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # the run command stops its children and its registry
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def sign_in(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=REQUEST_TIMEOUT_S)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if page.status_code != 200 or not token:
        raise RuntimeError(f"GET /login/ answered {page.status_code} without a CSRF token")
    answer = session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{base}/login/"},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT_S,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"signing in as {username} answered {answer.status_code}, not a redirect")
    return session


class Load:
    """One load: users clicking until `seconds` pass, pushes at an even pace meanwhile."""

    def __init__(
        self, dashboard: Dashboard, sessions: list[requests.Session], think_seconds: float, browser_cache: bool
    ) -> None:
        self.dashboard, self.sessions, self.think = dashboard, sessions, think_seconds
        self.browser_cache = browser_cache
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.not_modified: dict[str, int] = defaultdict(int)
        self.error_examples: list[str] = []
        self.delays: list[float] = []
        self.lost_pushes: list[str] = []
        self.retried = 0
        self.lock = threading.Lock()

    def run(self, seconds: float, pushes: int, label: str) -> None:
        first_notification = len(self.dashboard.notification_ms)
        self.end = time.monotonic() + seconds
        users = [
            threading.Thread(target=self.browse, args=(session, random.Random(number)), daemon=True)
            for number, session in enumerate(self.sessions)
        ]
        for user in users:
            user.start()
        self.push_all(pushes, seconds, label)
        for user in users:
            user.join()
        time.sleep(1)  # the access log's last lines
        self.notification_ms = self.dashboard.notification_ms[first_notification:]

    def get(self, session: requests.Session, path: str, kept: dict[str, str]) -> str:
        """The status of one click, or the error that kept it from an answer. As a browser does, it sends the ETag of
        the copy it keeps of the page (`kept`, unless --no-browser-cache) and shows that copy on a 304; and a click
        sent on a kept-alive connection the server closed at that moment is sent again once on a new connection."""
        headers = {"If-None-Match": kept[path]} if path in kept else {}
        for attempt in (1, 2):
            try:
                response = session.get(
                    self.dashboard.base + path, headers=headers, allow_redirects=False, timeout=REQUEST_TIMEOUT_S
                )
            except requests.ConnectionError as exc:
                if attempt == 2 or "RemoteDisconnected" not in str(exc) and "reset" not in str(exc):
                    return type(exc).__name__
                with self.lock:
                    self.retried += 1
                continue
            except requests.RequestException as exc:
                return type(exc).__name__
            if response.status_code == 200 and self.browser_cache and response.headers.get("ETag"):
                kept[path] = response.headers["ETag"]
            return str(response.status_code)
        raise AssertionError("unreachable")

    def browse(self, session: requests.Session, rng: random.Random) -> None:
        kept: dict[str, str] = {}  # this user's browser cache: path -> ETag
        time.sleep(rng.uniform(0, 1))  # users do not all click in the same millisecond
        while time.monotonic() < self.end:
            page, path = page_mix(rng)
            began = time.perf_counter()
            status = self.get(session, path, kept)
            elapsed = (time.perf_counter() - began) * 1000
            with self.lock:
                self.times[page].append(elapsed)
                if status == "304":
                    self.not_modified[page] += 1
                elif status != "200":
                    self.errors[page] += 1
                    if len(self.error_examples) < 5:
                        self.error_examples.append(f"{status} GET {path}")
            if self.think:
                time.sleep(rng.uniform(0, 2 * self.think))

    def push_all(self, pushes: int, seconds: float, label: str) -> None:
        client = self.dashboard.service_client()
        watcher = sign_in(self.dashboard.base, "load-watcher", self.dashboard.watcher_password)
        base = client.upload_blob(PUSHED, layer({"etc/os-release": "ID=pushed\n"}), LAYER_TYPE)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            for number in range(pushes):
                time.sleep(max(0.0, started + number * seconds / pushes - time.monotonic()))
                pool.submit(self.push_and_watch, client, watcher, base, f"{label}-{number:03d}")

    def push_and_watch(self, client: RegistryClient, watcher: requests.Session, base, tag: str) -> None:
        try:
            push_config_image(client, PUSHED, tag, datetime.now(UTC), base, {"pushed": tag})
        except Exception as exc:  # the pool would keep it to itself
            with self.lock:
                self.lost_pushes.append(f"{tag} (the push failed: {exc})")
            return
        pushed = time.perf_counter()
        url, needle = f"{self.dashboard.base}/repositories/{PUSHED}/?q={tag}", f'/-/{tag}/"'
        while time.perf_counter() - pushed < VISIBLE_TIMEOUT_S:
            try:
                if needle in watcher.get(url, allow_redirects=False, timeout=REQUEST_TIMEOUT_S).text:
                    with self.lock:
                        self.delays.append(time.perf_counter() - pushed)
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        with self.lock:
            self.lost_pushes.append(tag)

    def report(self, name: str, seconds: float, p95_target: bool) -> list[str]:
        """Print the figures; returns what did not work."""
        total = sum(len(values) for values in self.times.values())
        errors = sum(self.errors.values())
        log(f"\n   {'page':<34}{'requests':>9}{'304':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}   target")
        for page, values in sorted(self.times.items()):
            cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            p50, p95, p99 = cuts[49], cuts[94], cuts[98]
            verdict = f"p95 <= {P95_TARGET_MS} ms {'ok' if p95 <= P95_TARGET_MS else 'MISSED'}" if p95_target else ""
            counts = f"{len(values):>9}{self.not_modified[page]:>7}{self.errors[page]:>8}"
            log(f"   {page:<34}{counts}{p50:>9.0f}{p95:>9.0f}{p99:>9.0f}   {verdict}")
        rate = total / seconds
        log(f"   {total:,} requests in {seconds:.0f} s = {rate:.1f} requests/s, {errors} errors (target 0)")
        if not p95_target:
            log(
                f"   throughput {rate:.1f} requests/s, target >= {STRESS_TARGET_RPS}: "
                f"{'ok' if rate >= STRESS_TARGET_RPS else 'MISSED'}"
            )
        for example in self.error_examples:
            log(f"     e.g. {example}")
        if self.retried:
            log(f"   {self.retried} clicks met a kept-alive connection closed by the server and were sent again")
        if values := self.notification_ms:
            cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            log(
                f"   notifications: {len(values)} posts answered in median {cuts[49]:.0f} ms, p99 {cuts[98]:.0f} ms, "
                f"max {max(values)} ms (gunicorn's access log; target: milliseconds, <= {NOTIFICATION_TARGET_MS} ms)"
            )
        if self.delays:
            cuts = (
                statistics.quantiles(self.delays, n=100, method="inclusive")
                if len(self.delays) > 1
                else self.delays * 99
            )
            late = sum(1 for delay in self.delays if delay > VISIBLE_TARGET_S)
            log(
                f"   pushes: {len(self.delays)} visible, median {cuts[49]:.2f} s, p95 {cuts[94]:.2f} s, "
                f"max {max(self.delays):.2f} s; {late} later than {VISIBLE_TARGET_S:g} s (target 0)"
            )
        problems = [f"{name}: {errors} requests failed"] if errors else []
        if self.lost_pushes:
            problems.append(f"{name}: {len(self.lost_pushes)} pushes never showed up, e.g. {self.lost_pushes[:3]}")
        return problems


def fill_big(client: RegistryClient) -> None:
    """BIG_TAGS images (a distinct config each over one shared layer), created in shuffled order."""
    minutes = list(range(BIG_TAGS))
    random.Random(7).shuffle(minutes)
    created = {f"build-{n}": BASE_TIME + timedelta(minutes=minute) for n, minute in enumerate(minutes)}
    shared = client.upload_blob(BIG, layer({"etc/os-release": "ID=big\n"}), LAYER_TYPE)
    client.map(lambda tag: push_config_image(client, BIG, tag, created[tag], shared, {"build": tag}), list(created))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=180, help="length of each load")
    parser.add_argument("--pushes", type=int, default=500, help="tags pushed during the team load")
    parser.add_argument("--loads", default="team,stress", help="which loads to run: team, stress or both")
    parser.add_argument(
        "--no-browser-cache", action="store_true", help="send no If-None-Match: every click renders its page"
    )
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks on a plain kill
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as temp:
        dashboard = Dashboard(Path(temp))
        try:
            log(f"{os.cpu_count()} CPUs, load average {load_average()}; starting the run command in {temp}")
            began = time.perf_counter()
            dashboard.start()
            log(f"   serving on {dashboard.base} after {time.perf_counter() - began:.1f} s")
            began = time.perf_counter()
            fill_big(dashboard.service_client())
            while dashboard.indexed_tags(BIG) < BIG_TAGS:
                if time.perf_counter() - began > 600:
                    raise RuntimeError(f"{BIG} was not indexed within 10 minutes")
                time.sleep(1)
            log(f"   pushed {BIG} ({BIG_TAGS:,} tags) and indexed it in {time.perf_counter() - began:.1f} s")
            htpasswd = dashboard.data / "registry" / "htpasswd"
            passwords = {f"load-user-{number:02d}": f"password-{number:02d}" for number in range(options.users)}
            for username, password in passwords.items():
                add_user(htpasswd, username, password, cost=4)
            dashboard.watcher_password = "password-watcher"
            add_user(htpasswd, "load-watcher", dashboard.watcher_password, cost=4)
            sessions = [sign_in(dashboard.base, username, password) for username, password in passwords.items()]
            for name in options.loads.split(","):
                think = {"team": 2.0, "stress": 0.0}[name.strip()]
                pushes = options.pushes if name == "team" else 0
                log(f"\n{name}: {options.users} users, {think:g} s between clicks on average, {options.seconds:g} s, "
                    f"{pushes} pushes; load average {load_average()} before")  # fmt: skip
                load = Load(dashboard, sessions, think, browser_cache=not options.no_browser_cache)
                load.run(options.seconds, pushes, name)
                problems += load.report(name, options.seconds, p95_target=name == "team")
                log(f"   load average {load_average()} after")
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            dashboard.stop()
            dashboard.output.close() if hasattr(dashboard, "output") else None
            if problems and (Path(temp) / "rundashboard.log").exists():
                log("\n--- last lines of the run command's log ---")
                log("\n".join((Path(temp) / "rundashboard.log").read_text().splitlines()[-20:]))
    for problem in problems:
        log(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
