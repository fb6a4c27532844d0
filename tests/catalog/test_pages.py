"""The browse pages against the session registry, read from the index: what a user sees on each."""

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.template.defaultfilters import filesizeformat
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from catalog import sync
from catalog import tasks as catalog_tasks
from catalog.models import Blob, Manifest, Registry, Repository, Tag
from devtools.images import ImageSpec, push_image
from devtools.localregistry import LocalRegistry, free_port
from registry.client import RegistryClient, reset_client
from registry.htpasswd import add_user
from tests.conftest import BIG_TAG_COUNT, SERVICE_PASSWORD, SERVICE_USER

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry"), pytest.mark.slow]
BIG = "big/many"
LAST_PAGE = -(-BIG_TAG_COUNT // 50)


@pytest.fixture(scope="module", autouse=True)
def indexed(django_db_setup, django_db_blocker, registry_process, registry_contents):
    """The session registry, indexed once for this module and committed: each test's changes roll back."""
    with django_db_blocker.unblock():
        # Named by its URL: a test pointing REGISTRY_URL elsewhere keeps REGISTRY_PUBLIC_HOST (names are unique).
        url = registry_process.url
        row = Registry.objects.create(url=url, name=url)
        run = sync.reconcile(RegistryClient(url, SERVICE_USER, SERVICE_PASSWORD), row)
        assert run.status == "done", run.errors
    yield row
    with django_db_blocker.unblock():
        row.delete()
        Manifest.objects.all().delete()
        Blob.objects.all().delete()


@pytest.fixture(autouse=True)
def fresh_for_an_hour(settings):
    """The index built above counts as fresh: pages read it without asking the registry again."""
    settings.REGISTRY_CACHE_SECONDS = 3600


@pytest.fixture
def own_client(own):
    """The client of the test's own registry (see conftest's `own`); pages point at that registry."""
    return own[1]


def image(text: str) -> ImageSpec:
    """A small image of its own: the same text gives the same digest."""
    return ImageSpec(layers=[{"app": text}], created=datetime(2025, 1, 1, tzinfo=UTC))


def rows_of(html: str) -> list[str]:
    """The tag names of a tag table, in the order shown."""
    return re.findall(r'<a href="/repositories/[^"]+/-/([^/"]+)/">', html)


def big_page(client, sort: str, direction: str, page: int = 1) -> list[str]:
    params = {"sort": sort, "dir": direction, "page": page}
    return rows_of(client.get(reverse("browser-repository", args=[BIG]), params).text)


def test_home_shows_the_registry_and_its_counts(client_for, registry):
    response = client_for().get(reverse("browser-home"))
    assert response.status_code == 200
    assert registry.url in response.text
    assert "Reachable" in response.text
    assert "registry/2.0" in response.text
    assert "Enabled" in response.text  # delete is enabled on the session registry
    tags = Tag.objects.filter(repository__registry__url=registry.url).count()
    assert tags > BIG_TAG_COUNT and f'<span class="stat-value">{tags:,}</span>' in response.text
    largest = re.search(r"most tags.*?</table>", response.text, re.S).group(0)
    assert re.search(r'href="/repositories/big/many/">big/many</a></td>\s*<td class="num">1,500<', largest)


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"delete_enabled": False}, ["Disabled", "REGISTRY_STORAGE_DELETE_ENABLED"]),
        ({"readonly": True}, ["Read-only", "maintenance (read-only) mode"]),
    ],
)
def test_home_says_when_deleting_is_disabled_or_the_registry_is_read_only(
    client_for, tmp_path, settings, changes, shown
):
    from registry.client import reset_client

    other = LocalRegistry(tmp_path, **changes)
    other.write_config()
    add_user(other.htpasswd, "svc", "pw", cost=4)
    other.start()
    try:
        settings.REGISTRY_URL, settings.REGISTRY_USERNAME, settings.REGISTRY_PASSWORD = other.url, "svc", "pw"
        reset_client()
        response = client_for().get(reverse("browser-home"))
        assert all(text in response.text for text in shown)
    finally:
        other.stop()


def test_repository_list_shows_every_repository_grouped_by_namespace(client_for):
    response = client_for().get(reverse("browser-repositories"))
    assert response.status_code == 200
    for name in ("shop/api", "shop/web", "tools/multi", "tools/legacy-list", "big/many", "empty/gone"):
        assert f'href="/repositories/{name}/"' in response.text
    assert '<tr class="namespace"><td colspan="5">shop/</td></tr>' in response.text


