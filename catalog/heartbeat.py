"""A running job's sign of life. While a reconcile, a delete job or a garbage collection runs, a thread stamps its
row's heartbeat_at every HEARTBEAT_SECONDS, whatever the job is waiting for; a row still "running" without a stamp
for SILENT_AFTER has lost its worker (killed, or its machine stopped), and the scheduler's next tick ends it."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

from django.db import DatabaseError, connection, models
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
SILENT_AFTER = timedelta(seconds=60)
# Rows from before heartbeats were kept have none: they count as alive this long after they started.
UNSTAMPED_AFTER = timedelta(hours=6)


@contextlib.contextmanager
def heartbeat(row: models.Model) -> Iterator[None]:
    """Stamp the row now, then every HEARTBEAT_SECONDS from a thread of its own, until the block ends."""
    rows = type(row).objects.filter(pk=row.pk)
    rows.update(heartbeat_at=timezone.now())
    if connection.in_atomic_block:
        # The job runs inside a transaction (tasks run at once, in the request that queued them): no one else sees
        # a stamp before it commits, and the stamping thread's own connection would wait on this one's row lock
        # while this one waits for the thread at the end of the block.
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    rows.update(heartbeat_at=timezone.now())
                except DatabaseError as exc:  # a database hiccup must not stop the job: the next beat tries again
                    logger.warning("Heartbeat of %s %s missed: %s", type(row).__name__, row.pk, exc)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{type(row).__name__}-{row.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def silent(now=None) -> Q:
    """Running rows that have lost their worker: no heartbeat for SILENT_AFTER (or, never stamped, started long
    ago). Combine with the model's own "running" status."""
    now = now or timezone.now()
    return Q(heartbeat_at__lt=now - SILENT_AFTER) | Q(heartbeat_at__isnull=True, started_at__lt=now - UNSTAMPED_AFTER)
