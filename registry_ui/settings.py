"""Settings, read from the environment. Every variable is documented in README.md.

A fresh checkout runs with no configuration: SQLite and a generated secret key under
./var, and a registry on http://127.0.0.1:5000 (the one the run command starts).
Bad values stop the process with ImproperlyConfigured instead of being guessed at.
"""

import importlib.util
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """A plain value, or the contents of the file named by NAME_FILE (Docker secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name} cannot be read: {exc.strerror}") from exc
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in TRUE_WORDS:
        return True
    if value.strip().lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false.")


def env_number(name: str, default: float, minimum: float = 0) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}.")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_url(name: str, default: str) -> str:
    value = env_str(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} must be an http:// or https:// URL.")
    return value


DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in DATA_DIR."""
    value = env_str("SECRET_KEY")
    if value:
        return value
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key()
# Loopback names are always allowed: the container's HEALTHCHECK asks http://127.0.0.1:8000/health/.
ALLOWED_HOSTS = [*env_list("ALLOWED_HOSTS"), "127.0.0.1", "localhost", "[::1]"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
for origin in CSRF_TRUSTED_ORIGINS:
    if not origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"CSRF_TRUSTED_ORIGINS entry {origin!r} needs its scheme (https://…).")

# --- The registry -------------------------------------------------------------------------
REGISTRY_URL = env_url("REGISTRY_URL", "http://127.0.0.1:5000")
REGISTRY_USERNAME = env_str("REGISTRY_USERNAME")
REGISTRY_PASSWORD = env_str("REGISTRY_PASSWORD")
REGISTRY_VERIFY_TLS = env_bool("REGISTRY_VERIFY_TLS", True)
REGISTRY_CA_BUNDLE = env_str("REGISTRY_CA_BUNDLE")
if REGISTRY_CA_BUNDLE and not Path(REGISTRY_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"REGISTRY_CA_BUNDLE={REGISTRY_CA_BUNDLE} is not a readable file.")
REGISTRY_HTPASSWD_PATH = env_str("REGISTRY_HTPASSWD_PATH")
if REGISTRY_HTPASSWD_PATH and not Path(REGISTRY_HTPASSWD_PATH).is_file():
    raise ImproperlyConfigured(f"REGISTRY_HTPASSWD_PATH={REGISTRY_HTPASSWD_PATH} is not a readable file.")
REGISTRY_PUBLIC_HOST = env_str("REGISTRY_PUBLIC_HOST") or urlsplit(REGISTRY_URL).netloc
REGISTRY_CONNECT_TIMEOUT = env_number("REGISTRY_CONNECT_TIMEOUT", 3.05, minimum=0.1)
REGISTRY_READ_TIMEOUT = env_number("REGISTRY_READ_TIMEOUT", 15, minimum=0.1)
# How long a repository's tag list (tag -> digest) is reused before the registry is asked again.
# Manifests and config blobs are addressed by digest and cached without expiry.
REGISTRY_CACHE_SECONDS = int(env_number("REGISTRY_CACHE_SECONDS", 60))
# The most names one catalog or tags list may hold: a registry answering with more is stopped with an error.
REGISTRY_MAX_LIST_ENTRIES = int(env_number("REGISTRY_MAX_LIST_ENTRIES", 200_000, minimum=1))
# Token services (Bearer realms) that may get credentials; empty: any over HTTPS, or one on the registry's host.
REGISTRY_TOKEN_REALMS = env_list("REGISTRY_TOKEN_REALMS")

# How often every tags list is read (tags added and removed), and the least time between two starts of the sweep
# that asks about every tag's digest, in seconds (0: neither; notifications and page visits still keep what they
# touch fresh).
REGISTRY_SYNC_INTERVAL = env_number("REGISTRY_SYNC_INTERVAL", 600)
# Requests per second a full reconcile's HEADs (has a tag moved?) may send; 0: as fast as 8 in flight allow.
REGISTRY_SWEEP_RATE = env_number("REGISTRY_SWEEP_RATE", 0)
# The registry's notifications.endpoints send `Authorization: Bearer <this>`; empty turns the endpoint off.
REGISTRY_NOTIFICATIONS_SECRET = env_str("REGISTRY_NOTIFICATIONS_SECRET")
# Events one notification request may carry (the registry sends them one by one); more is refused with 413.
REGISTRY_NOTIFICATIONS_MAX_EVENTS = int(env_number("REGISTRY_NOTIFICATIONS_MAX_EVENTS", 100, minimum=1))