def test_a_repository_without_tags_is_marked(client_for):
    html = client_for().get(reverse("browser-repositories")).text
    row = re.search(r'href="/repositories/empty/gone/".*?</tr>', html, re.S).group(0)
    assert "no tags" in row


def test_a_repository_new_to_the_index_is_listed_and_indexed_when_opened(client_for, own_client):
    push_image(own_client, "team/app", "1", image("one"))
    push_image(own_client, "team/app", "2", image("two"))
    client = client_for()
    row = re.search(r'href="/repositories/team/app/".*?</tr>', client.get(reverse("browser-repositories")).text, re.S)
    assert "not indexed yet" in row.group(0)  # the catalog names it; its tags are not read yet
    assert sorted(rows_of(client.get(reverse("browser-repository", args=["team/app"])).text)) == ["1", "2"]
    row = re.search(r'href="/repositories/team/app/".*?</tr>', client.get(reverse("browser-repositories")).text, re.S)
    assert re.search(r'<td class="num">\s*2\s*</td>', row.group(0))


def test_the_repository_filter_keeps_matching_names(client_for):
    response = client_for().get(reverse("browser-repositories"), {"q": "shop"})
    assert "shop/api" in response.text and "tools/multi" not in response.text


def test_the_repository_filter_answers_htmx_with_the_table_only(client_for):
    htmx = {"HX-Request": "true", "HX-Target": "repositories"}
    response = client_for().get(reverse("browser-repositories"), {"q": "tools"}, headers=htmx)
    assert response.text.lstrip().startswith('<section class="card" id="repositories">')
    assert "<html" not in response.text


def test_the_repository_list_is_paginated(client_for, registry_client, settings):
    from catalog.views import repositories

    repositories.REPOSITORIES_PER_PAGE, saved = 3, repositories.REPOSITORIES_PER_PAGE
    try:
        first = client_for().get(reverse("browser-repositories")).text
        second = client_for().get(reverse("browser-repositories"), {"page": 2}).text
    finally:
        repositories.REPOSITORIES_PER_PAGE = saved
    assert "Page 1 of" in first and "Page 2 of" in second
    assert "big/many" in first and "big/many" not in second


def test_repository_page_lists_tags_with_digest_size_and_created(client_for, registry_fixtures):
    response = client_for().get(reverse("browser-repository", args=["shop/api"]), {"sort": "name", "dir": "asc"})
    assert response.status_code == 200
    # Natural order: 1.2.0 before 1.10.0.
    assert rows_of(response.text) == ["1.0.0", "1.2.0", "1.10.0", "latest"]
    assert registry_fixtures.api_digest.removeprefix("sha256:")[:12] in response.text
    assert "linux/amd64" in response.text


def test_tags_sharing_a_digest_are_marked(client_for):
    html = client_for().get(reverse("browser-repository", args=["shop/api"])).text
    rows = html.split("<tr")[1:]
    shared = [
        re.search(r'/-/([^/"]+)/">', row)[1] for row in rows if re.search(r'class="badge badge-info"[^>]*>shared<', row)
    ]
    assert sorted(shared) == ["1.10.0", "latest"]


def ascending(sort: str, created: dict[str, datetime]) -> list[str]:
    """big/many's 1,500 tags in the order a sort should give, worked out here from what the test knows."""
    if sort == "name":
        return [f"build-{n}" for n in range(BIG_TAG_COUNT)]  # natural order: build-9 before build-10
    if sort == "created":
        return sorted(created, key=lambda tag: (created[tag], tag))
    tags = Tag.objects.filter(repository__name=BIG)
    if sort == "pushed":  # the index saw every tag in one sync: give them distinct push times
        tags = list(tags)
        minutes = list(range(len(tags)))
        random.Random(11).shuffle(minutes)
        for tag, minute in zip(tags, minutes, strict=True):
            tag.pushed_at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
        Tag.objects.bulk_update(tags, ["pushed_at"], batch_size=500)
        return [tag.name for tag in sorted(tags, key=lambda tag: tag.pushed_at)]
    sizes = dict(tags.values_list("name", "manifest__size"))  # the configs differ in length, so in size
    assert len(set(sizes.values())) > 1
    return sorted(sizes, key=lambda tag: (sizes[tag], tag))


