"""The rhythms of periodic work (a retention policy's schedule, GC_SCHEDULE) and when a run is due. The scheduler
that asks is `sync_registry --every` (catalog.signals.scheduler_tick)."""

from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy, gettext_noop

OFF, DAILY, WEEKLY = "off", "daily", "weekly"
SECONDS = {DAILY: 86400, WEEKLY: 7 * 86400}
# Untranslated: the audit log stores a policy's schedule this way and translates it when shown.
LABELS = {OFF: gettext_noop("off"), DAILY: gettext_noop("daily"), WEEKLY: gettext_noop("weekly")}
CHOICES = [(key, gettext_lazy(label)) for key, label in LABELS.items()]


def is_due(schedule: str, last_run: datetime | None, now: datetime) -> bool:
    """Whether a run on this schedule is due: never run, or its interval has passed since the last one."""
    seconds = SECONDS.get(schedule)
    if seconds is None:
        return False
    return last_run is None or now - last_run >= timedelta(seconds=seconds)


def label(schedule: str) -> str:
    return str(dict(CHOICES).get(schedule, schedule))
