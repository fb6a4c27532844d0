"""The audit log: every delete the dashboard made and every delete the registry reported, for maintainers."""

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC
from itertools import chain
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import CharField, Max, QuerySet, Value
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET

from accounts import roles
from catalog.pages import render_page
from cleanup import audit
from cleanup.models import AuditEntry

ENTRIES_PER_PAGE = 50
TAGS_SHOWN = 10
ACTION_LABELS = {
    AuditEntry.REMOVE_TAG: gettext_lazy("Remove tag"),
    AuditEntry.DELETE_MANIFEST: gettext_lazy("Delete image"),
    AuditEntry.DELETE_REPOSITORY: gettext_lazy("Delete repository"),
    AuditEntry.RETENTION_RUN: gettext_lazy("Retention run"),
    AuditEntry.RULE_CHANGE: gettext_lazy("Change retention rule"),
    AuditEntry.REGISTRY_DELETE: gettext_lazy("Delete seen by the registry"),
    AuditEntry.GARBAGE_COLLECTION: gettext_lazy("Garbage collection"),
}
SOURCE_LABELS = {
    AuditEntry.DASHBOARD: pgettext_lazy("audit source", "dashboard"),
    AuditEntry.REGISTRY: pgettext_lazy("audit source", "registry"),
}
OUTCOME_LABELS = {
    AuditEntry.DONE: pgettext_lazy("audit outcome", "done"),
    AuditEntry.FAILED: pgettext_lazy("audit outcome", "failed"),
    AuditEntry.SKIPPED: pgettext_lazy("audit outcome", "skipped"),
    AuditEntry.UNKNOWN: pgettext_lazy("audit outcome", "unknown until read back"),
}
CSV_HEADER = ["timestamp", "source", "user", "address", "action", "repository", "tags", "digest", "outcome"]
CSV_HEADER += ["message", "bytes", "job"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may take for the start of a formula


def labelled(entry: AuditEntry) -> AuditEntry:
    """Adds what the table shows beyond the stored fields."""
    entry.action_label = ACTION_LABELS.get(entry.action, entry.action)
    entry.source_label = SOURCE_LABELS.get(entry.source, entry.source)
    entry.outcome_label = OUTCOME_LABELS.get(entry.outcome, entry.outcome)
    entry.shown_tags, entry.more_tags = entry.tags[:TAGS_SHOWN], max(len(entry.tags) - TAGS_SHOWN, 0)
    return entry


@dataclass
class JobRow:
    """A delete job's entries, one row of the log (expandable)."""

    job_id: int
    entries: list[AuditEntry]

    @property
    def latest(self) -> AuditEntry:
        return self.entries[0]

    @property
    def tags(self) -> list[str]:
        return [tag for entry in self.entries for tag in entry.tags]

    @property
    def repositories(self) -> list[str]:
        return sorted({entry.repository for entry in self.entries if entry.repository})

    @property
    def outcomes(self) -> list[tuple[str, str, int]]:
        counts = Counter(entry.outcome for entry in self.entries)
        return [(outcome, OUTCOME_LABELS.get(outcome, outcome), count) for outcome, count in sorted(counts.items())]

    @property
    def bytes(self) -> int:
        return sum(entry.bytes for entry in self.entries)


def log_rows(entries: QuerySet[AuditEntry]) -> QuerySet:
    """One row per delete job and one per entry outside a job, newest first: (kind, id, time) for the paginator."""
    jobs = (
        entries.filter(job__isnull=False)
        .order_by()
        .values("job_id")
        .annotate(latest=Max("timestamp"), kind=Value("job", output_field=CharField()))
        .values_list("kind", "job_id", "latest")
    )
    loose = (
        entries.filter(job__isnull=True)
        .order_by()
        .annotate(kind=Value("entry", output_field=CharField()))
        .values_list("kind", "pk", "timestamp")
    )
    return jobs.union(loose, all=True).order_by("-latest")


def page_rows(entries: QuerySet[AuditEntry], keys: list[tuple]) -> list[AuditEntry | JobRow]:
    """The page's rows, in order: entries, and jobs with their entries (newest first)."""
    job_ids = [key for kind, key, _ in keys if kind == "job"]
    loose = entries.in_bulk([key for kind, key, _ in keys if kind == "entry"])
    by_job: dict[int, list[AuditEntry]] = defaultdict(list)
    for entry in entries.filter(job_id__in=job_ids):
        by_job[entry.job_id].append(labelled(entry))
    return [JobRow(key, by_job[key]) if kind == "job" else labelled(loose[key]) for kind, key, _ in keys]


@require_GET
@roles.role_required(roles.MAINTAINER)
def audit_log(request):
    """The audit entries, newest first, a delete job's in one expandable row, filtered and paginated; a bad date
    shows a message, never an error."""
    entries, filters, errors = audit.filter_entries(request.GET)
    entries, echoes = audit.without_echoes(entries)
    page = Paginator(log_rows(entries), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = page_rows(entries, list(page.object_list))
    active = {key: value for key, value in filters.items() if value}
    context = {
        "page": page,
        "echoes": echoes,
        "filters": filters,
        "filtered": bool(active),
        "errors": errors,
        "actions": ACTION_LABELS.items(),
        "sources": SOURCE_LABELS.items(),
        "csv_url": reverse("browser-audit-csv") + (f"?{urlencode(active)}" if active else ""),
    }
    return render_page(request, "cleanup/audit.html", context, {"audit": "table"})


class Echo:
    """A file for csv.writer that hands each line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


def defused(cell):
    """A text cell a spreadsheet would read as a formula, quoted so that it stays text."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


def csv_row(entry: AuditEntry) -> list:
    timestamp = entry.timestamp.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    tags = " ".join(str(tag) for tag in entry.tags)
    cells = [timestamp, entry.source, entry.user, entry.address, entry.action, entry.repository, tags]
    cells += [entry.digest, entry.outcome, entry.message, entry.bytes, entry.job_id or ""]
    return [defused(cell) for cell in cells]


@require_GET
@roles.role_required(roles.MAINTAINER)
def audit_csv(request):
    """Every entry the filters match as CSV, streamed: the log can be longer than memory should hold."""
    entries, _filters, _errors = audit.filter_entries(request.GET)
    writer = csv.writer(Echo())
    rows = chain([CSV_HEADER], (csv_row(entry) for entry in entries.iterator()))
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    filename = f"audit-{timezone.now().astimezone(UTC):%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