@pytest.mark.parametrize("sort", ["name", "created", "size", "pushed"])
def test_sorting_spans_all_tags_both_ways(client_for, registry_fixtures, sort):
    order = ascending(sort, registry_fixtures.big_created)
    client = client_for()
    for direction, expected in (("asc", order), ("desc", order[::-1])):
        assert big_page(client, sort, direction) == expected[:50]
        assert big_page(client, sort, direction, LAST_PAGE) == expected[-50:]


def test_a_big_repository_counts_every_tag_and_pages_through_them(client_for):
    html = client_for().get(reverse("browser-repository", args=[BIG])).text
    assert f"{BIG_TAG_COUNT} tags" in html and f"Page 1 of {LAST_PAGE}" in html


def test_sorting_by_size_and_reversing(client_for):
    url = reverse("browser-repository", args=["shop/api"])
    ascending = rows_of(client_for().get(url, {"sort": "size", "dir": "asc"}).text)
    descending = rows_of(client_for().get(url, {"sort": "size", "dir": "desc"}).text)
    assert ascending == list(reversed(descending))
    assert ascending[0] == "1.0.0"  # the smallest file of the four images


def test_filtering_tags_by_name_and_digest_prefix(client_for, registry_fixtures):
    url = reverse("browser-repository", args=["shop/api"])
    assert rows_of(client_for().get(url, {"q": "1.1"}).text) == ["1.10.0"]
    prefix = registry_fixtures.api_old_digest.removeprefix("sha256:")[:10]
    assert rows_of(client_for().get(url, {"q": prefix}).text) == ["1.2.0"]
    assert rows_of(client_for().get(url, {"q": f"sha256:{prefix}"}).text) == ["1.2.0"]
    assert "1 of 4 tags" in client_for().get(url, {"q": prefix}).text


def test_filtering_a_big_repository_pages_the_matches(client_for):
    html = client_for().get(reverse("browser-repository", args=[BIG]), {"q": "build-14", "sort": "name"}).text
    # build-14 and build-140 … build-149, build-1400 … build-1499: 1 + 10 + 100
    assert "111 of 1500 tags" in html and "Page 1 of 3" in html
    assert rows_of(html)[:3] == ["build-14", "build-140", "build-141"]


def test_a_repository_whose_tags_were_deleted_says_so(client_for):
    response = client_for().get(reverse("browser-repository", args=["empty/gone"]))
    assert response.status_code == 200
    assert "This repository has no tags" in response.text


def test_an_unknown_repository_is_a_404_page(client_for):
    response = client_for().get(reverse("browser-repository", args=["no/such-repo"]))
    assert response.status_code == 404
    assert "Page not found" in response.text or "not found" in response.text.lower()


def test_an_invalid_repository_name_is_a_404_page(client_for):
    assert client_for().get("/repositories/UPPER..case/").status_code == 404


def test_signature_tags_are_badges_not_rows(client_for, registry_fixtures):
    html = client_for().get(reverse("browser-repository", args=["tools/multi"])).text
    assert rows_of(html) == ["2.0"]
    assert '<span class="badge badge-purple">sig</span>' in html
    assert "attestation" in html


def test_refresh_reads_the_registry_again_and_redirects(client_for, own_client):
    push_image(own_client, "team/app", "v1", image("v1"))
    client = client_for()
    url = reverse("browser-repository", args=["team/app"])
    assert rows_of(client.get(url).text) == ["v1"]  # the first visit indexes the repository
    push_image(own_client, "team/app", "v2", image("v2"))
    assert rows_of(client.get(url).text) == ["v1"]  # the index, fresh for REGISTRY_CACHE_SECONDS
    response = client.get(url, {"refresh": "1", "sort": "name"})
    assert response.status_code == 302 and response.url == f"{url}?sort=name"
    assert rows_of(client.get(url, {"sort": "name"}).text) == ["v1", "v2"]


def test_a_pushed_tag_appears_once_the_index_is_older_than_the_cache_period(client_for, own_client, settings):
    push_image(own_client, "team/app", "v1", image("v1"))
    client = client_for()
    url = reverse("browser-repository", args=["team/app"])
    assert rows_of(client.get(url).text) == ["v1"]
    push_image(own_client, "team/app", "v2", image("v2"))
    settings.REGISTRY_CACHE_SECONDS = 0
    assert rows_of(client.get(url, {"sort": "name"}).text) == ["v1", "v2"]
    assert Tag.objects.get(repository__name="team/app", name="v2").manifest.created == datetime(2025, 1, 1, tzinfo=UTC)


