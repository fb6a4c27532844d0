"""Storage usage from the index: the counting rules on plain data, exact figures for images pushed to a real
registry (layers shared across tags, platforms and repositories), and the two pages."""

import random
import re
from datetime import UTC, datetime

import pytest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from catalog import storage, sync
from catalog.storage import RepositoryUsage, TagUsage
from catalog.views import storage as storage_views
from devtools.images import ImageSpec, layer, push_image, push_index
from registry.client import RegistryClient

pytestmark = pytest.mark.django_db


# --- The rules, on plain data ---------------------------------------------------------------

SIZES = {1: 100, 2: 20, 3: 3, 4: 4000, 5: 50}


def test_a_blob_counts_as_unique_only_for_the_one_owner_that_uses_it():
    owners = {"a": {1, 2}, "b": {2, 3}, "c": {4}, "empty": set()}
    assert storage.exclusive_sizes(owners, SIZES) == {"a": 100, "b": 3, "c": 4000, "empty": 0}


def test_repository_usage_splits_referenced_bytes_into_unique_and_shared_largest_first():
    usage = storage.repository_usage(
        {"a": {1, 2}, "b": {2, 3}, "c": {4}, "empty": set()}, SIZES, {"a": 2, "b": 1, "c": 1}
    )
    assert usage == [
        RepositoryUsage("c", 1, referenced=4000, unique=4000),
        RepositoryUsage("a", 2, referenced=120, unique=100),
        RepositoryUsage("b", 1, referenced=23, unique=3),
        RepositoryUsage("empty", 0, referenced=0, unique=0),
    ]
    assert [row.shared for row in usage] == [0, 20, 20, 0]


def test_the_registry_total_counts_each_blob_once():
    assert storage.distinct_total([{1, 2}, {2, 3}, {1}, set()], SIZES) == (123, 3)
    assert storage.distinct_total([], SIZES) == (0, 0)


def test_tags_on_one_image_free_nothing_on_their_own_and_other_repositories_count():
    """Tags on one image share one blob set, as storage.load gives them; deleting all of them frees what no
    other image uses (seen: "frees if deleted" 0 with no word of why)."""
    image = frozenset({1, 2})
    blobs_by_tag = {
        ("app", "1"): image,
        ("app", "latest"): image,  # the same image as app:1
        ("app", "2"): frozenset({1, 3, 5}),  # shares 1 with the tags above
        ("other", "x"): frozenset({5, 4}),  # shares 5 with app:2
        ("other", "copy"): image,  # app:1's image, in another repository
    }
    assert storage.tag_usage(blobs_by_tag, SIZES, "app") == [
        TagUsage("2", size=153, frees=3),
        TagUsage("1", size=120, frees=0, same_image=("latest",), same_image_elsewhere=1, frees_together=20),
        TagUsage("latest", size=120, frees=0, same_image=("1",), same_image_elsewhere=1, frees_together=20),
    ]
    assert storage.tag_usage(blobs_by_tag, SIZES, "other")[0] == TagUsage("x", size=4050, frees=4000)


def test_the_largest_layers_say_which_repositories_and_how_many_tags_use_them():
    image = frozenset({1, 2})
    blobs_by_tag = {
        ("app", "1"): image,
        ("app", "latest"): image,
        ("app", "2"): frozenset({1, 3}),
        ("db", "x"): frozenset({4, 1}),
    }
    assert storage.largest_layers(blobs_by_tag, SIZES, limit=2) == [(4, ("db",), 1), (1, ("app", "db"), 4)]
    assert storage.largest_layers(blobs_by_tag, SIZES, "app", limit=2) == [(1, ("app", "db"), 4), (2, ("app",), 2)]


def test_the_chart_draws_the_ten_largest_scaled_to_the_largest():
    usages = [RepositoryUsage(f"repo{n}", 1, referenced=1000 - n * 50, unique=500 - n * 50) for n in range(12)]
    chart = storage_views.chart([*usages, RepositoryUsage("empty", 0, 0, 0)])
    assert [bar.usage.name for bar in chart["bars"]] == [f"repo{n}" for n in range(10)]
    first, last = chart["bars"][0], chart["bars"][-1]
    assert first.unique_width + first.shared_width == storage_views.BARS_WIDTH
    assert last.unique_width == pytest.approx(storage_views.BARS_WIDTH * 50 / 1000, abs=0.1)
    # The phone's drawing: the same bars, as wide as its narrow box, one row below another.
    narrow = chart["narrow"]["bars"]
    assert [bar.usage for bar in narrow] == [bar.usage for bar in chart["bars"]]
    assert narrow[0].unique_width + narrow[0].shared_width == chart["narrow"]["width"] == storage_views.NARROW_WIDTH
    assert narrow[1].y - narrow[0].y == storage_views.NARROW_ROW_HEIGHT
    assert narrow[-1].y + chart["bar_height"] <= chart["narrow"]["height"]
    assert storage_views.chart([RepositoryUsage("empty", 0, 0, 0)]) is None


