"""Gunicorn's settings for the dashboard (`gunicorn -c python:registry_ui.gunicorn_conf registry_ui.wsgi`), from the
environment: WEB_CONCURRENCY worker processes, WEB_THREADS threads in each, PORT. Processes share the database and
the cache in DATA_DIR (or PostgreSQL and Redis), so several can serve at once; each has its own interpreter lock,
which is what lets pages use more than one core."""

import os
import sys


def number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"{name} must be a whole number of at least 1, not {value!r}.")
    return int(value)


workers = number("WEB_CONCURRENCY", 2)
threads = number("WEB_THREADS", 4)
bind = [f"0.0.0.0:{number('PORT', 8000)}"]
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'  # %(M)s: the milliseconds a request took


def post_worker_init(worker):
    """Import the URLs and the views they name (prometheus_client among them) before the first request rather than
    during it: the registry gives a notification 2 s, and a loaded machine can take a good part of that."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
