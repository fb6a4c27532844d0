"""Tag retention with Harbor's semantics.

A policy applies to the repositories whose names match its shell pattern (fnmatch: `*` matches any run of
characters, slashes included, so `shop/*` matches `shop/team/api` and `*` matches every repository). Within a
repository, every policy that matches it counts: a tag is kept when ANY retain rule of ANY of them keeps it,
or when it matches one of their protected-tags patterns; every other tag goes. The retain rules:
- keep the newest N images, by push time (the last time one of the image's tags moved to it) or by the
  image's created time (images without one count as oldest); every tag of a kept image is kept;
- keep the images pushed within the last N days (same push time), with all their tags.
  The registry records no push times: an image none of whose tags has a known one (all found before the
  dashboard watched) goes by its created time for both rules, and the dry run says how many did;
- keep the tags whose name matches a regular expression (re.search: anchor with ^…$ for the whole name).
Cosign-style signature tags (sha256-<digest>.sig/.att/.sbom) are never chosen. A repository that no
policy with a retain rule matches is left alone. What goes is handed to the delete engine
(cleanup/run.py), which never deletes a digest a kept tag still uses: such tags are only untagged.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_noop

from catalog import queries, schedule, sync
from catalog.models import Registry, Tag
from cleanup import patterns, run
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from cleanup.plan import Choice, plan
from cleanup.reasons import counted, english, joined, reason, shown
from registry.client import get_client

UNDATED = datetime.min.replace(tzinfo=UTC)  # sorts an image without a created time below every other
CHUNK = 500  # repository names per query


@dataclass(frozen=True)
class TagInfo:
    """A tag as retention sees it: where it points, when it last moved, when its image was built."""

    name: str
    digest: str
    pushed_at: datetime
    created: datetime | None = None
    pushed_known: bool = True


# --- The rules (pure) -----------------------------------------------------------------------


def matches(policy: RetentionPolicy, repository: str) -> bool:
    """Whether the policy applies to the repository (fnmatchcase: `*` crosses slashes)."""
    return fnmatch.fnmatchcase(repository, policy.repositories)


def has_retain_rule(policy: RetentionPolicy) -> bool:
    return bool(policy.keep_newest or policy.keep_days or policy.keep_regex)


def kept_by(policy: RetentionPolicy, tags: list[TagInfo], now: datetime) -> set[str]:
    """The names of the tags one policy keeps (retain rules and protected tags)."""
    pushed = pushed_times(tags)
    created = {tag.digest: tag.created for tag in tags}
    digests: set[str] = set()
    if policy.keep_newest:
        if policy.newest_by == RetentionPolicy.CREATED:
            ranked = sorted(pushed, key=lambda d: (created[d] or UNDATED, pushed[d], d), reverse=True)
        else:
            ranked = sorted(pushed, key=lambda d: (pushed[d] or UNDATED, d), reverse=True)
        digests.update(ranked[: policy.keep_newest])
    if policy.keep_days:
        since = now - timedelta(days=policy.keep_days)
        digests.update(digest for digest, when in pushed.items() if when and when >= since)
    names = {tag.name for tag in tags if tag.digest in digests}
    for pattern in (policy.keep_regex, policy.protect_regex):
        if pattern:
            names.update(tag.name for tag in tags if searches(pattern, tag.name))
    return names


def pushed_times(tags: list[TagInfo]) -> dict[str, datetime | None]:
    """Each image's push time: the latest known push of its tags, else its created time (None if unknown)."""
    known: dict[str, datetime] = {}
    for tag in tags:
        if tag.pushed_known:
            known[tag.digest] = max(known.get(tag.digest, tag.pushed_at), tag.pushed_at)
    return {tag.digest: known.get(tag.digest, tag.created) for tag in tags}


def uses_push_times(policy: RetentionPolicy) -> bool:
    return bool(policy.keep_days or (policy.keep_newest and policy.newest_by == RetentionPolicy.PUSHED))


def searches(pattern: str, name: str) -> bool:
    try:
        return patterns.searches(pattern, name)
    except patterns.PatternError:  # the form refuses such patterns; one written another way keeps every tag, to be safe
        return True


def to_delete(tags: Iterable[TagInfo], policies: Iterable[RetentionPolicy], now: datetime) -> list[TagInfo]:
    """The tags of one repository that go, given every policy that matches it; sorted by name."""
    policies = list(policies)
    candidates = [tag for tag in tags if not queries.SIGNATURE_TAG_RE.match(tag.name)]
    if not any(has_retain_rule(policy) for policy in policies):
        return []
    kept = set().union(*(kept_by(policy, candidates, now) for policy in policies))
    return sorted((tag for tag in candidates if tag.name not in kept), key=lambda tag: tag.name)