def test_a_stale_repository_is_shown_from_the_index_while_a_task_revalidates_it(client_for, own_client, settings):
    from django.tasks import task_backends

    push_image(own_client, "team/app", "v1", image("v1"))
    client = client_for()
    url = reverse("browser-repository", args=["team/app"])
    assert rows_of(client.get(url).text) == ["v1"]
    push_image(own_client, "team/app", "v2", image("v2"))
    settings.REGISTRY_CACHE_SECONDS = 0
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}
    }  # queued, not run
    assert rows_of(client.get(url).text) == ["v1"]  # at once, from the index
    assert [result.task.name for result in task_backends["default"].results] == ["check_repository"]
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
    cache.clear()
    assert sorted(rows_of(client.get(url).text)) == ["v1", "v2"]


def test_a_stale_page_costs_the_registry_one_request_and_a_new_tag_its_own(client_for, own_client, monkeypatch):
    """Seen: a stale visit to a 2,000-tag repository sent the tags list and a HEAD per tag, 2,001 requests, while
    notifications were telling of every push. Now: the tags list, and for a tag added since, its manifest and
    config; whether a tag moved is the reconcile's sweep to find (or its push's notification)."""
    for n in range(20):
        push_image(own_client, "team/app", f"v{n}", image(f"v{n}"))
    client = client_for()
    url = reverse("browser-repository", args=["team/app"])
    client.get(url)  # indexed
    sent = []
    send = RegistryClient._send
    monkeypatch.setattr(
        RegistryClient,
        "_send",
        lambda c, method, url, *a, **k: sent.append((method, url)) or send(c, method, url, *a, **k),
    )

    def stale_visit() -> list[str]:
        sent.clear()
        cache.clear()  # the "already queued" mark
        Repository.objects.filter(name="team/app").update(synced_at=timezone.now() - timedelta(hours=2))
        assert client.get(url).status_code == 200
        return [f"{method} {url.split('/v2/team/app/')[-1].split('/')[0]}" for method, url in sent]

    assert stale_visit() == ["GET tags"]
    push_image(own_client, "team/app", "v20", image("v20"))
    assert stale_visit() == ["GET tags", "GET manifests", "GET blobs"]
    assert "v20" in rows_of(client.get(url, {"sort": "name", "dir": "desc"}).text)
    repository = Repository.objects.get(name="team/app")
    assert repository.verified_at < repository.synced_at  # the page says when digests were last checked
    assert "digests checked" in client.get(url).text


def test_a_tag_deleted_in_the_registry_disappears(client_for, own_client, settings):
    push_image(own_client, "team/app", "keep", image("keep"))
    gone = push_image(own_client, "team/app", "gone", image("gone"))
    client = client_for()
    url = reverse("browser-repository", args=["team/app"])
    assert rows_of(client.get(url, {"sort": "name"}).text) == ["gone", "keep"]
    own_client.delete_manifest("team/app", gone.digest)
    settings.REGISTRY_CACHE_SECONDS = 0
    assert rows_of(client.get(url).text) == ["keep"]
    assert client.get(reverse("browser-tag", args=["team/app", "gone"])).status_code == 404


def test_refresh_is_a_background_task_and_the_page_shows_it_running(client_for, own_client, settings):
    client = client_for()
    url = reverse("browser-repository", args=["team/app"])
    push_image(own_client, "team/app", "1", image("one"))
    assert rows_of(client.get(url).text) == ["1"]  # indexed on the first visit (tasks run at once here)
    push_image(own_client, "team/app", "2", image("two"))
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}  # no worker yet

    response = client.get(url, {"refresh": "1"})
    assert response.status_code == 302 and response.url == url
    page = client.get(url).text
    assert rows_of(page) == ["1"], "the request itself did not read the registry"
    assert 'id="refreshing"' in page and 'hx-trigger="every 2s"' in page

    catalog_tasks.refresh_repository.call("team/app")  # the worker's turn
    page = client.get(url).text
    assert sorted(rows_of(page)) == ["1", "2"] and 'id="refreshing"' not in page