# --- Exact figures from a real registry -----------------------------------------------------


def files(name: str, size: int) -> dict[str, bytes]:
    """One file of incompressible bytes: layers of distinct, known sizes."""
    return {name: random.Random(name).randbytes(size)}


BASE, APP1, APP2 = files("base", 3000), files("app1", 700), files("app2", 900)
COMMON, AMD64, ARM64, PLAIN = files("common", 5000), files("amd64", 1200), files("arm64", 1100), files("plain", 400)
SOLO1, SOLO2 = files("solo1", 2500), files("solo2", 600)


def spec(*layers: dict, **extra) -> ImageSpec:
    return ImageSpec(layers=list(layers), created=datetime(2025, 1, 1, tzinfo=UTC), **extra)


def size(files_: dict) -> int:
    return len(layer(files_))


@pytest.fixture
def pushed(own):
    """Layers shared across tags (team/app), platforms (team/multi) and repositories (team/multi and
    team/plain share COMMON), and a repository whose blobs are all its own (team/solo); then a full sync."""
    _, client, registry = own
    one = push_image(client, "team/app", "1", spec(BASE, APP1))
    latest = push_image(client, "team/app", "latest", spec(BASE, APP1))
    assert latest.digest == one.digest  # two tags, one image
    push_image(client, "team/app", "2", spec(BASE, APP2))
    push_index(
        client,
        "team/multi",
        "2.0",
        [spec(COMMON, AMD64), spec(COMMON, ARM64, architecture="arm64", variant="v8")],
        attest=True,
    )
    push_image(client, "team/plain", "v1", spec(COMMON, PLAIN))
    push_image(client, "team/solo", "v1", spec(SOLO1, SOLO2))
    sync.reconcile(client, registry)
    return client, registry


def config_size(client: RegistryClient, repository: str, reference: str) -> int:
    """Read from the registry, not from the index."""
    return client.manifest(repository, reference).config.size


def multi_parts(client: RegistryClient) -> tuple[list[int], dict[str, int]]:
    """team/multi:2.0 from the registry: its platform images' config sizes, and its attestations' blobs."""
    entries = client.manifest("team/multi", "2.0").manifests
    configs = [config_size(client, "team/multi", entry.digest) for entry in entries if not entry.is_attestation]
    attestation_blobs = {
        blob.digest: blob.size
        for entry in entries
        if entry.is_attestation
        for blob in client.manifest("team/multi", entry.digest).blobs
    }
    return configs, attestation_blobs


def test_storage_figures_are_exact_for_layers_shared_across_tags_platforms_and_repositories(pushed):
    client, registry = pushed
    app_configs = config_size(client, "team/app", "1") + config_size(client, "team/app", "2")
    app = size(BASE) + size(APP1) + size(APP2) + app_configs
    multi_configs, attestation_blobs = multi_parts(client)
    assert len(multi_configs) == 2 and len(attestation_blobs) == 3  # two statements, one empty config for both
    multi = size(COMMON) + size(AMD64) + size(ARM64) + sum(multi_configs) + sum(attestation_blobs.values())
    plain_own = size(PLAIN) + config_size(client, "team/plain", "v1")
    plain = size(COMMON) + plain_own
    solo = size(SOLO1) + size(SOLO2) + config_size(client, "team/solo", "v1")

    summary = storage.registry_storage(registry)
    usage = {row.name: row for row in summary.repositories}
    assert usage == {
        "team/app": RepositoryUsage("team/app", 3, referenced=app, unique=app),  # its tags share BASE, no one else
        "team/multi": RepositoryUsage("team/multi", 1, referenced=multi, unique=multi - size(COMMON)),
        "team/plain": RepositoryUsage("team/plain", 1, referenced=plain, unique=plain_own),
        "team/solo": RepositoryUsage("team/solo", 1, referenced=solo, unique=solo),
    }
    assert usage["team/multi"].shared == usage["team/plain"].shared == size(COMMON)
    assert [row.referenced for row in summary.repositories] == sorted([app, multi, plain, solo], reverse=True)
    assert summary.total_bytes == app + multi + plain_own + solo  # COMMON once
    assert summary.total_blobs == 5 + 8 + 2 + 3
    assert summary.tag_count == 6