def description(policy: RetentionPolicy) -> dict:
    """The policy's rules in words, as a stored reason (cleanup/reasons.py): the audit log keeps it."""
    rules = []
    if policy.keep_newest:
        if policy.newest_by == RetentionPolicy.CREATED:
            rules.append(
                counted(
                    "keep the newest image by created time",
                    "keep the %(count)d newest images by created time",
                    policy.keep_newest,
                )
            )
        else:
            rules.append(
                counted(
                    "keep the most recently pushed image",
                    "keep the %(count)d most recently pushed images",
                    policy.keep_newest,
                )
            )
    if policy.keep_days:
        rules.append(
            counted(
                "keep images pushed in the last day", "keep images pushed in the last %(count)d days", policy.keep_days
            )
        )
    if policy.keep_regex:
        rules.append(reason(gettext_noop("keep tags matching %(regex)s"), regex=policy.keep_regex))
    if policy.protect_regex:
        rules.append(reason(gettext_noop("never delete tags matching %(regex)s"), regex=policy.protect_regex))
    return joined(rules or [reason(gettext_noop("no retain rule: deletes nothing"))], "; ")


def describe(policy: RetentionPolicy) -> str:
    """The policy's rules in words."""
    return shown(description(policy))


def schedule_description(policy: RetentionPolicy) -> dict:
    """The policy's schedule as a stored reason."""
    label = schedule.LABELS.get(policy.schedule)
    return reason(label) if label else policy.schedule


def schedule_label(policy: RetentionPolicy) -> str:
    return schedule.label(policy.schedule)


# --- From the index -------------------------------------------------------------------------


def repository_names(registry: Registry, policy: RetentionPolicy) -> list[str]:
    """The indexed repositories the policy matches, sorted."""
    names = registry.repositories.values_list("name", flat=True)
    return sorted(name for name in names if matches(policy, name))


def policies_of(registry: Registry, policy: RetentionPolicy) -> list[RetentionPolicy]:
    """Every policy of the registry, with `policy` as given (it may be unsaved or edited)."""
    others = [other for other in registry.retention_policies.all() if other.pk != policy.pk or policy.pk is None]
    return [*others, policy]


def tags_of(registry: Registry, names: list[str]) -> dict[str, list[TagInfo]]:
    found: dict[str, list[TagInfo]] = defaultdict(list)
    for start in range(0, len(names), CHUNK):
        rows = Tag.objects.filter(repository__registry=registry, repository__name__in=names[start : start + CHUNK])
        fields = ("repository__name", "name", "manifest__digest", "pushed_at", "manifest__created", "pushed_known")
        for repository, *tag in rows.values_list(*fields):
            found[repository].append(TagInfo(*tag))
    return found


def decide(registry: Registry, policy: RetentionPolicy, now: datetime | None = None) -> dict[str, list[TagInfo]]:
    """repository -> the tags that go, for each repository the policy matches (all its policies OR-ed)."""
    now = now or timezone.now()
    policies = policies_of(registry, policy)
    names = repository_names(registry, policy)
    tags = tags_of(registry, names)
    return {name: to_delete(tags[name], [p for p in policies if matches(p, name)], now) for name in names}


def candidates(registry: Registry, policy: RetentionPolicy) -> list[Choice]:
    """What a run of the policy chooses to delete, from the index."""
    return [
        Choice(repository, tag.name, tag.digest)
        for repository, going in sorted(decide(registry, policy).items())
        for tag in going
    ]


def refresh(registry: Registry, policy: RetentionPolicy) -> list[str]:
    """Bring the catalog and every repository the policy matches in step with the registry; their names."""
    client = get_client()
    sync.sync_catalog(client, registry)
    names = repository_names(registry, policy)
    for name in names:
        sync.sync_repository(client, registry, name)
    return names


def chooser(policy: RetentionPolicy) -> Callable[[Registry], tuple[list[Choice], list[str]]]:
    """For run.run: re-read the registry, then decide."""

    def choose(registry: Registry) -> tuple[list[Choice], list[str]]:
        names = refresh(registry, policy)
        return candidates(registry, policy), names

    return choose


# --- Dry run --------------------------------------------------------------------------------


@dataclass
class Going:
    tag: TagInfo
    reason: str = ""  # set when the tag is only untagged: a kept tag shares its image

    @property
    def untag_only(self) -> bool:
        return bool(self.reason)


@dataclass
class RepositoryPreview:
    name: str
    synced_at: datetime | None
    going: list[Going] = field(default_factory=list)
    kept: int = 0
    bytes: int = 0


@dataclass
class Preview:
    repositories: list[RepositoryPreview]
    bytes: int
    unknown_pushed: int = 0  # images of the matched repositories judged by created time: no known push time

    @property
    def tag_count(self) -> int:
        return sum(len(repository.going) for repository in self.repositories)

    @property
    def synced_at(self) -> datetime | None:
        """The oldest sync among the repositories: what the whole preview is as of."""
        dates = [repository.synced_at for repository in self.repositories if repository.synced_at]
        return min(dates, default=None)

    @property
    def unindexed(self) -> int:
        return sum(1 for repository in self.repositories if repository.synced_at is None)


