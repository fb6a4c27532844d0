"""The run command. With REGISTRY_URL unset it first starts a registry of its own under DATA_DIR/registry
(htpasswd auth, delete enabled, a few demo images), then serves the dashboard with gunicorn."""

import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from devtools import images, localregistry
from registry import bridge
from registry.client import RegistryClient, RegistryError
from registry.htpasswd import add_user

SERVICE_USER = "dashboard"
SUPERVISE_SECONDS = 1  # how often the task worker and the scheduler are checked
RESTART_PAUSE_SECONDS = 5  # a helper that keeps dying is started again at most this often


def wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise CommandError(f"The dashboard did not start serving on {url}; see the messages above.")


def gunicorn(application: str, bind: str, *options: str) -> list[str]:
    """The server's settings come from registry_ui/gunicorn_conf.py (WEB_CONCURRENCY, WEB_THREADS); `options` win."""
    config = ("-c", "python:registry_ui.gunicorn_conf", "--log-level", "warning")
    return [sys.executable, "-m", "gunicorn", *config, application, "--bind", bind, *options]


def worker_command(manage: list[str], queue: str) -> list[str]:
    if settings.TASKS_BACKEND == "database":
        return [*manage, "db_worker", "--queue-name", queue, "--interval", "0.25", "--no-startup-delay", "-v", "0"]
    return [*manage, "rqworker", "--job-class", "django_tasks_rq.Job", queue]


class Helper:
    """A process the run command keeps running beside the web server: started again when it stops."""

    def __init__(self, command: list[str], env: dict) -> None:
        self.command, self.env = command, env
        self.exit_code: int | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self.started = time.monotonic()

    def restart_if_stopped(self) -> bool:
        """Start it again if it stopped (not sooner than RESTART_PAUSE_SECONDS after its last start)."""
        self.exit_code = self.process.poll()
        if self.exit_code is None or time.monotonic() - self.started < RESTART_PAUSE_SECONDS:
            return False
        self.start()
        return True


def keep_private(data_dir: Path) -> None:
    """Folders 0700 and files 0600 in DATA_DIR and its registry folder, for what an earlier start made."""
    for folder in (data_dir, data_dir / "registry"):
        if folder.is_dir():
            folder.chmod(0o700)
            for path in folder.iterdir():
                path.chmod(0o700 if path.is_dir() else 0o600)


