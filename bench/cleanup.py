"""Clearing old tags of a 1,500-tag repository as a maintainer would: one filter, one review, one confirmation.

Run from the repository root: `.venv/bin/python bench/cleanup.py` (or `make bench-cleanup`). Needs the
docker-registry binary (Debian package docker-registry). It prints numbers and asserts no timing target; it
exits non-zero when the outcome is wrong: a tag that was not chosen is gone, or a chosen one survived, or a
survivor does not pull.

The repository: 1,500 distinct images (build-0 … build-1499, created in an order unrelated to their names)
and `stable`, a second tag on the oldest build's image. The maintainer selects "all but the newest 10 by
created time", unticks `stable` by hand, reviews and confirms. Each step goes through Django's test client
in this process; the delete job runs inside the confirming request, as a worker would at once. Last, the
same deletes are sent straight to the registry in a copy of the repository: the floor for the job.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.repository_page import SERVICE_USER, RequestCounter, configure_django
from devtools.localregistry import LocalRegistry
from registry.client import DOCKER_MANIFEST, RegistryClient
from registry.htpasswd import add_user

REPOSITORY = "big/many"
KEEP = 10


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-cleanup-") as temp:
        temp = Path(temp)
        registry = LocalRegistry(temp / "registry")
        registry.write_config()
        password = secrets.token_urlsafe(24)
        add_user(registry.htpasswd, SERVICE_USER, password, cost=4)
        registry.start()
        try:
            return run(registry, password, temp / "data")
        finally:
            registry.stop()


def run(registry: LocalRegistry, password: str, data_dir: Path) -> int:
    configure_django(registry, password, data_dir)
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from accounts import roles
    from catalog import sync
    from cleanup.models import AuditEntry, DeleteJob
    from tests.conftest import fill_big_repository

    pusher = RegistryClient(registry.url, SERVICE_USER, password)
    began = time.perf_counter()
    created = fill_big_repository(pusher)
    oldest = min(created, key=created.get)
    body = pusher.request("GET", f"/v2/{REPOSITORY}/manifests/{oldest}", headers={"Accept": DOCKER_MANIFEST}).content
    pusher.put_manifest(REPOSITORY, "stable", body, DOCKER_MANIFEST)
    stable_digest = pusher.resolve(REPOSITORY, "stable")
    sync.sync_repository(pusher, sync.current_registry(), REPOSITORY)
    print(f"Pushed and indexed {len(created) + 1:,} tags in {time.perf_counter() - began:.1f} s ({registry.url})")

    user = User.objects.create(username="maintainer")
    roles.set_role(user, roles.MAINTAINER)
    client = Client()
    client.force_login(user)
    counter = RequestCounter()
    page = reverse("browser-repository", args=[REPOSITORY])

    def step(label: str, method: str, path: str, data=None) -> str:
        counter.reset()
        started = time.perf_counter()
        response = getattr(client, method)(path, data or {})
        elapsed = time.perf_counter() - started
        print(f"  {label:<46} {elapsed * 1000:8.0f} ms  {counter.count:5,} registry requests")
        if response.status_code not in (200, 302):
            raise SystemExit(f"{method.upper()} {path} answered {response.status_code}")
        return response.get("Location", "")

    print("As a maintainer:")
    step("select all but the newest 10 by created", "post", reverse("browser-selection", args=[REPOSITORY]),
         {"action": "filter", "keep_newest": KEEP, "by": "created", "next": page})  # fmt: skip
    step("untick 'stable' by hand", "post", reverse("browser-selection", args=[REPOSITORY]),
         {"action": "page", "page_tags": ["stable"], "next": page})  # fmt: skip
    preview_url = reverse("browser-delete-preview", args=[REPOSITORY])
    preview = step("review (from the index)", "post", preview_url)
    step("open the preview", "get", preview)
    job = DeleteJob.objects.get()
    step(
        f"confirm: delete {job.total:,} tags (tags read again first)",
        "post",
        reverse("browser-delete-confirm", args=[job.pk]),
    )
    job.refresh_from_db()
    seconds = (job.finished_at - job.started_at).total_seconds()
    untagged = AuditEntry.objects.filter(job=job, action=AuditEntry.REMOVE_TAG).count()
    print(
        f"Job: {job.status}, {job.done:,} of {job.total:,} tags handled, {job.failed} failed, "
        f"{untagged} only untagged, {seconds:.1f} s ({job.total / seconds:.0f} tags/s); "
        f"about {job.bytes_estimate:,} bytes freed after GC"
    )
    outcome = check(pusher, created, stable_digest, job)
    registry_alone(pusher)
    return outcome


def registry_alone(pusher: RegistryClient) -> None:
    """The same 1,490 deletes sent straight to the registry, 8 at a time, in a copy of the repository: the
    floor for the job's delete phase (2.8 reads every tag of the repository on each delete)."""
    from tests.conftest import fill_big_repository

    created = fill_big_repository(pusher, "big/raw")
    newest = set(sorted(created, key=created.get)[-KEEP:])
    digests = [pusher.resolve("big/raw", tag) for tag in created if tag not in newest]
    began = time.perf_counter()
    pusher.map(lambda digest: pusher.delete_manifest("big/raw", digest), digests)
    elapsed = time.perf_counter() - began
    rate = len(digests) / elapsed
    print(f"The registry alone: {len(digests):,} deletes, 8 in flight, in {elapsed:.1f} s ({rate:.0f}/s)")


def check(pusher: RegistryClient, created: dict, stable_digest: str, job) -> int:
    newest = sorted(created, key=created.get)[-KEEP:]
    expected = sorted([*newest, "stable"])
    left = sorted(pusher.tags(REPOSITORY))
    problems = []
    if left != expected:
        problems.append(f"tags left {left[:20]}… expected {expected}")
    if pusher.resolve(REPOSITORY, "stable") != stable_digest:
        problems.append("stable no longer points to its image")
    for tag in left:
        manifest = pusher.manifest(REPOSITORY, tag)
        if not all(pusher.blob_exists(REPOSITORY, blob.digest) for blob in manifest.blobs):
            problems.append(f"{tag} does not pull")
    if job.failed:
        problems.append(f"{job.failed} tags failed")
    print("Outcome:", "as chosen; every survivor pulls" if not problems else "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