def test_a_registry_that_cannot_be_reached_leaves_the_index_on_show(client_for, settings, indexed):
    # The index was built from a registry that has gone away since.
    closed = f"http://127.0.0.1:{free_port()}"
    Registry.objects.filter(pk=indexed.pk).update(url=closed)
    settings.REGISTRY_URL, settings.REGISTRY_CACHE_SECONDS = closed, 0
    reset_client()
    client = client_for()
    url = reverse("browser-repository", args=["shop/api"])
    response = client.get(url, {"sort": "name"})  # stale: answered from the index, the queued sync fails
    assert response.status_code == 200
    assert rows_of(response.text) == ["1.0.0", "1.2.0", "1.10.0", "latest"]

    response = client.get(url, {"refresh": "1"}, follow=True)  # the refresh task fails, and its page says so
    assert response.redirect_chain == [(url, 302)]
    assert response.text.count("The registry could not be reached; showing the index as of ") == 1

    listing = client.get(reverse("browser-repositories"))
    assert listing.status_code == 200 and "The registry could not be reached" in listing.text
    assert 'href="/repositories/shop/api/"' in listing.text

    home = client.get(reverse("browser-home"))
    assert home.status_code == 503 and "Not reachable" in home.text
    assert f"{Tag.objects.filter(repository__registry=indexed).count():,}" in home.text  # the index still counts

    # Nothing indexed to fall back on: the error page, as before the index.
    assert client.get(reverse("browser-repository", args=["shop/never-indexed"])).status_code == 503


def test_an_unreadable_image_is_a_row_that_says_so(client_for):
    broken = Manifest.objects.create(
        digest="sha256:" + "e" * 64, media_type="unknown", size=0, error="The manifest is gone from storage."
    )
    Tag.objects.create(repository=Repository.objects.get(name="shop/web"), name="broken", manifest=broken)
    html = client_for().get(reverse("browser-repository", args=["shop/web"])).text
    row = re.search(r'/-/broken/">.*?</tr>', html, re.S).group(0)
    assert "unreadable" in row and "The manifest is gone from storage." in row and "e" * 12 in row


def test_tag_page_shows_manifest_config_layers_and_pull_commands(client_for, registry_fixtures, registry):
    response = client_for().get(reverse("browser-tag", args=["shop/api", "1.10.0"]))
    html = response.text
    assert response.status_code == 200
    assert registry_fixtures.api_digest in html
    assert "application/vnd.docker.distribution.manifest.v2+json" in html
    assert f"docker pull 127.0.0.1:{registry.port}/shop/api:1.10.0" in html
    assert f"docker pull 127.0.0.1:{registry.port}/shop/api@{registry_fixtures.api_digest}" in html
    assert f"docker login 127.0.0.1:{registry.port}" in html
    for text in ("/app/api", "--port 8080", "8080/tcp", "/app", "org.opencontainers.image.version", "2024-01-11"):
        assert text in html
    assert html.count('<meter class="share"') == 3  # config and two layers
    also = re.search(r"Also tagged</dt>\s*<dd>(.*?)</dd>", html, re.S).group(1)
    assert re.findall(r"/-/([^/]+)/", also) == ["latest"]


def test_tag_page_of_an_oci_index_shows_one_platform_at_a_time_as_tabs(client_for, registry_fixtures):
    """Seen: every platform's details stacked into a 4,000 px page."""
    url = reverse("browser-tag", args=["tools/multi", "2.0"])
    html = client_for().get(url).text
    assert registry_fixtures.multi_digest in html
    tabs = re.search(r'<nav class="tabs" aria-label="Platforms">(.*?)</nav>', html, re.S)[1]
    assert re.findall(r'href="\?platform=([^"#]+)#platform"', tabs) == ["linux/amd64", "linux/arm64/v8"]
    assert "<h2>linux/amd64</h2>" in html and "<h2>linux/arm64/v8</h2>" not in html  # the first, alone
    assert 'aria-current="page">linux/amd64</a>' in tabs
    arm = client_for().get(url, {"platform": "linux/arm64/v8"}).text
    assert "<h2>linux/arm64/v8</h2>" in arm and "<h2>linux/amd64</h2>" not in arm
    pull = re.search(r'aria-label="Pull linux/arm64/v8 by digest"', arm)
    assert pull and re.search(r'value="docker pull [^"]+/tools/multi@sha256:[0-9a-f]{64}"', arm)
    assert "<h2>linux/amd64</h2>" in client_for().get(url, {"platform": "<b>nope</b>"}).text  # unknown: the first
    assert "2 attestations" in html
    assert "unknown/unknown" not in html
    assert '<span class="badge badge-purple">sig</span>' in html


