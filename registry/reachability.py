"""Since when the registry has not answered, as every process of the dashboard saw it: the client reports each
answer and each connection failure or time-out here, and pages show a banner while the mark lasts.

The mark lives in the default cache (shared by the web processes and the workers) and lasts MARK_SECONDS after
the last failure; any answer clears it (checked at most once a second per process, so a sweep of 100,000
requests costs no more than a few cache writes)."""

import contextlib
import threading
import time
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

KEY = "registry-unreachable-since"
MARK_SECONDS = 120
CLEAR_EVERY_SECONDS = 1.0

_lock = threading.Lock()
_last_clear = 0.0


def observe(exchange) -> None:
    """Called by the client for each request (a registry.client.Exchange): the registry answered (any HTTP
    status), or could not be reached in time; a token service's requests do not count. A cache that fails never
    fails the request."""
    global _last_clear
    if not exchange.ours:
        return
    with contextlib.suppress(Exception):
        if exchange.answered:
            with _lock:
                now = time.monotonic()
                if now - _last_clear < CLEAR_EVERY_SECONDS:
                    return
                _last_clear = now
            cache.delete(KEY)
        else:
            cache.set(KEY, cache.get(KEY) or timezone.now(), MARK_SECONDS)


def down_since() -> datetime | None:
    with contextlib.suppress(Exception):
        return cache.get(KEY)
    return None