def test_what_deleting_each_tag_frees_is_exact(pushed):
    client, registry = pushed
    image_one = size(BASE) + size(APP1) + config_size(client, "team/app", "1")
    app2_own = size(APP2) + config_size(client, "team/app", "2")
    multi_configs, attestation_blobs = multi_parts(client)
    multi = size(COMMON) + size(AMD64) + size(ARM64) + sum(multi_configs) + sum(attestation_blobs.values())

    assert storage.repository_storage(registry, "team/app").tags == [
        TagUsage("2", size=size(BASE) + app2_own, frees=app2_own),  # BASE stays: tags 1 and latest use it
        # latest keeps the same image; both gone, BASE still stays for tag 2
        TagUsage("1", size=image_one, frees=0, same_image=("latest",), frees_together=image_one - size(BASE)),
        TagUsage("latest", size=image_one, frees=0, same_image=("1",), frees_together=image_one - size(BASE)),
    ]
    assert storage.repository_storage(registry, "team/multi").tags == [
        TagUsage("2.0", size=multi, frees=multi - size(COMMON))  # team/plain keeps COMMON
    ]
    solo = storage.repository_storage(registry, "team/solo")
    assert solo.tags[0].frees == solo.tags[0].size == solo.usage.referenced == solo.usage.unique
    assert storage.repository_storage(registry, "team/nothing") is None


def test_deleting_the_image_that_shares_a_layer_makes_it_unique_to_the_other_repository(pushed):
    client, registry = pushed
    client.delete_manifest("team/plain", client.resolve("team/plain", "v1"))
    sync.reconcile(client, registry)
    multi = storage.repository_storage(registry, "team/multi")
    assert multi.usage.shared == 0 and multi.usage.unique == multi.usage.referenced
    assert multi.tags[0].frees == multi.tags[0].size
    plain = storage.repository_storage(registry, "team/plain")
    assert plain.usage == RepositoryUsage("team/plain", 0, 0, 0) and plain.tags == []


def test_the_figures_take_five_queries_however_many_tags(pushed, django_assert_num_queries):
    _, registry = pushed
    with django_assert_num_queries(5):  # four for every tag's blobs, one for the largest layers' digests
        storage.registry_storage(registry)


# --- The pages ------------------------------------------------------------------------------


def row(html: str, link: str) -> str:
    return re.search(rf'<tr[^>]*>\s*<td><a href="{re.escape(link)}">.*?</tr>', html, re.S).group(0)


def values(html: str) -> list[int]:
    """The exact byte counts of the <data> elements, in order."""
    return [int(value) for value in re.findall(r'<data value="(\d+)">', html)]


def test_the_storage_page_shows_each_repository_the_total_and_a_chart(pushed, client_for):
    _, registry = pushed
    summary = storage.registry_storage(registry)
    response = client_for().get(reverse("browser-storage"))
    assert response.status_code == 200
    html = response.text
    assert f'<data value="{summary.total_bytes}">{filesizeformat(summary.total_bytes)}</data>' in html
    assert "18 distinct blobs" in html
    for usage in summary.repositories:
        cells = row(html, reverse("browser-storage-repository", args=[usage.name]))
        assert values(cells) == [usage.referenced, usage.unique, usage.shared]
        assert filesizeformat(usage.referenced) in cells and filesizeformat(usage.unique) in cells
    for drawing in ["wide", "narrow"]:  # the narrow one is for phones
        svg = re.search(rf'<svg class="storage-chart storage-chart-{drawing}".*?</svg>', html, re.S).group(0)
        assert 'role="img"' in svg and 'aria-labelledby="storage-chart-' in svg
        assert "The 4 largest repositories by referenced bytes" in svg
        assert svg.count('class="bar-unique"') == 4 and svg.count('class="bar-shared"') == 2  # multi and plain share
    assert "Manifests themselves (a few KB each) are not counted" in html
    layers = re.search(r'<section class="card" id="largest-layers">.*?</section>', html, re.S).group(0)
    sizes = [int(v) for v in re.findall(r'<data value="(\d+)">', layers)]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == min(storage.LARGEST_LAYERS, 18)
    assert re.search(r">team/multi</a>, <a [^>]+>team/plain</a>", layers)  # COMMON, used by both
    assert "storage folder (on the Garbage collection page) is larger" in html
    assert "garbage collection" in html
    assert '<a href="/storage/" class="active" aria-current="page">' in html


