"""The counters every process of the dashboard adds to: registry requests (told by the client's `observe`) and the
registry's notifications (received by the web process, applied by the notifications worker). /metrics adds them up.

Pages, task workers and the notifications listener are separate processes (and, with compose, separate
containers), so these use prometheus_client's multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set, each process
writes its counts to its own memory-mapped file there and a scrape sums the files. Counting in the database was
the other way: it would add a write to each of the thousands of requests a reconcile makes, in the same SQLite
file the index is written to. The run command and the image point PROMETHEUS_MULTIPROC_DIR at DATA_DIR/metrics
and empty it when everything starts. Without it (one process, e.g. the tests) the counts are this process's own.

Files are named by host name and process id, not by process id alone: containers sharing the folder each count
their processes from 1, and two processes writing one file would corrupt it.
"""

import os
import socket

from prometheus_client import CollectorRegistry, Counter, Histogram, values

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_identifier() -> str:
    # "_" separates the parts of the file names prometheus_client reads back.
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


if MULTIPROCESS:
    values.ValueClass = values.MultiProcessValue(process_identifier)

# This process's counters when there is no multiprocess folder; with one, /metrics reads the files instead.
REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "registry_ui_registry_requests",
    "Requests the dashboard sent to the registry (and its token service), by method, operation and HTTP status "
    "(unreachable or timeout when no answer came).",
    ["method", "operation", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "registry_ui_registry_request_duration_seconds",
    "Time the registry took to answer the dashboard's requests, by operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
NOTIFICATIONS_RECEIVED = Counter(
    "registry_ui_notifications_received",
    "Events the registry's notifications delivered (in envelopes that were accepted), by action.",
    ["action"],
    registry=REGISTRY,
)
NOTIFICATIONS_DUPLICATES = Counter(
    "registry_ui_notifications_duplicates",
    "Events delivered again (an id already recorded): the registry retries until it sees a 2xx.",
    registry=REGISTRY,
)
NOTIFICATIONS_APPLIED = Counter(
    "registry_ui_notifications_applied",
    "Index updates the notifications worker carried out for recorded push and delete events, by action.",
    ["action"],
    registry=REGISTRY,
)
ACTIONS = ("push", "pull", "delete", "mount")


def count_request(exchange) -> None:
    """The client's `observe` (a registry.client.Exchange): one request, its status and its time."""
    status = str(exchange.status) if exchange.answered else (exchange.failure or "unreachable").lower()
    REQUESTS.labels(exchange.method, exchange.operation, status).inc()
    REQUEST_SECONDS.labels(exchange.operation).observe(exchange.seconds)


def count_received(action: str) -> None:
    NOTIFICATIONS_RECEIVED.labels(action if action in ACTIONS else "other").inc()


def count_duplicate() -> None:
    NOTIFICATIONS_DUPLICATES.inc()


def count_applied(action: str) -> None:
    NOTIFICATIONS_APPLIED.labels(action).inc()
