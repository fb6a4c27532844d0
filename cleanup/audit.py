"""The audit log: the entries that come from outside the delete engine (the registry's own delete notifications),
and choosing entries by the log's filters (the page, its CSV and the API ask alike)."""

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from catalog.models import RegistryEvent
from cleanup.models import AuditEntry


def record_registry_delete(sender, instance: RegistryEvent, created: bool, **kwargs) -> None:
    """A delete the registry reported (made past the dashboard, or by it) goes to the audit log too. Connected to
    RegistryEvent's post_save, so it is written in the transaction that records the event."""
    if not created or instance.action != "delete":
        return
    AuditEntry.objects.create(
        source=AuditEntry.REGISTRY,
        user=instance.actor,
        address=instance.address,
        action=AuditEntry.REGISTRY_DELETE,
        repository=instance.repository,
        tags=[instance.tag] if instance.tag else [],
        digest=instance.digest,
        outcome=AuditEntry.DONE,
        timestamp=instance.timestamp or timezone.now(),
    )


FILTERS = ["user", "repository", "action", "source", "since", "until"]


def filter_entries(params) -> tuple[QuerySet, dict[str, str], list[str]]:
    """The entries the GET parameters ask for, the parameters as given (to fill the form in again), and a
    message for each date filter left out because its value is no date. Unknown actions and sources are ignored;
    `repository` is an exact name, or a prefix when it ends with `*`."""
    filters = {key: params.get(key, "").strip() for key in FILTERS}
    entries, errors = AuditEntry.objects.all(), []
    if filters["user"]:
        entries = entries.filter(user=filters["user"])
    if filters["repository"].endswith("*"):
        entries = entries.filter(repository__startswith=filters["repository"][:-1])
    elif filters["repository"]:
        entries = entries.filter(repository=filters["repository"])
    if filters["action"] in AuditEntry.ACTIONS:
        entries = entries.filter(action=filters["action"])
    if filters["source"] in (AuditEntry.DASHBOARD, AuditEntry.REGISTRY):
        entries = entries.filter(source=filters["source"])
    # Both ends are whole days in the current time zone: `until` takes in its day up to midnight.
    for key, lookup, days_after, label in [
        ("since", "timestamp__gte", 0, _("Since")),
        ("until", "timestamp__lt", 1, _("Until")),
    ]:
        day = parse_day(filters[key]) if filters[key] else None
        if filters[key] and day is None:
            errors.append(
                _("%(field)s: “%(value)s” is not a date like 2024-01-31, so this filter was left out.")
                % {"field": label, "value": filters[key]}
            )
        elif day and (bound := start_of_day(day, days_after)):
            entries = entries.filter(**{lookup: bound})
    return entries, filters, errors


def parse_day(value: str) -> date | None:
    try:
        return parse_date(value)
    except ValueError:  # well formed but no such day, e.g. 2024-02-30
        return None


def start_of_day(day: date, days_after: int) -> datetime | None:
    """Midnight starting the day `days_after` days after `day` in the current time zone, in UTC; None past
    the ends of the calendar (the filter then bounds nothing)."""
    try:
        midnight = datetime.combine(day + timedelta(days=days_after), time.min)
        return timezone.make_aware(midnight).astimezone(UTC)
    except OverflowError:
        return None


def without_echoes(entries: QuerySet[AuditEntry]) -> tuple[QuerySet[AuditEntry], int]:
    """The entries without the registry's reports of the deletes the dashboard's own account made (each delete
    of a job came back as a "Delete seen by the registry" row: a 34-tag delete made 77 rows), and how many were
    folded. The CSV keeps them."""
    if not settings.REGISTRY_USERNAME:
        return entries, 0
    echoes = Q(source=AuditEntry.REGISTRY, action=AuditEntry.REGISTRY_DELETE, user=settings.REGISTRY_USERNAME)
    return entries.exclude(echoes), entries.filter(echoes).count()
