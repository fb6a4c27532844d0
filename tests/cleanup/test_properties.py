"""Properties of the delete engine (cleanup/plan.py and cleanup/run.py), checked against a real docker-registry 2.8.

Each test function gets a registry of its own (the `own` fixture) and each Hypothesis example a repository of
its own in it. An example is a random graph of tags sharing digests: 1-6 distinct images (a config of their
own over one shared layer), 1-10 tags on them (so some images have several tags, some none), up to two
multi-platform indexes over a pool of three platform images (so two indexes may share a platform image, or be
the same index), each index with one or two tags, and sometimes a platform image tagged on its own. Then some
tags are deleted through a DeleteJob: a random subset (bulk), one random tag, every tag of one digest, or
the tags a random retention policy does not keep.

What must hold, asked of the registry itself and never of the index:
- the tags left are exactly the tags there were minus the chosen ones;
- every tag left still pulls completely: its manifest by tag (at the digest it had before), for an index every
  platform image, and every blob (config and layers), each checked against its sha256;
- a digest all of whose tags were chosen and that no index left contains is gone (so garbage collection can
  free it), and so are the platform images of a deleted index that nothing left uses;
- the job is done with done == total and no failures, every audit entry is done, each chosen tag is in exactly
  one entry, and each entry's claim is true (a deleted manifest is gone, an untagged one is still there).

The job runs as the dashboard runs it: manifest deletes on the client's threads, tag removals one at a time.
"""

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from catalog import sync
from catalog.models import Tag
from cleanup import plan as delete_plan
from cleanup import retention
from cleanup import run as delete_run
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from devtools.images import ImageSpec, layer, push_index
from registry.client import DOCKER_CONFIG, DOCKER_MANIFEST, MANIFEST_ACCEPT, NotFound, RegistryClient

LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BASE_FILES = {"etc/os-release": "ID=props\n"}
PLATFORMS = [("amd64", ""), ("arm64", "v8"), ("arm", "v7")]
NAMES = itertools.count()  # one repository per example

pytestmark = pytest.mark.slow  # hypothesis examples against a real registry