def test_the_repository_drill_down_lists_tags_by_what_deleting_them_frees(pushed, client_for):
    _, registry = pushed
    detail = storage.repository_storage(registry, "team/app")
    response = client_for().get(reverse("browser-storage-repository", args=["team/app"]))
    assert response.status_code == 200
    tags = re.findall(r'<a href="/repositories/team/app/-/([^/"]+)/">', response.text)
    assert tags == ["2", "1", "latest"]
    assert values(row(response.text, "/repositories/team/app/-/2/")) == [detail.tags[0].size, detail.tags[0].frees]
    assert filesizeformat(detail.tags[0].frees) in response.text
    assert values(response.text)[:3] == [detail.usage.referenced, detail.usage.unique, 0]
    assert "what deleting the tag's image frees" in response.text
    # Why "1" frees nothing alone, and what deleting it with its twin would free.
    together = filesizeformat(detail.tags[1].frees_together)
    assert f"same image as latest: deleting all of them frees {together}" in row(
        response.text, "/repositories/team/app/-/1/"
    )
    # Its largest layers, with who uses them.
    layers = re.search(r'<section class="card" id="largest-layers">.*?</section>', response.text, re.S).group(0)
    assert [int(v) for v in re.findall(r'<data value="(\d+)">', layers)] == [layer.size for layer in detail.layers]
    assert detail.layers[0].repositories == ("team/app",) and 'href="/storage/team/app/"' in layers


def test_the_drill_down_is_paginated(pushed, client_for, monkeypatch):
    monkeypatch.setattr(storage_views, "TAGS_PER_PAGE", 2)
    url = reverse("browser-storage-repository", args=["team/app"])
    first, second = client_for().get(url).text, client_for().get(url, {"page": 2}).text
    assert "Page 1 of 2" in first and "/-/latest/" not in first
    assert "Page 2 of 2" in second and "/-/latest/" in second


def test_the_pages_answer_htmx_with_the_table_only(pushed, client_for):
    htmx = {"HX-Request": "true", "HX-Target": "storage-table"}
    response = client_for().get(reverse("browser-storage"), {"page": 1}, headers=htmx)
    assert response.text.lstrip().startswith('<section class="card" id="storage-table">')
    assert "<svg" not in response.text and "<html" not in response.text


def test_an_unknown_repository_is_not_found(pushed, client_for):
    assert client_for().get(reverse("browser-storage-repository", args=["team/nothing"])).status_code == 404


def test_an_empty_index_says_the_background_sync_fills_it(own, client_for):
    response = client_for().get(reverse("browser-storage"))
    assert response.status_code == 200
    assert "The index is empty." in response.text and "background sync" in response.text
    assert "storage-chart" not in response.text


@pytest.mark.parametrize("url", [reverse("browser-storage"), reverse("browser-storage-repository", args=["a/b"])])
def test_the_storage_pages_need_a_login_and_only_answer_get(client, client_for, url):
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert client_for().post(url).status_code == 405


def test_the_storage_figures_are_computed_once_per_change_of_the_index(django_assert_num_queries):
    registry = sync.current_registry()
    storage.registry_storage(registry)
    with django_assert_num_queries(0):  # from the cache: at 100,000 tags computing them takes seconds
        storage.registry_storage(registry)
    sync.index_changed(registry)
    registry.refresh_from_db()
    with django_assert_num_queries(4):  # the index read again: computed anew
        storage.registry_storage(registry)


def test_the_disk_figures_say_what_is_reserved_by_the_file_system():
    """Seen: "25.8 GB used, 75.7 GB free on a 252 GB disk" with nothing about the other 150 GB."""
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    from registry.bridge import Usage

    usage = Usage(total_bytes=252 * 10**9, used_bytes=25.8 * 10**9, free_bytes=75.7 * 10**9, storage_bytes=10**9)
    volume = SimpleNamespace(usage=usage, used_percent=10.2, warn_percent=80, warning=False)
    html = render_to_string("catalog/includes/volume.html", {"volume": volume})
    assert "The other 140.2\xa0GB are reserved by the file system" in html