def preview(registry: Registry, policy: RetentionPolicy, now: datetime | None = None) -> Preview:
    """What a run would do, judged from the index alone (nothing is asked of the registry)."""
    going = decide(registry, policy, now)
    unknown = 0
    if uses_push_times(policy):
        tags = tags_of(registry, repository_names(registry, policy))
        for name_tags in tags.values():
            known = {tag.digest for tag in name_tags if tag.pushed_known}
            unknown += len({tag.digest for tag in name_tags} - known)
    work = plan(registry, [Choice(name, tag.name, tag.digest) for name, tags in going.items() for tag in tags])
    reasons = {(step.repository, step.tags[0]): step.reason for step in work.untag_steps}
    freed: dict[str, int] = defaultdict(int)
    for step in work.steps:
        freed[step.repository] += step.bytes
    counted = registry.repositories.annotate(tag_count=Count("tags")).values_list("name", "synced_at", "tag_count")
    indexed = {name: (synced_at, count) for name, synced_at, count in counted}
    rows = []
    for name, tags in sorted(going.items()):
        synced_at, total = indexed.get(name, (None, len(tags)))
        shown = [Going(tag, reasons.get((name, tag.name), "")) for tag in tags]
        rows.append(RepositoryPreview(name, synced_at, shown, total - len(tags), freed[name]))
    return Preview(rows, work.bytes, unknown)


# --- Policies as people read and change them -------------------------------------------------


def summary(policy: RetentionPolicy) -> dict:
    """The policy in words, as a stored reason (cleanup/reasons.py)."""
    return reason(
        gettext_noop("%(pattern)s: %(rules)s; schedule: %(schedule)s"),
        pattern=policy.repositories,
        rules=description(policy),
        schedule=schedule_description(policy),
    )


def record_change(policy: RetentionPolicy, what: str, user: str, address: str, before: dict | None = None) -> None:
    """An audit entry for a created, changed or deleted policy (`what`, untranslated), with its rules in words,
    stored untranslated: whoever reads the audit log reads it in their own language."""
    why = reason(
        gettext_noop("%(what)s retention policy #%(id)s. %(summary)s."),
        what=reason(what),
        id=policy.pk,
        summary=summary(policy),
    )
    if before:
        why = [why, reason(gettext_noop("Before: %(summary)s."), summary=before)]
    AuditEntry.objects.create(
        action=AuditEntry.RULE_CHANGE,
        user=user,
        address=address,
        repository=policy.repositories,
        message=english(why),
        message_reason=why,
    )


def add_policy(policy: RetentionPolicy, registry: Registry, user: str, address: str) -> RetentionPolicy:
    """Save a new policy for the registry, and say so in the audit log."""
    policy.registry, policy.created_by = registry, user
    policy.save()
    record_change(policy, gettext_noop("Created"), user, address)
    return policy


def change_policy(policy: RetentionPolicy, before: RetentionPolicy, user: str, address: str) -> RetentionPolicy:
    """Save an edited policy; the audit log has its rules before (`before`: the policy as saved) and after."""
    policy.save()
    record_change(policy, gettext_noop("Changed"), user, address, before=summary(before))
    return policy


def remove_policy(policy: RetentionPolicy, user: str, address: str) -> None:
    record_change(policy, gettext_noop("Deleted"), user, address)
    policy.delete()


def policy_rows(registry: Registry) -> list[dict]:
    """Every policy of the registry with its rules in words, its schedule, how many repositories it matches now and
    its latest run."""
    policies = list(registry.retention_policies.all())
    names = list(registry.repositories.values_list("name", flat=True))
    latest = {}
    for job in DeleteJob.objects.filter(policy__in=policies).order_by("created_at"):
        latest[job.policy_id] = job
    return [
        {
            "policy": policy,
            "rules": describe(policy),
            "schedule": schedule_label(policy),
            "matching": sum(1 for name in names if matches(policy, name)),
            "job": latest.get(policy.pk),
        }
        for policy in policies
    ]


# --- Runs -----------------------------------------------------------------------------------


def active_job(policy: RetentionPolicy) -> DeleteJob | None:
    """The policy's run queued or running now (one whose worker stopped giving signs of life does not count)."""
    queued = DeleteJob.objects.filter(policy=policy, status=DeleteJob.QUEUED)
    running = run.running_jobs(policy.registry).filter(policy=policy)
    return (queued | running).order_by("-created_at").first()


def new_run(policy: RetentionPolicy, user: str, address: str = "", now: datetime | None = None) -> DeleteJob:
    """A queued run of the policy (its job), stamped as the policy's last run."""
    job = DeleteJob.objects.create(
        registry_id=policy.registry_id,
        kind=DeleteJob.RETENTION,
        policy=policy,
        requested_by=user,
        address=address,
        status=DeleteJob.QUEUED,
    )
    policy.last_run_at = now or timezone.now()
    policy.save(update_fields=["last_run_at"])
    return job


def due(now: datetime) -> list[RetentionPolicy]:
    """The scheduled policies whose interval has passed since their last run and have no run queued or running."""
    scheduled = RetentionPolicy.objects.filter(schedule__in=list(schedule.SECONDS)).select_related("registry")
    return [
        policy
        for policy in scheduled
        if schedule.is_due(policy.schedule, policy.last_run_at, now) and not active_job(policy)
    ]