SETTINGS = {
    "deadline": None,
    "database": None,  # nothing written to .hypothesis/ in the project
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


# --- The graph -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    images: int  # plain images 0 .. images-1
    indexes: tuple[tuple[int, int], ...]  # each index: its two platforms, positions in PLATFORMS
    tags: tuple[tuple[str, str, int], ...]  # (tag, "image" | "index" | "platform", which)


@st.composite
def graphs(draw) -> Graph:
    images = draw(st.integers(1, 6))
    tags = [(f"img-{n}", "image", draw(st.integers(0, images - 1))) for n in range(draw(st.integers(1, 10)))]
    pairs = st.sets(st.integers(0, len(PLATFORMS) - 1), min_size=2, max_size=2).map(lambda pair: tuple(sorted(pair)))
    indexes = tuple(draw(st.lists(pairs, max_size=2)))
    for n in range(len(indexes)):
        tags += [(f"idx-{n}-{k}", "index", n) for k in range(draw(st.integers(1, 2)))]
    for platform in sorted({platform for pair in indexes for platform in pair}):
        if draw(st.booleans()):
            tags.append((f"plat-{platform}", "platform", platform))
    return Graph(images, indexes, tuple(tags))


@dataclass
class Pushed:
    repository: str
    before: dict[str, str]  # every tag -> the digest it pointed to before the job
    children: dict[str, list[str]]  # index digest -> its platform images


def canonical(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def descriptor(blob) -> dict:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}


def platform_spec(platform: int) -> ImageSpec:
    """The same platform gives the same image (digest included) within a repository."""
    architecture, variant = PLATFORMS[platform]
    return ImageSpec(
        layers=[BASE_FILES, {"bin/arch": architecture + variant}],
        created=datetime(2024, 1, 1, tzinfo=UTC),
        architecture=architecture,
        variant=variant,
    )


def retag(client: RegistryClient, repository: str, digest: str, tag: str) -> None:
    """Point `tag` at a manifest already in the repository, byte for byte."""
    response = client.request("GET", f"/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT})
    client.put_manifest(repository, tag, response.content, response.headers["Content-Type"])


def push_graph(client: RegistryClient, graph: Graph) -> Pushed:
    repository = f"props/r{next(NAMES)}"
    base = client.upload_blob(repository, layer(BASE_FILES), LAYER_TYPE)
    bodies = []
    for n in range(graph.images):
        config = {"architecture": "amd64", "os": "linux", "config": {"Labels": {"repository": repository, "n": str(n)}}}
        config_blob = client.upload_blob(repository, canonical(config), DOCKER_CONFIG, known_new=True)
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(config_blob),
            "layers": [descriptor(base)],
        }
        bodies.append(canonical(manifest))
    tagged = {which for _, kind, which in graph.tags if kind == "image"}
    for n, body in enumerate(bodies):  # untagged images are in the repository too, under their digest
        if n not in tagged:
            client.put_manifest(repository, digest_of(body), body, DOCKER_MANIFEST)
    for tag, kind, which in graph.tags:
        if kind == "image":
            client.put_manifest(repository, tag, bodies[which], DOCKER_MANIFEST)
    index_digests, platform_digests = [], {}
    for n, pair in enumerate(graph.indexes):
        first = next(tag for tag, kind, which in graph.tags if kind == "index" and which == n)
        digest = push_index(client, repository, first, [platform_spec(p) for p in pair]).digest
        index_digests.append(digest)
        for entry, platform in zip(client.manifest(repository, digest).manifests, pair, strict=True):
            platform_digests[platform] = entry.digest
    for tag, kind, which in graph.tags:
        if kind == "index" and not tag.endswith("-0"):
            retag(client, repository, index_digests[which], tag)
        elif kind == "platform":
            retag(client, repository, platform_digests[which], tag)
    before = {tag: client.resolve(repository, tag) for tag, _, _ in graph.tags}
    children = {
        digest: [entry.digest for entry in client.manifest(repository, digest).manifests]
        for digest in set(index_digests)
    }
    return Pushed(repository, before, children)


# --- Running and checking ---------------------------------------------------------------------


def delete(own, pushed: Pushed, chosen: set[str], kind: str) -> DeleteJob:
    """A job as the pages create it: after a sync, with the digests the person saw."""
    _, client, registry = own
    sync.sync_repository(client, registry, pushed.repository)
    choices = [delete_plan.Choice(pushed.repository, tag, client.resolve(pushed.repository, tag)) for tag in chosen]
    job = delete_run.create_job(registry, kind, choices, user="t", address="")
    return delete_run.run(job, client)


def exists(client: RegistryClient, repository: str, digest: str) -> bool:
    try:
        client.resolve(repository, digest)  # a HEAD by digest with the full Accept list
    except NotFound:
        return False
    return True


def pull_blob(client: RegistryClient, repository: str, blob) -> None:
    body = client.request("GET", f"/v2/{repository}/blobs/{blob.digest}").content
    assert digest_of(body) == blob.digest and len(body) == blob.size


def pull(client: RegistryClient, repository: str, tag: str, digest: str, pulled: set[str]) -> None:
    """Everything a `docker pull` of this tag needs is there, and is what it was."""
    manifest = client.manifest(repository, tag)  # checks the body against Docker-Content-Digest
    assert manifest.digest == digest, f"{tag} moved from {digest} to {manifest.digest}"
    images = [client.manifest(repository, entry.digest) for entry in manifest.manifests] or [manifest]
    for image in images:
        assert image.blobs, f"{tag}: {image.digest} has no config or layers"
        for blob in image.blobs:
            if blob.digest not in pulled:
                pull_blob(client, repository, blob)
                pulled.add(blob.digest)


def check(own, pushed: Pushed, chosen: set[str], job: DeleteJob) -> None:
    _, client, _ = own
    repository, before = pushed.repository, pushed.before

    entries = list(job.entries.all())
    summary = [(entry.action, entry.tags, entry.digest[:15], entry.outcome, entry.message) for entry in entries]
    assert job.status == DeleteJob.DONE, job.error
    assert job.done == job.total == len(chosen) and job.failed == 0, (job.done, job.total, job.failed, summary)
    assert all(entry.outcome == AuditEntry.DONE for entry in entries), summary
    assert sorted(tag for entry in entries for tag in entry.tags) == sorted(chosen), summary

    event(f"indexes: {len(pushed.children)}")
    event(f"entries: {sorted({(entry.action, entry.outcome) for entry in entries})}")
    survivors = set(before) - chosen
    assert set(client.tags(repository)) == survivors

    pulled: set[str] = set()
    for tag in sorted(survivors):
        pull(client, repository, tag, before[tag], pulled)

    kept = {before[tag] for tag in survivors}
    inside_kept = {child for digest in kept for child in pushed.children.get(digest, ())}
    dead = {digest for digest in before.values() if digest not in kept | inside_kept}
    dead |= {child for digest in dead for child in pushed.children.get(digest, ()) if child not in kept | inside_kept}
    still_there = sorted(digest for digest in dead if exists(client, repository, digest))
    assert not still_there, f"not deleted: {still_there}"

    for entry in entries:  # each entry's claim is true
        if entry.action == AuditEntry.DELETE_MANIFEST:
            assert entry.digest in dead, summary
        else:
            assert entry.digest in kept | inside_kept and exists(client, repository, entry.digest), summary


# --- The properties -------------------------------------------------------------------------


@settings(max_examples=18, **SETTINGS)
@given(graph=graphs(), data=st.data())
def test_a_bulk_delete_removes_exactly_the_chosen_tags_and_everything_left_still_pulls(own, graph, data):
    pushed = push_graph(own[1], graph)
    chosen = data.draw(st.sets(st.sampled_from(sorted(pushed.before)), min_size=1), label="chosen")
    check(own, pushed, chosen, delete(own, pushed, chosen, DeleteJob.TAGS))


@settings(max_examples=10, **SETTINGS)
@given(graph=graphs(), data=st.data())
def test_removing_one_tag_removes_only_that_tag(own, graph, data):
    pushed = push_graph(own[1], graph)
    chosen = {data.draw(st.sampled_from(sorted(pushed.before)), label="tag")}
    check(own, pushed, chosen, delete(own, pushed, chosen, DeleteJob.TAG))


@settings(max_examples=10, **SETTINGS)
@given(graph=graphs(), data=st.data())
def test_deleting_an_image_removes_all_its_tags_and_nothing_else(own, graph, data):
    pushed = push_graph(own[1], graph)
    digest = data.draw(st.sampled_from(sorted(set(pushed.before.values()))), label="digest")
    chosen = {tag for tag, pointed in pushed.before.items() if pointed == digest}
    check(own, pushed, chosen, delete(own, pushed, chosen, DeleteJob.IMAGE))


@settings(max_examples=10, **SETTINGS)
@given(graph=graphs(), data=st.data())
def test_a_retention_run_deletes_exactly_the_tags_its_rules_do_not_keep(own, graph, data):
    """Harbor's semantics, computed here independently: keep the tags of the newest N images (an image's push
    time is its latest tag's), the tags matching the keep pattern, and the protected ones; delete the rest."""
    _, client, registry = own
    pushed = push_graph(client, graph)
    sync.sync_repository(client, registry, pushed.repository)
    order = data.draw(st.permutations(sorted(pushed.before)), label="push order")
    now = timezone.now()
    pushed_at = {tag: now - timedelta(hours=len(order) - n) for n, tag in enumerate(order)}
    for tag, when in pushed_at.items():
        # As notifications would have told them.
        Tag.objects.filter(repository__name=pushed.repository, name=tag).update(pushed_at=when, pushed_known=True)
    keep_newest = data.draw(st.integers(0, 3), label="keep newest") or None
    keep_regex = data.draw(st.sampled_from(["", "^img-1", "-0$", "^plat-"]), label="keep")
    protect_regex = data.draw(st.sampled_from(["", "^idx-"]), label="protect")
    keep_newest = keep_newest or (None if keep_regex else 1)  # a policy needs a retain rule
    policy = RetentionPolicy.objects.create(
        registry=registry,
        repositories=pushed.repository,
        keep_newest=keep_newest,
        newest_by=RetentionPolicy.PUSHED,
        keep_regex=keep_regex,
        protect_regex=protect_regex,
    )

    latest: dict[str, datetime] = {}
    for tag, digest in pushed.before.items():
        latest[digest] = max(latest.get(digest, pushed_at[tag]), pushed_at[tag])
    newest = set(sorted(latest, key=latest.get, reverse=True)[: keep_newest or 0])
    patterns = [pattern for pattern in (keep_regex, protect_regex) if pattern]
    kept = {
        tag
        for tag, digest in pushed.before.items()
        if digest in newest or any(re.search(pattern, tag) for pattern in patterns)
    }
    chosen = set(pushed.before) - kept

    job = DeleteJob.objects.create(
        registry=registry, kind=DeleteJob.RETENTION, policy=policy, requested_by="t", status=DeleteJob.QUEUED
    )
    check(own, pushed, chosen, delete_run.run(job, client, retention.chooser(policy)))