def test_tag_page_of_a_docker_manifest_list(client_for, registry_fixtures):
    html = client_for().get(reverse("browser-tag", args=["tools/legacy-list", "1"])).text
    assert "application/vnd.docker.distribution.manifest.list.v2+json" in html
    assert "<h2>linux/amd64</h2>" in html and 'href="?platform=linux/arm/v7#platform"' in html


def test_tag_page_of_an_oci_image_manifest(client_for, registry_fixtures):
    html = client_for().get(reverse("browser-tag", args=["shop/web", "v1"])).text
    assert "application/vnd.oci.image.manifest.v1+json" in html


def test_an_unknown_tag_is_a_404_page(client_for):
    assert client_for().get(reverse("browser-tag", args=["shop/api", "9.9.9"])).status_code == 404


def test_registry_text_is_never_rendered_as_html(client_for):
    client = client_for()
    for url in (reverse("browser-tag", args=["evil/xss", "latest"]), reverse("browser-repository", args=["evil/xss"])):
        html = client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html
    html = client.get(reverse("browser-tag", args=["evil/xss", "latest"])).text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_invisible_and_reordering_characters_from_the_registry_are_shown_escaped(client_for, own_client):
    spec = ImageSpec(
        layers=[{"app": "bidi"}],
        created=datetime(2025, 1, 1, tzinfo=UTC),
        labels={"title": "invoice\u202efdp.exe", "nul": "a\x00b"},
        env=["NAME=\u2066hidden\u2069"],
        cmd=["run", "\u200bzero"],
    )
    push_image(own_client, "team/app", "1", spec)
    html = client_for().get(reverse("browser-tag", args=["team/app", "1"])).text
    assert not {"\u202e", "\x00", "\u2066", "\u2069", "\u200b"} & set(html)
    for shown in ("invoice\\u202efdp.exe", "a\\u0000b", "NAME=\\u2066hidden\\u2069", "run \\u200bzero"):
        assert shown in html


def test_pages_send_a_strict_content_security_policy(client_for):
    policy = client_for().get(reverse("browser-home")).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy


@pytest.mark.parametrize("url", ["/", "/repositories/", "/repositories/shop/api/", "/repositories/shop/api/-/latest/"])
def test_pages_answer_only_get(client_for, url):
    assert client_for().post(url).status_code == 405


def test_the_interface_speaks_spanish(client_for):
    client = client_for()
    client.post(reverse("set_language"), {"language": "es", "next": "/"})
    html = client.get(reverse("browser-repositories")).text
    assert '<html lang="es">' in html
    assert "Repositorios" in html


def test_sorting_answers_htmx_with_the_tag_table_only(client_for):
    url = reverse("browser-repository", args=["shop/api"])
    htmx = {"HX-Request": "true", "HX-Target": "tags"}
    response = client_for().get(url, {"sort": "size", "dir": "asc"}, headers=htmx)
    assert response.text.lstrip().startswith('<section class="card" id="tags" ')
    assert "<html" not in response.text and rows_of(response.text)[0] == "1.0.0"


def test_htmx_history_restore_gets_the_whole_page(client_for):
    headers = {"HX-Request": "true", "HX-Target": "tags", "HX-History-Restore-Request": "true"}
    response = client_for().get(reverse("browser-repository", args=["shop/api"]), headers=headers)
    assert "<html" in response.text
    assert "HX-Request" in response.headers["Vary"]


def test_a_repository_not_indexed_yet_says_so_and_polls_until_its_sync_ran(client_for, own_client, settings):
    from django.tasks import task_backends

    push_image(own_client, "team/new", "1", image("one"))
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}
    }  # queued, not run
    client = client_for()
    url = reverse("browser-repository", args=["team/new"])
    page = client.get(url)
    assert page.status_code == 200 and "This repository is being indexed" in page.text
    assert 'hx-trigger="every 2s"' in page.text and 'hx-target="#main"' in page.text
    assert [result.task.name for result in task_backends["default"].results] == ["sync_repository"]
    client.get(url)
    assert len(task_backends["default"].results) == 1  # queued once, not on every poll
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
    catalog_tasks.sync_repository.enqueue("team/new")  # what the worker does
    poll = client.get(url, headers={"HX-Request": "true", "HX-Target": "main"})
    assert '<main id="main"' in poll.text and rows_of(poll.text) == ["1"]


