"""The sync engine against a real registry: what the index holds after adds, moves, deletes and re-pushes."""

import shutil
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from catalog import sync
from catalog.models import Manifest, Repository, SyncRun, Tag
from devtools.images import ImageSpec, push_image
from registry.client import RegistryClient

pytestmark = pytest.mark.django_db


def image(text: str) -> ImageSpec:
    """The same text gives the same image, digest included."""
    return ImageSpec(layers=[{"base": "shared base"}, {"app": text}], created=datetime(2025, 1, 1, tzinfo=UTC))


def indexed_tags(registry) -> dict[str, str]:
    return {
        f"{repository}:{tag}": digest
        for repository, tag, digest in Tag.objects.filter(repository__registry=registry).values_list(
            "repository__name", "name", "manifest__digest"
        )
    }


def test_a_full_reconcile_indexes_every_tag_and_digest(own):
    _, client, registry = own
    one = push_image(client, "team/app", "1", image("one"))
    push_image(client, "team/app", "latest", image("one"))
    two = push_image(client, "team/tool", "2", image("two"))
    run = sync.reconcile(client, registry)
    assert run.status == SyncRun.DONE and run.repositories_total == run.repositories_done == 2
    assert run.manifests_fetched == 2
    assert indexed_tags(registry) == {
        "team/app:1": one.digest,
        "team/app:latest": one.digest,
        "team/tool:2": two.digest,
    }


def test_reconcile_follows_adds_moves_deletes_and_repushes(own):
    _, client, registry = own
    first = push_image(client, "team/app", "1", image("one"))
    moving = push_image(client, "team/app", "stable", image("one"))
    sync.reconcile(client, registry)
    stable_pushed = Tag.objects.get(name="stable").pushed_at

    second = push_image(client, "team/app", "2", image("two"))  # added
    push_image(client, "team/app", "stable", image("two"))  # moved to another digest
    client.delete_manifest("team/app", first.digest)  # deletes 1 (stable no longer points there)
    run = sync.reconcile(client, registry)
    assert run.manifests_fetched == 1  # only the new digest
    assert indexed_tags(registry) == {"team/app:2": second.digest, "team/app:stable": second.digest}
    assert Tag.objects.get(name="stable").pushed_at > stable_pushed
    assert moving.digest == first.digest

    push_image(client, "team/app", "1", image("one"))  # re-pushed: the same digest comes back
    sync.reconcile(client, registry)
    assert indexed_tags(registry)["team/app:1"] == first.digest


def test_reconciling_twice_changes_nothing(own):
    _, client, registry = own
    push_image(client, "team/app", "1", image("one"))
    sync.reconcile(client, registry)
    before = (indexed_tags(registry), Manifest.objects.count(), list(Tag.objects.values_list("pushed_at", flat=True)))
    run = sync.reconcile(client, registry)
    assert run.manifests_fetched == 0
    after = (indexed_tags(registry), Manifest.objects.count(), list(Tag.objects.values_list("pushed_at", flat=True)))
    assert before == after


def test_a_repository_whose_tags_were_all_deleted_stays_with_no_tags(own):
    _, client, registry = own
    gone = push_image(client, "team/gone", "only", image("gone"))
    sync.reconcile(client, registry)
    client.delete_manifest("team/gone", gone.digest)
    sync.reconcile(client, registry)
    assert Repository.objects.get(name="team/gone").tags.count() == 0
    assert not Manifest.objects.filter(digest=gone.digest).exists()  # pruned: nothing reaches it


