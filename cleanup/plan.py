"""Planning a delete: what deleting the chosen tags does, judged against the index.

The registry deletes manifests by digest, and every tag on that digest goes with it. So a delete is planned
from what was chosen — (repository, tag, digest) as the person saw it — against the registry's tags as they
are when the delete runs (cleanup/run.py syncs the repository first):
- a digest is deleted only when every tag it has now was chosen, and no index that stays contains it;
- any other chosen tag is removed alone (distribution 3.x: delete by tag; 2.x: the tag is moved to a tiny
  throwaway manifest whose digest is then deleted, see RegistryClient.remove_tag);
- deleting an index also deletes its platform images and attestations that nothing else uses, after it:
  garbage collection on 2.x keeps every manifest still in the repository, so without this an index delete
  would free nothing;
- a chosen tag that points elsewhere than the person saw is left alone, and one already gone counts as done.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.utils.translation import gettext_noop

from catalog import storage
from catalog.models import ManifestChild, Registry, Tag
from cleanup import reasons
from cleanup.models import AuditEntry


@dataclass(frozen=True)
class Choice:
    """A tag someone chose to delete, at the digest they saw it point to."""

    repository: str
    tag: str
    digest: str


@dataclass
class Step:
    """One registry action: remove a single tag, or delete a manifest (and so all its tags)."""

    action: str  # AuditEntry.REMOVE_TAG or AuditEntry.DELETE_MANIFEST
    repository: str
    digest: str
    tags: list[str]
    children: list[str] = field(default_factory=list)  # an index's images deleted after it
    bytes: int = 0  # freed after garbage collection, from the index
    why: dict | str = ""  # why a chosen tag is only untagged, as a stored reason (written to the audit log)

    @property
    def deletes_manifest(self) -> bool:
        return self.action == AuditEntry.DELETE_MANIFEST

    @property
    def reason(self) -> str:
        """Why a chosen tag is only untagged, in the current language."""
        return reasons.shown(self.why)


@dataclass
class Plan:
    steps: list[Step]
    moved: list[tuple[Choice, str]]  # chosen tags now pointing elsewhere (left alone), with the digest now
    gone: list[Choice]  # chosen tags the registry no longer has
    bytes: int

    @property
    def tag_count(self) -> int:
        return sum(len(step.tags) for step in self.steps)

    @property
    def manifest_steps(self) -> list[Step]:
        return [step for step in self.steps if step.deletes_manifest]

    @property
    def untag_steps(self) -> list[Step]:
        return [step for step in self.steps if not step.deletes_manifest]


# --- Planning (from the index) --------------------------------------------------------------


def plan(registry: Registry, choices: list[Choice]) -> Plan:
    """What deleting these tags does, judged against the index (sync the repositories first)."""
    steps: list[Step] = []
    moved: list[tuple[Choice, str]] = []
    gone: list[Choice] = []
    by_repository: dict[str, list[Choice]] = defaultdict(list)
    for choice in dict.fromkeys(choices):
        by_repository[choice.repository].append(choice)
    for repository, chosen in sorted(by_repository.items()):
        current = dict(
            Tag.objects.filter(repository__registry=registry, repository__name=repository).values_list(
                "name", "manifest__digest"
            )
        )
        valid: dict[str, str] = {}
        for choice in chosen:
            if choice.tag not in current:
                gone.append(choice)
            elif current[choice.tag] != choice.digest:
                moved.append((choice, current[choice.tag]))
            else:
                valid[choice.tag] = choice.digest
        steps.extend(plan_repository(repository, current, valid))
    estimate(registry, steps)
    return Plan(steps, moved, gone, sum(step.bytes for step in steps))


def plan_repository(repository: str, current: dict[str, str], chosen: dict[str, str]) -> list[Step]:
    """Steps for one repository: `current` is every tag -> digest it has, `chosen` the ones to delete."""
    kept = {digest for tag, digest in current.items() if tag not in chosen}
    children = child_digests(set(current.values()))
    inside_kept = {child for digest in kept for child in children.get(digest, ())}
    tags_by_digest: dict[str, list[str]] = defaultdict(list)
    for tag, digest in current.items():
        tags_by_digest[digest].append(tag)
    steps, claimed = [], set()
    for digest in sorted(set(chosen.values())):
        tags = sorted(tag for tag in chosen if chosen[tag] == digest)
        if digest in kept:
            others = sorted(set(tags_by_digest[digest]) - set(tags))
            why = reasons.reason(gettext_noop("Other tags keep this image: %(tags)s."), tags=", ".join(others[:5]))
        elif digest in inside_kept:
            why = reasons.reason(gettext_noop("This image is part of a multi-platform image that stays."))
        else:
            orphans = [c for c in children.get(digest, ()) if c not in inside_kept and c not in kept]
            orphans = [c for c in orphans if c not in claimed]
            claimed.update(orphans)
            steps.append(Step(AuditEntry.DELETE_MANIFEST, repository, digest, tags, children=orphans))
            continue
        steps.extend(Step(AuditEntry.REMOVE_TAG, repository, digest, [tag], why=why) for tag in tags)
    return steps


def child_digests(digests: set[str]) -> dict[str, list[str]]:
    """index digest -> the digests of the manifests in it, for the indexes among `digests`."""
    links = ManifestChild.objects.filter(index__digest__in=digests).values_list("index__digest", "child__digest")
    children: dict[str, list[str]] = defaultdict(list)
    for parent, child in links:
        children[parent].append(child)
    return children


def estimate(registry: Registry, steps: list[Step]) -> None:
    """Set each manifest delete's bytes: the blobs its tags reach that no tag left anywhere reaches, each
    blob counted once (for the first step that frees it). Removing a tag alone frees nothing."""
    indexed = storage.load(registry)
    deleted = {(step.repository, tag) for step in steps if step.deletes_manifest for tag in step.tags}
    remaining: set[int] = set()
    for key, blobs in indexed.blobs_by_tag.items():
        if key not in deleted:
            remaining |= blobs
    counted: set[int] = set()
    for step in steps:
        if step.deletes_manifest:
            blobs = set().union(*(indexed.blobs_by_tag.get((step.repository, tag), set()) for tag in step.tags))
            freed = blobs - remaining - counted
            counted |= freed
            step.bytes = storage.total_size(freed, indexed.sizes)