def fresh_metrics_folder(folder: Path) -> Path:
    """prometheus_client's multiprocess folder (registry/counters.py), emptied: the counters start again with the
    processes that add to them. Only its counter files are removed, whatever else lies there."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.db"):
        path.unlink()
    return folder


class Command(BaseCommand):
    help = "Serve the dashboard; without REGISTRY_URL, start a local demo registry first."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000", help="Where the dashboard listens.")
        parser.add_argument("--registry-port", type=int, default=5000, help="Port of the demo registry.")
        parser.add_argument(
            "--notifications-port",
            type=int,
            default=None,
            help="Where the registry's notifications are taken (on --bind's host; default: the port after --bind's).",
        )

    def handle(self, *args, bind, registry_port, notifications_port, **options):
        host, _, port = bind.rpartition(":")
        if not port.isdigit() or not localregistry.port_is_free(host.strip("[]"), int(port)):
            raise CommandError(
                f"Cannot listen on {bind}: it is in use or not host:port. Stop the other server or pass --bind."
            )
        notifications_bind = f"{host}:{notifications_port or int(port) + 1}"
        if not localregistry.port_is_free(host.strip("[]"), int(notifications_bind.rpartition(":")[2])):
            raise CommandError(
                f"Cannot take notifications on {notifications_bind}: it is in use. Pass --notifications-port."
            )
        # Nothing the demo writes is for other users of this machine: the database, the registry's config (with the
        # notifications secret), its htpasswd and its data.
        os.umask(0o077)
        keep_private(Path(settings.DATA_DIR))
        call_command("migrate", interactive=False, verbosity=0)
        collect_static_files()
        env, registry = os.environ.copy(), None
        # Every process started here adds its counters to files in one folder, for /metrics to sum.
        metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(Path(settings.DATA_DIR) / "metrics")
        env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_folder(Path(metrics)))
        if not os.environ.get("REGISTRY_URL"):
            notify_host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]") else host
            notify_port = notifications_bind.rpartition(":")[2]
            registry, env_changes = self.start_demo_registry(
                Path(settings.DATA_DIR) / "registry",
                registry_port,
                f"http://{notify_host}:{notify_port}/notifications/",
            )
            env.update(env_changes)
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        helpers = {
            "task worker": worker_command(manage, "default"),
            "notifications worker": worker_command(manage, "notifications"),
            # Its own process and threads: however busy the pages are, the registry's posts are answered at once.
            "notifications listener": gunicorn(
                "registry_ui.wsgi:notifications_listener", notifications_bind, "--workers", "1", "--threads", "4"
            ),
        }
        if settings.REGISTRY_SYNC_INTERVAL > 0:  # the first reconcile is queued at once, then every interval
            helpers["scheduler"] = [*manage, "sync_registry", "--every", str(settings.REGISTRY_SYNC_INTERVAL)]
        server = subprocess.Popen(gunicorn("registry_ui.wsgi", bind), env=env)
        running = {name: Helper(command, env) for name, command in helpers.items()}
        try:
            wait_until_serving(f"http://{bind}/health/", server)
            self.stdout.write(self.style.SUCCESS(f"\nDashboard: http://{bind}/   (Ctrl+C stops it)\n"))
            signal.signal(signal.SIGTERM, lambda *_: server.terminate())
            while server.poll() is None:  # the web server ends the run; the helpers are kept running
                for name, helper in running.items():
                    if helper.restart_if_stopped():
                        self.stderr.write(f"The {name} stopped (exit code {helper.exit_code}); started it again.")
                if registry:
                    self.restart_registry_if_stopped(registry)
                time.sleep(SUPERVISE_SECONDS)
        except KeyboardInterrupt:
            pass
        finally:
            processes = [server, *(helper.process for helper in running.values())]
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()
            if registry:
                registry.stop()

    def restart_registry_if_stopped(self, registry: localregistry.LocalRegistry) -> None:
        """The demo registry is started again whenever it stops: garbage collection stops it to switch it read-only
        (while the file read-only lies beside its pid file: registry/bridge.py) and back."""
        if registry.process is not None and registry.process.poll() is None:
            return
        flag = registry.root / bridge.READ_ONLY_FLAG
        registry.readonly = flag.exists()
        try:
            with open(registry.root / "registry.log", "ab") as log:
                registry.start(self.registry_command, log=log)
        except (RuntimeError, RegistryError) as exc:
            # The bridge waits for the new process too, and may see it answer first: a short collection is done and
            # the flag switched back, and this process stopped, before this wait has its answer. Not a failure.
            if flag.exists() == registry.readonly:
                self.stderr.write(f"The demo registry did not start again ({exc}); trying again.")
                return
        self.stdout.write(f"Demo registry started again{' read-only' if registry.readonly else ''}.")

    def start_demo_registry(self, root: Path, port: int, notifications_url: str):
        command = self.registry_command = localregistry.registry_command() or localregistry.docker_command(root)
        if command is None:
            raise CommandError(
                "No registry to start: install the docker-registry package (apt-get install docker-registry) "
                "or Docker, or set REGISTRY_URL to an existing registry."
            )
        secret_file = root / "notifications.secret"
        if not secret_file.exists():
            root.mkdir(parents=True, exist_ok=True)
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(24))
        registry = localregistry.LocalRegistry(
            root, port=port, notifications_url=notifications_url, notifications_secret=secret_file.read_text()
        )
        password_file = root / "dashboard.password"
        first_start = not registry.htpasswd.exists() or not password_file.exists()
        if first_start:
            root.mkdir(parents=True, exist_ok=True)
            admin_password = secrets.token_urlsafe(12)
            registry.htpasswd.write_text("")
            add_user(registry.htpasswd, "admin", admin_password, cost=10)
            # The registry checks bcrypt on every request and the dashboard makes thousands: cost 4 (the
            # lowest) keeps that cheap, and a random 32-character password needs no key stretching.
            password_file.touch(mode=0o600)
            password_file.write_text(secrets.token_urlsafe(24))
            add_user(registry.htpasswd, SERVICE_USER, password_file.read_text(), cost=4)
        (root / bridge.READ_ONLY_FLAG).unlink(missing_ok=True)  # no collection runs before the worker does
        try:
            with open(root / "registry.log", "ab") as log:  # the child keeps its own copy of the descriptor
                registry.start(command, log=log)
        except (RuntimeError, RegistryError) as exc:
            raise CommandError(f"The demo registry did not start ({exc}); see {root / 'registry.log'}.") from None
        marker = root / "demo-images-pushed"
        if not marker.exists():
            self.stdout.write("Pushing demo images…")
            images.demo_images(RegistryClient(registry.url, SERVICE_USER, password_file.read_text()))
            marker.touch()
        self.stdout.write(self.style.SUCCESS(f"Demo registry: {registry.url}   (data in {root})"))
        if first_start:
            self.stdout.write(
                self.style.WARNING(
                    f"Sign in as admin with the password {admin_password}\n"
                    f"It is shown only this once. The same works for: docker login 127.0.0.1:{port}"
                )
            )
        else:
            self.stdout.write(
                f"Sign in as admin (the password was printed at the first start; "
                f"to get a new one, delete {registry.htpasswd})."
            )
        env = {
            "REGISTRY_URL": registry.url,
            "REGISTRY_USERNAME": SERVICE_USER,
            "REGISTRY_PASSWORD_FILE": str(password_file),
            "REGISTRY_HTPASSWD_PATH": str(registry.htpasswd),
            "REGISTRY_NOTIFICATIONS_SECRET_FILE": str(secret_file),
            "DASHBOARD_ADMINS": ",".join(filter(None, [os.environ.get("DASHBOARD_ADMINS", ""), "admin"])),
        }
        if localregistry.registry_command() and "GC_BRIDGE" not in os.environ:
            # The demo registry is a process of this host: garbage collection runs its binary on its files.
            env |= {
                "GC_BRIDGE": "local",
                "REGISTRY_BINARY": localregistry.registry_command()[0],
                "REGISTRY_CONFIG_PATH": str(registry.config_path),
                "REGISTRY_STORAGE_PATH": str(root / "data"),
                "REGISTRY_PID_FILE": str(registry.pid_file),  # restarted read-only and back by the loop above
            }
        return registry, env


def collect_static_files() -> None:
    """collectstatic, one demo at a time: two started from one checkout at once compressed the same files into
    the same folder, and one of them stopped on a file the other had just replaced."""
    static_root = Path(settings.STATIC_ROOT)
    static_root.mkdir(parents=True, exist_ok=True)
    with open(static_root / ".collecting", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        call_command("collectstatic", interactive=False, verbosity=0)