def test_after_an_interrupted_reconcile_the_next_walks_everything_and_fetches_only_what_is_new(own, monkeypatch):
    _, client, registry = own
    for name in ("a/one", "b/two", "c/three"):
        push_image(client, name, "1", image(name))
    real_sync = sync.sync_repository

    def fail_on_c(client_, registry_, name, **kwargs):
        if name == "c/three":
            raise KeyboardInterrupt  # the worker was stopped half way
        return real_sync(client_, registry_, name, **kwargs)

    monkeypatch.setattr(sync, "sync_repository", fail_on_c)
    with pytest.raises(KeyboardInterrupt):
        sync.reconcile(client, registry)
    synced = []
    monkeypatch.setattr(
        sync, "sync_repository", lambda c, r, name, **k: synced.append(name) or real_sync(c, r, name, **k)
    )
    run = sync.reconcile(client, registry)
    assert synced == ["a/one", "b/two", "c/three"]
    assert run.status == SyncRun.DONE and run.repositories_done == 3 and run.manifests_fetched == 1
    assert set(indexed_tags(registry)) == {"a/one:1", "b/two:1", "c/three:1"}
    # The interrupted run is "running" until its worker has given no sign of life for a minute; then it is failed.
    interrupted = SyncRun.objects.get(status=SyncRun.RUNNING)
    assert sync.end_abandoned(registry) == 0
    SyncRun.objects.filter(pk=interrupted.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert sync.end_abandoned(registry) == 1


def test_a_reconcile_that_failed_once_does_not_hide_later_changes(own, monkeypatch):
    """The registry killed half way through a reconcile, started again, then a tag removed from its storage
    (nothing notifies that): every later reconcile must see it."""
    local, client, registry = own
    for name in ("a/one", "b/two", "c/three"):
        push_image(client, name, "1", image(name))
    real_sync = sync.sync_repository

    def kill_on_b(client_, registry_, name, **kwargs):
        if name == "b/two":
            local.process.kill()  # kill -9
            local.process.wait()
        return real_sync(client_, registry_, name, **kwargs)

    monkeypatch.setattr(sync, "sync_repository", kill_on_b)
    assert sync.reconcile(client, registry).status == SyncRun.FAILED
    monkeypatch.setattr(sync, "sync_repository", real_sync)
    local.process = None
    local.start()
    tags = local.root / "data/docker/registry/v2/repositories/a/one/_manifests/tags/1"
    shutil.rmtree(tags)
    assert client.tags("a/one") == []
    for _ in range(2):
        run = sync.reconcile(client, registry)
        assert run.status == SyncRun.DONE
        assert set(indexed_tags(registry)) == {"b/two:1", "c/three:1"}


def manifest_file(local, digest: str):
    """Where the registry keeps a manifest's bytes on its disk."""
    return local.root / "data/docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"


def test_a_garbled_manifest_is_an_error_and_read_again_until_the_registry_serves_it_well(own):
    local, client, registry = own
    pushed = push_image(client, "team/app", "1", image("garbled"))
    data = manifest_file(local, pushed.digest)
    good = data.read_bytes()
    # The disk went bad: the same size, still JSON (so the registry serves it), other bytes.
    garbled = b'{"schemaVersion":2,"x":"' + b"x" * (len(good) - 26) + b'"}'
    assert len(garbled) == len(good)
    data.write_bytes(garbled)

    run = sync.reconcile(client, registry)
    assert run.status == SyncRun.DONE
    assert [error["repository"] for error in run.errors] == ["team/app"] and pushed.digest in run.errors[0]["error"]
    row = Manifest.objects.get(digest=pushed.digest)
    assert row.error and row.size == 0 and indexed_tags(registry) == {"team/app:1": pushed.digest}
    assert sync.reconcile(client, registry).errors  # still bad: still an error, fetched again

    data.write_bytes(good)
    run = sync.reconcile(client, registry)
    assert run.errors == [] and run.manifests_fetched == 1
    row.refresh_from_db()
    assert row.error == "" and row.size > 0 and row.created is not None
    assert row.blobs.count() == len(client.manifest("team/app", pushed.digest).blobs)
    assert sync.reconcile(client, registry).manifests_fetched == 0  # read well: never fetched again


def test_a_tag_the_registry_cannot_answer_for_is_an_error_and_the_rest_is_indexed(own):
    local, client, registry = own
    broken = push_image(client, "team/app", "broken", image("broken"))
    push_image(client, "team/app", "fine", image("fine"))
    push_image(client, "other/app", "1", image("other"))
    sync.reconcile(client, registry)
    manifest_file(local, broken.digest).write_bytes(b"not json")  # the registry answers 500 for this tag now

    run = sync.reconcile(client, registry)
    assert run.status == SyncRun.DONE
    assert run.errors == [
        {"repository": "team/app", "error": "broken: The registry answered 500 to HEAD /v2/team/app/manifests/broken."}
    ]
    assert set(indexed_tags(registry)) == {"team/app:broken", "team/app:fine", "other/app:1"}  # kept as it was


def test_an_unreachable_registry_fails_the_run_and_keeps_the_index(own):
    local, client, registry = own
    push_image(client, "team/app", "1", image("one"))
    sync.reconcile(client, registry)
    local.stop()
    run = sync.reconcile(client, registry)
    assert run.status == SyncRun.FAILED and "Cannot connect" in run.errors[0]["error"]
    assert "team/app:1" in indexed_tags(registry)


def test_the_session_fixtures_are_indexed_with_sizes_platforms_and_attestations(registry_client, settings, registry):
    registry_row = sync.current_registry()
    sync.sync_repository(registry_client, registry_row, "tools/multi")
    sync.sync_repository(registry_client, registry_row, "shop/api")
    multi = Tag.objects.get(repository__name="tools/multi", name="2.0").manifest
    assert multi.is_index and multi.platforms == ["linux/amd64", "linux/arm64/v8"] and multi.has_attestations
    assert multi.children.count() == 4  # two images, two attestations
    assert multi.created is not None
    api = Tag.objects.get(repository__name="shop/api", name="1.10.0").manifest
    assert api.size == sum(blob.size for blob in api.blobs.all())
    assert api.labels == {"org.opencontainers.image.version": "1.10.0"}
    assert api.platform == "linux/amd64"


class CountingClient(RegistryClient):
    """The service account's client, counting what it sends: (method, kind) -> requests."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: Counter[tuple[str, str]] = Counter()

    def _send(self, method, url, *args, **kwargs):
        kind = next(k for k in ("_catalog", "/tags/list", "/manifests/", "/blobs/", "") if k in url).strip("/")
        self.sent[method, kind or "other"] += 1
        return super()._send(method, url, *args, **kwargs)


def test_the_first_index_sends_each_request_once(own):
    """A new tag costs one GET of its manifest (its digest comes with it), a new image one GET of its config;
    a tag the index has, one HEAD."""
    local, client, registry = own
    for tag, text in [("1", "one"), ("2", "two"), ("3", "three"), ("latest", "three"), ("stable", "two")]:
        push_image(client, "team/app", tag, image(text))
    counting = CountingClient(local.url, "svc", "pw")
    sync.reconcile(counting, registry)
    assert counting.sent == {
        ("GET", "_catalog"): 1,
        ("GET", "tags/list"): 1,
        ("GET", "manifests"): 5,  # one per tag
        ("GET", "blobs"): 3,  # one config per distinct image
    }
    assert len(indexed_tags(registry)) == 5

    push_image(client, "team/app", "4", image("four"))
    counting.sent.clear()
    sync.reconcile(counting, registry)
    assert counting.sent == {
        ("GET", "_catalog"): 1,
        ("GET", "tags/list"): 1,
        ("HEAD", "manifests"): 5,  # has a tag the index has moved?
        ("GET", "manifests"): 1,  # the new tag
        ("GET", "blobs"): 1,
    }


def test_a_push_applied_while_a_sync_reads_is_not_undone_by_it(own):
    """Seen under load: a page visit's sync read the tags list, a push's notification added a tag, and the sync
    then deleted it from the index (it was not in the list it had read); nothing brought it back for a minute."""
    local, client, registry = own
    push_image(client, "team/app", "1", image("one"))
    sync.sync_repository(client, registry, "team/app")

    class PushedMeanwhile(RegistryClient):
        def tags(self, repository):
            listed = super().tags(repository)
            pushed = push_image(client, "team/app", "2", image("two"))
            sync.record_push(client, registry, "team/app", "2", pushed.digest)  # its notification, applied
            return listed

        def resolve(self, repository, reference):
            digest = super().resolve(repository, reference)
            if reference == "1":  # moved right after this answer
                moved = push_image(client, "team/app", "1", image("three"))
                sync.record_push(client, registry, "team/app", "1", moved.digest)
            return digest

    sync.sync_repository(PushedMeanwhile(local.url, "svc", "pw"), registry, "team/app")
    assert indexed_tags(registry) == {
        "team/app:1": client.resolve("team/app", "1"),
        "team/app:2": client.resolve("team/app", "2"),
    }


def test_a_reconcile_paces_its_heads_to_the_sweep_rate(own, settings):
    """REGISTRY_SWEEP_RATE spares a small registry: the HEADs of a reconcile go out no faster than it says."""
    local, client, registry = own
    for n in range(12):
        push_image(client, "team/app", f"v{n}", image(f"v{n}"))
    sync.reconcile(client, registry)  # the first index: GETs, unpaced
    settings.REGISTRY_SWEEP_RATE = 40
    counting = CountingClient(local.url, "svc", "pw")
    began = time.monotonic()
    sync.reconcile(counting, registry)
    assert counting.sent["HEAD", "manifests"] == 12
    assert time.monotonic() - began >= 12 / 40  # 12 HEADs at 40 a second, whatever 8 threads could do


def test_a_lists_reconcile_reads_only_the_lists_and_follows_adds_and_removes(own, settings):
    """What the scheduler runs every interval: a few requests however many tags, adds and removes followed.
    Whether a tag moved is the full reconcile's question (the sweep), asked at its own pace."""
    local, client, registry = own
    first = push_image(client, "team/app", "1", image("one"))
    push_image(client, "team/app", "2", image("two"))
    push_image(client, "team/app", "stable", image("one"))
    sync.reconcile(client, registry)
    settings.REGISTRY_SWEEP_RATE = 1  # pacing is for the HEADs of the sweep only: the lists never wait for it
    counting = CountingClient(local.url, "svc", "pw")
    run = sync.reconcile(counting, registry, verify=False)
    assert run.status == SyncRun.DONE and run.kind == SyncRun.LISTS
    assert set(counting.sent) == {("GET", "_catalog"), ("GET", "tags/list")}  # one catalog page, one tags list

    added = push_image(client, "team/app", "3", image("three"))
    moved = push_image(client, "team/app", "stable", image("two"))  # no notification tells of it
    client.delete_manifest("team/app", first.digest)  # takes "1" along
    settings.REGISTRY_SWEEP_RATE = 0
    sync.reconcile(client, registry, verify=False)
    tags = indexed_tags(registry)
    assert set(tags) == {"team/app:2", "team/app:3", "team/app:stable"}
    assert tags["team/app:3"] == added.digest
    assert tags["team/app:stable"] == first.digest  # not asked about yet
    sync.reconcile(client, registry)
    assert indexed_tags(registry)["team/app:stable"] == moved.digest


def test_a_push_time_is_known_only_for_what_the_dashboard_saw_being_pushed(own):
    """The registry records no push times: tags found at a repository's first reading get the reading's time,
    which says nothing of when they were pushed."""
    _, client, registry = own
    push_image(client, "team/app", "old", image("old"))
    sync.reconcile(client, registry)
    assert Tag.objects.get(name="old").pushed_known is False
    push_image(client, "team/app", "new", image("new"))  # appeared between two readings
    moved = push_image(client, "team/app", "old", image("moved"))
    sync.reconcile(client, registry)
    pushed = push_image(client, "team/app", "told", image("told"))
    sync.record_push(client, registry, "team/app", "told", pushed.digest, datetime(2025, 5, 1, tzinfo=UTC))
    known = dict(Tag.objects.values_list("name", "pushed_known"))
    assert known == {"old": True, "new": True, "told": True}  # "old" moved: its move was seen
    assert Tag.objects.get(name="old").manifest.digest == moved.digest

    push_image(client, "other/app", "1", image("one"))
    sync.sync_repository(client, registry, "other/app")
    assert Tag.objects.get(repository__name="other/app").pushed_known is False
    # A notification of a push of the same image tells when it was pushed.
    one = Tag.objects.get(repository__name="other/app")
    sync.record_push(client, registry, "other/app", "1", one.manifest.digest, datetime(2025, 5, 2, tzinfo=UTC))
    one.refresh_from_db()
    assert one.pushed_known and one.pushed_at == datetime(2025, 5, 2, tzinfo=UTC)


def test_a_reconcile_leaves_sqlite_the_statistics_it_plans_queries_with(own):
    """Seen at 100,000 tags: without them SQLite read a repository's 50,000 tags to find one page's 50."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL gathers its own (autovacuum)")
    _, client, registry = own
    push_image(client, "team/app", "1", image("one"))
    sync.reconcile(client, registry, verify=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tbl FROM sqlite_stat1")
        assert {"catalog_tag", "catalog_manifest"} <= {row[0] for row in cursor.fetchall()}


def test_the_next_chunk_of_tags_is_read_while_this_one_is_stored(own, monkeypatch):
    """A big repository's first index waits for the registry or for the database, never for both in turn."""
    local, client, registry = own
    monkeypatch.setattr(sync, "SYNC_CHUNK", 2)
    for n in range(4):
        push_image(client, "team/app", f"v{n}", image(f"v{n}"))
    second_chunk = client.tags("team/app")[2:]  # in the registry's order
    next_chunk_read = threading.Event()

    class Watching(RegistryClient):
        def manifest(self, repository, reference):
            if reference in second_chunk:
                next_chunk_read.set()
            return super().manifest(repository, reference)

    first_store_saw_it = []
    store_chunk = sync.store_chunk

    def storing(items):
        if not first_store_saw_it:
            first_store_saw_it.append(next_chunk_read.wait(10))
        return store_chunk(items)

    monkeypatch.setattr(sync, "store_chunk", storing)
    sync.sync_repository(Watching(local.url, "svc", "pw"), registry, "team/app")
    assert first_store_saw_it == [True]
    assert indexed_tags(registry) == {f"team/app:v{n}": client.resolve("team/app", f"v{n}") for n in range(4)}


def test_a_chunk_of_new_images_is_stored_in_a_few_queries_not_five_for_each(own, django_assert_max_num_queries):
    """The first index of a big registry stores one image per tag: one by one, the database held it back more than
    the registry did."""
    _, client, _ = own
    for number in range(40):
        push_image(client, "team/app", str(number), image(f"image {number}"))
    items = [sync.fetch(client, "team/app", client.resolve("team/app", str(number))) for number in range(40)]

    with django_assert_max_num_queries(8):
        sync.store_chunk(items)

    stored = Manifest.objects.filter(digest__in=[item.digest for item in items])
    assert stored.count() == 40 and not stored.exclude(error="").exists()
    assert all(row.blobs.count() == 3 and row.created for row in stored)  # config, shared base, own layer
    assert {row.size for row in stored} == {item.manifest.image_size for item in items}


def test_an_image_a_notification_stored_while_the_chunk_was_read_leaves_the_chunk_stored_one_by_one(own, monkeypatch):
    _, client, _ = own
    for number in range(3):
        push_image(client, "team/app", str(number), image(f"image {number}"))
    items = [sync.fetch(client, "team/app", client.resolve("team/app", str(number))) for number in range(3)]
    image_fields, notified = sync.image_fields, []

    def stored_meanwhile(manifest, config, error=""):  # a push's notification, between the check and the insert
        if not notified:
            notified.append(Manifest.objects.create(digest=items[1].digest, **image_fields(items[1].manifest, None)))
        return image_fields(manifest, config, error)

    monkeypatch.setattr(sync, "image_fields", stored_meanwhile)
    sync.store_chunk(items)

    stored = Manifest.objects.filter(digest__in=[item.digest for item in items])
    assert stored.count() == 3 and all(row.blobs.count() == 3 for row in stored if row.pk != notified[0].pk)