def test_an_unknown_repository_is_a_404_without_queuing_anything(client_for, own_client, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    from django.tasks import task_backends

    assert client_for().get(reverse("browser-repository", args=["team/none"])).status_code == 404
    assert task_backends["default"].results == []


# --- Reloads: ETag and 304 ------------------------------------------------------------------------

PAGES_WITH_ETAGS = [
    "/repositories/",
    f"/repositories/{BIG}/?sort=created&dir=desc&page=2",
    "/search/?q=build-1",
    "/storage/",
    f"/storage/{BIG}/",
]


@pytest.fixture
def same_minute(monkeypatch):
    """ETags change every minute (pages say "3 minutes ago"): these tests stay inside one."""
    monkeypatch.setattr("catalog.pages.time.time", lambda: 1_800_000_000.0)


@pytest.mark.parametrize("path", PAGES_WITH_ETAGS)
def test_a_reload_that_changed_nothing_is_a_304_without_rendering(
    client_for, path, same_minute, django_assert_max_num_queries
):
    browser = client_for(roles.VIEWER)
    first = browser.get(path)
    assert first.status_code == 200 and first["ETag"]
    assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
    # Session, user, registry, role (and the repository and its tags' marker): nothing rendered.
    with django_assert_max_num_queries(6):
        again = browser.get(path, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == first["ETag"]


def test_a_change_to_the_index_the_user_or_the_fragment_renders_the_page_again(client_for, same_minute, settings):
    browser = client_for(roles.VIEWER)
    path = f"/repositories/{BIG}/"
    etag = browser.get(path)["ETag"]
    assert browser.get(path, headers={"HX-Request": "true", "HX-Target": "tags"})["ETag"] != etag
    assert browser.get(path + "?page=2")["ETag"] != etag
    sync.index_changed(Registry.objects.get(url=settings.REGISTRY_URL))
    changed = browser.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert client_for(roles.MAINTAINER).get(path, headers={"If-None-Match": changed["ETag"]}).status_code == 200


def test_a_page_with_a_message_waiting_is_always_rendered(client_for, same_minute, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    browser = client_for(roles.VIEWER)
    etag = browser.get("/repositories/")["ETag"]
    browser.post(reverse("browser-sync"))  # "The index is being refreshed…", shown on the next page
    shown = browser.get("/repositories/", headers={"If-None-Match": etag})
    assert shown.status_code == 200 and "ETag" not in shown and "being refreshed" in shown.content.decode()
    assert browser.get("/repositories/", headers={"If-None-Match": etag}).status_code == 304


QUERY_PAGES = {
    "repository list": "/repositories/",
    "4-tag repository": "/repositories/shop/api/",
    f"{BIG_TAG_COUNT}-tag repository by created": f"/repositories/{BIG}/?sort=created&dir=desc",
    f"{BIG_TAG_COUNT}-tag repository, last page by size": f"/repositories/{BIG}/?sort=size&page={LAST_PAGE}",
    "search": "/search/?q=build-1",
    "storage": "/storage/",
    "a repository's storage": f"/storage/{BIG}/",
}


def test_each_page_makes_a_few_queries_whatever_the_number_of_rows(client_for):
    """No query per row: a 50-row page of a big repository costs what a small one's does."""
    browser = client_for(roles.VIEWER)
    counts = {}
    for label, path in QUERY_PAGES.items():
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(path).status_code == 200
        counts[label] = len(queries)
    print("queries per page:", counts)
    big = [count for label, count in counts.items() if label.startswith(f"{BIG_TAG_COUNT}-tag")]
    assert set(big) == {counts["4-tag repository"]}
    assert max(counts.values()) <= 15, counts


def test_tags_with_no_known_push_time_say_so_and_sort_last_by_pushed(client_for):
    """Found at the first index, shop/api's tags were pushed before the dashboard watched."""
    url = reverse("browser-repository", args=["shop/api"])
    Tag.objects.filter(repository__name="shop/api").update(pushed_known=False)
    Tag.objects.filter(repository__name="shop/api", name="1.2.0").update(pushed_known=True)
    client = client_for()
    html = client.get(url, {"sort": "pushed", "dir": "desc"}).text
    assert html.count("unknown<sup>*</sup>") == 3 and "No push time is known for tags found before" in html
    assert rows_of(html)[0] == "1.2.0"
    assert rows_of(client.get(url, {"sort": "pushed", "dir": "asc"}).text)[0] == "1.2.0"


def test_the_delete_filter_goes_by_created_time_unless_told_otherwise(client_for):
    html = client_for(roles.MAINTAINER).get(reverse("browser-repository", args=["shop/api"])).text
    assert re.search(r'<option value="created" selected>', html)


def test_each_tag_row_offers_its_docker_pull_command_to_copy(client_for):
    html = client_for().get(reverse("browser-repository", args=["shop/api"])).text
    commands = re.findall(r'<code id="(pull-\d+)" hidden>docker pull ([^<]+)</code>', html)
    assert sorted(command.rsplit(":", 1)[1] for _, command in commands) == ["1.0.0", "1.10.0", "1.2.0", "latest"]
    for element_id, command in commands:
        assert f'data-copy="{element_id}"' in html and command.split("/", 1)[1].startswith("shop/api:")


def test_an_open_repository_page_polls_and_shows_a_new_tag_highlighted(client_for):
    """A tag pushed while the page is open appears without a reload: the page polls; nothing changed is a 204."""
    client = client_for()
    url = reverse("browser-repository", args=["shop/api"])
    page = client.get(url, {"sort": "name"}).text
    poll = re.search(r'<section class="card" id="tags" hx-get="([^"]+)" hx-trigger="every 2s"', page)[1].replace(
        "&amp;", "&"
    )
    assert "sort=name" in poll and "seen=" in poll
    htmx = {"HX-Request": "true", "HX-Target": "tags"}
    assert client.get(url + poll, headers=htmx).status_code == 204

    api = Repository.objects.get(name="shop/api")
    Tag.objects.create(repository=api, name="1.11.0", manifest=api.tags.get(name="latest").manifest)
    changed = client.get(url + poll, headers=htmx)
    assert changed.status_code == 200
    assert re.search(
        r'<tr class="fresh">\s*(<td[^>]*>.*?</td>\s*)?<td>\s*<a href="[^"]+/-/1\.11\.0/"', changed.text, re.S
    )
    assert changed.text.count('class="fresh"') == 1  # only the new row
    assert "<html" not in changed.text  # the tags section only
    new_poll = re.search(r'id="tags" hx-get="([^"]+)"', changed.text)[1].replace("&amp;", "&")
    assert client.get(url + new_poll, headers=htmx).status_code == 204


def repository_names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/repositories/([^"]+)/">', html)


def test_the_repository_list_shows_sizes_and_dates_sorts_by_each_and_filters_by_namespace(client_for, settings):
    """Seen: only name and tag count. Sizes come from the storage figures, computed in the background."""
    from catalog import storage

    registry = Registry.objects.get(url=settings.REGISTRY_URL)
    client = client_for()
    html = client.get(reverse("browser-repositories")).text  # (the tests' task backend computes them at once)
    figures = {usage.name: usage for usage in storage.registry_storage(registry).repositories}
    row = re.search(r'href="/repositories/shop/api/".*?</tr>', html, re.S)[0]
    api = figures["shop/api"]
    assert f"{filesizeformat(api.unique)} / {filesizeformat(api.referenced)}" in row.replace("&nbsp;", "\xa0")

    by_tags = repository_names(client.get(reverse("browser-repositories"), {"sort": "tags", "dir": "desc"}).text)
    counts = dict(Repository.objects.annotate(n=Count("tags")).values_list("name", "n"))
    assert by_tags[0] == BIG and [counts[name] for name in by_tags] == sorted(counts.values(), reverse=True)
    by_size = repository_names(client.get(reverse("browser-repositories"), {"sort": "size"}).text)
    assert [figures[name].referenced for name in by_size] == sorted(
        (u.referenced for u in figures.values()), reverse=True
    )
    assert (
        "namespace" not in client.get(reverse("browser-repositories"), {"sort": "size"}).text.split("<tbody>")[1][:200]
    )

    tools = client.get(reverse("browser-repositories"), {"namespace": "tools"}).text
    assert '<option value="tools" selected>tools/</option>' in tools
    assert {name.split("/")[0] for name in repository_names(tools)} == {"tools"}


def test_all_repositories_fit_on_one_page_when_asked(client_for, monkeypatch):
    from catalog.views import repositories as views

    monkeypatch.setattr(views, "REPOSITORIES_PER_PAGE", 2)
    client = client_for()
    paged = client.get(reverse("browser-repositories")).text
    assert len(repository_names(paged)) == 2 and "Show all on one page" in paged
    everything = client.get(reverse("browser-repositories"), {"per_page": "all"}).text
    assert len(repository_names(everything)) == Repository.objects.count()