# --- Metrics ----------------------------------------------------------------------------------
# GET /metrics (Prometheus' text format) answers only `Authorization: Bearer <this>`; empty: /metrics is off (404).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# How many of the largest repositories /metrics gives referenced and unique bytes for (one series each: Prometheus
# wants a bounded set of label values).
METRICS_TOP_REPOSITORIES = int(env_number("METRICS_TOP_REPOSITORIES", 20))
# prometheus_client's own variable: the folder where each process keeps its counters (registry/counters.py), for
# /metrics to add up. The run command and the image set it to DATA_DIR/metrics.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# --- Webhooks -------------------------------------------------------------------------------
# Targets on loopback, private, link-local or otherwise non-public addresses are refused unless this is on: a webhook
# must not become a way to reach the services beside the dashboard.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_CONNECT_TIMEOUT = env_number("WEBHOOK_CONNECT_TIMEOUT", 3.05, minimum=0.1)
WEBHOOK_READ_TIMEOUT = env_number("WEBHOOK_READ_TIMEOUT", 10, minimum=0.1)
# Attempts per delivery; the n-th retry waits WEBHOOK_RETRY_SECONDS * 5**(n-1): 1, 5, 25, 125, 625 minutes.
WEBHOOK_MAX_ATTEMPTS = int(env_number("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1))
WEBHOOK_RETRY_SECONDS = env_number("WEBHOOK_RETRY_SECONDS", 60, minimum=0)
# The dashboard's address as people open it, for the links in webhooks (a job's page); empty: paths only.
DASHBOARD_URL = env_str("DASHBOARD_URL").rstrip("/")
if DASHBOARD_URL and urlsplit(DASHBOARD_URL).scheme not in ("http", "https"):
    raise ImproperlyConfigured(f"DASHBOARD_URL={DASHBOARD_URL!r} must be an http:// or https:// URL.")

# --- Users and roles ------------------------------------------------------------------------
# Registry users named here are put in the admin role each time they log in.
DASHBOARD_ADMINS = env_list("DASHBOARD_ADMINS")
LOGIN_FAILURES_PER_USER = 5
LOGIN_FAILURES_PER_ADDRESS = 20
LOGIN_LOCKOUT_SECONDS = 15 * 60

# --- The API --------------------------------------------------------------------------------
# Requests a minute one API token (or one signed-in user's session) may make; more get 429 until the next minute.
# 0: no limit.
API_RATE_LIMIT = int(env_number("API_RATE_LIMIT", 600))

# --- Django ---------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "ninja",  # the API's documentation page: its template and Swagger UI's files, served from here (no CDN)
    # The product's apps, each resting on the ones before it: registry/ (the seams) <- catalog <- cleanup <-
    # garbage_collection <- webhooks <- api, metrics; accounts beside them.
    "accounts",
    "catalog",
    "cleanup",
    "garbage_collection",
    "webhooks",
    "api",
    "metrics",
]
# The run command and its demo registry, for a checkout; the container image leaves devtools/ out.
if importlib.util.find_spec("devtools") is not None:
    INSTALLED_APPS += ["devtools"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "registry_ui.middleware.RegistryErrorMiddleware",
]

ROOT_URLCONF = "registry_ui.urls"
WSGI_APPLICATION = "registry_ui.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "registry_ui.context_processors.dashboard",
            ],
        },
    },
]


# The web server, the task worker and the scheduler write to one SQLite file: WAL lets readers go on while one
# writes, and IMMEDIATE transactions wait for the lock instead of failing half way ("database is locked").
SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}


def database_from_url(name: str) -> dict:
    """The default database from a URL (postgres://USER:PASSWORD@HOST:5432/NAME), else SQLite in DATA_DIR.

    Messages never repeat the URL: it usually holds a password."""
    url = env_str(name)
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3", "OPTIONS": SQLITE_OPTIONS}
    try:
        database = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except dj_database_url.UnknownSchemeError as exc:
        # Named only when it stands before "://": without that, it may be a user name or worse.
        scheme = f" {exc.scheme!r}" if exc.scheme and url.startswith(f"{exc.scheme}://") else ""
        raise ImproperlyConfigured(
            f"{name} has an unknown scheme{scheme}; use e.g. postgres://USER:PASSWORD@HOST:5432/NAME."
        ) from None
    except ValueError:  # dj_database_url.ParseError and bad ports or options; the message could echo the URL
        raise ImproperlyConfigured(
            f"{name} is not a database URL that can be read; special characters in the password must be "
            "percent-encoded (e.g. @ as %40)."
        ) from None
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {**SQLITE_OPTIONS, **database.get("OPTIONS", {})}
    return database


def caches_from_url(name: str) -> dict:
    """Redis when a URL is set (redis://, rediss:// or unix://), for both caches. Without it, "default" is files in
    DATA_DIR/cache, shared by every process on this machine (web workers, task workers: sign-in throttling, the
    "already queued" marks, a Refresh's outcome), and "registry", the manifests and configs the registry client
    keeps by digest, is each process's memory (what it holds never changes, so nothing needs sharing). It holds
    2,000 of them: enough for the pages people have open and a sync's chunk of tags; a first index of 50,000 tags
    fills whatever size it is given with entries it never reads again."""
    url = env_str(name)
    if not url:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(DATA_DIR / "cache"),
                "TIMEOUT": None,
                "OPTIONS": {"MAX_ENTRIES": 10_000},
            },
            "registry": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "registry-ui",
                "TIMEOUT": None,
                "OPTIONS": {"MAX_ENTRIES": 2_000},
            },
        }
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ImproperlyConfigured(f"{name} must be a redis://, rediss:// or unix:// URL.")
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "TIMEOUT": None}
    return {"default": redis, "registry": {**redis, "KEY_PREFIX": "registry"}}


# DATABASE_URL: PostgreSQL (or any URL dj-database-url reads) for more than one process; SQLite by default.
DATABASES = {"default": database_from_url("DATABASE_URL")}

# REDIS_URL: one cache shared by every process on every machine; without it, files shared by this machine's.
CACHES = caches_from_url("REDIS_URL")

# Background work runs on Django's Tasks framework, in two queues: "notifications" for the small index
# updates the registry's notifications ask for (each a request or two), "default" for everything that may take
# minutes (reconciles, refreshes, deletes, garbage collection). Each has a worker of its own, so that a push
# shows up within seconds however long a reconcile runs. TASKS_BACKEND=database needs no other service: its
# worker is `manage.py db_worker --queue-name QUEUE`. TASKS_BACKEND=rq queues in Redis (REDIS_URL) for RQ
# workers (`manage.py rqworker --job-class django_tasks_rq.Job QUEUE`). The run command starts the right ones.
TASK_QUEUES = ["default", "notifications"]
TASKS_BACKEND = env_str("TASKS_BACKEND", "database")
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": TASK_QUEUES}}
elif TASKS_BACKEND == "rq":
    if not env_str("REDIS_URL"):
        raise ImproperlyConfigured("TASKS_BACKEND=rq needs REDIS_URL.")
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {queue: {"URL": env_str("REDIS_URL")} for queue in TASK_QUEUES}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": TASK_QUEUES}}
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND={TASKS_BACKEND!r} must be database or rq.")

AUTHENTICATION_BACKENDS = [
    "accounts.backends.RegistryUserBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "browser-home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 60 * 60
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Served over HTTPS (directly or behind a proxy that terminates TLS): secure cookies and HSTS.
HTTPS_ONLY = env_bool("HTTPS_ONLY", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS_ONLY else 0
# Asked over the stack's own network in plain HTTP (by Docker's and the proxy's health checks, the registry's
# notifications, Prometheus): a redirect to HTTPS would fail each of them. The paths without their leading slash.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^notifications/$", r"^metrics$"]
# HSTS for the dashboard's own name only: includeSubDomains and preload would bind every name under it, preload in
# browsers' built-in lists; that is the domain owner's decision, not the dashboard's.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# Behind a reverse proxy: trust its X-Forwarded-Proto / -Host / -For headers.
TRUST_PROXY_HEADERS = env_bool("TRUST_PROXY_HEADERS", False)
if TRUST_PROXY_HEADERS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# No inline script or style anywhere: every page loads its code from /static/.
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Pages name static files by their hashed names only ({% static %}): the image drops the unhashed copies, which would
# double its folder. A checkout keeps them, so that collecting again rewrites nothing a running demo serves.
WHITENOISE_KEEP_ONLY_HASHED_FILES = env_bool("STATIC_HASHED_ONLY", False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# --- Garbage collection bridge ----------------------------------------------------------------
# How the dashboard runs `registry garbage-collect` next to the registry (registry/bridge.py): docker = exec in
# the container REGISTRY_CONTAINER through the Docker Engine at DOCKER_HOST (read by the Docker SDK itself; that
# socket is root on its host), local = the registry binary on this host, none = nothing runs and the dashboard
# shows the command to run by hand.
GC_BRIDGE = env_str("GC_BRIDGE", "none")
if GC_BRIDGE not in ("docker", "local", "none"):
    raise ImproperlyConfigured(f"GC_BRIDGE={GC_BRIDGE!r} must be docker, local or none.")
REGISTRY_CONTAINER = env_str("REGISTRY_CONTAINER", "registry")
# Paths as the registry process sees them (inside its container for docker).
REGISTRY_CONFIG_PATH = env_str("REGISTRY_CONFIG_PATH", "/etc/docker/registry/config.yml")
REGISTRY_STORAGE_PATH = env_str("REGISTRY_STORAGE_PATH", "/var/lib/registry")
# Empty: /bin/registry for docker (as in registry:2), /usr/bin/docker-registry for local (Debian's package).
REGISTRY_BINARY = env_str("REGISTRY_BINARY")
# GC_BRIDGE=local: the pid file of a registry whose supervisor starts it again when it stops (the run command's demo
# registry), read-only while a file `read-only` lies beside it. Set, the bridge switches it read-only and back.
REGISTRY_PID_FILE = env_str("REGISTRY_PID_FILE")
# Seconds one command may run; then it is killed (in the container, by `timeout`) and reported as timed out.
GC_TIME_LIMIT = int(env_number("GC_TIME_LIMIT", 3600, minimum=1))
# Garbage collection by the scheduler (sync_registry --every): off, daily or weekly.
GC_SCHEDULE = env_str("GC_SCHEDULE", "off")
if GC_SCHEDULE not in ("off", "daily", "weekly"):
    raise ImproperlyConfigured(f"GC_SCHEDULE={GC_SCHEDULE!r} must be off, daily or weekly.")
# The registry's disk is flagged (home page, garbage collection page) from this share of it used.
GC_DISK_WARN_PERCENT = env_number("GC_DISK_WARN_PERCENT", 80, minimum=1)
