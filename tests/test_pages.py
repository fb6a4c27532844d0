"""The browse pages against the session registry: what a user sees on each."""

import re

import pytest
from django.urls import reverse

from tests.conftest import BIG_TAG_COUNT

pytestmark = pytest.mark.django_db


def rows_of(html: str) -> list[str]:
    """The tag names of a tag table, in the order shown."""
    return re.findall(r'<a href="/repositories/[^"]+/-/([^/"]+)/">', html)


def test_home_shows_the_registry_and_its_counts(client_for, registry):
    response = client_for().get(reverse("browser-home"))
    assert response.status_code == 200
    assert registry.url in response.text
    assert "Reachable" in response.text
    assert "registry/2.0" in response.text
    assert "Enabled" in response.text  # delete is enabled on the session registry


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
    from browser.localregistry import LocalRegistry, add_user
    from browser.registry import reset_client

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
    assert '<tr class="namespace"><td colspan="2">shop/</td></tr>' in response.text


def test_a_repository_without_tags_is_marked(client_for):
    html = client_for().get(reverse("browser-repositories")).text
    row = re.search(r'href="/repositories/empty/gone/".*?</tr>', html, re.S).group(0)
    assert "no tags" in row


def test_the_repository_filter_keeps_matching_names(client_for):
    response = client_for().get(reverse("browser-repositories"), {"q": "shop"})
    assert "shop/api" in response.text and "tools/multi" not in response.text


def test_the_repository_filter_answers_htmx_with_the_table_only(client_for):
    response = client_for().get(reverse("browser-repositories"), {"q": "tools"}, headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<section class="card" id="repositories">')
    assert "<html" not in response.text


def test_the_repository_list_is_paginated(client_for, registry_client, settings):
    from browser.views import repositories

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
    shared = re.findall(r'/-/([^/"]+)/">[^<]*</a>\s*<span class="badge badge-info"[^>]*>shared', html)
    assert sorted(shared) == ["1.10.0", "latest"]


def test_sorting_by_created_spans_all_tags(client_for, registry_fixtures):
    response = client_for().get(reverse("browser-repository", args=["big/many"]), {"sort": "created", "dir": "desc"})
    newest_first = sorted(registry_fixtures.big_created, key=registry_fixtures.big_created.get, reverse=True)
    assert rows_of(response.text) == newest_first[:50]
    assert f"{BIG_TAG_COUNT:,} tags" in response.text or f"{BIG_TAG_COUNT} tags" in response.text
    last = client_for().get(
        reverse("browser-repository", args=["big/many"]), {"sort": "created", "dir": "desc", "page": 30}
    )
    assert rows_of(last.text) == newest_first[-50:]


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


def test_refresh_reads_the_registry_again_and_redirects(client_for, registry_client):
    from browser.localregistry import ImageSpec, push_image

    client = client_for()
    url = reverse("browser-repository", args=["shop/web"])
    assert rows_of(client.get(url).text) == ["v1"]
    push_image(registry_client, "shop/web", "v2", ImageSpec(layers=[{"web": "v2"}], oci=True))
    assert rows_of(client.get(url).text) == ["v1"]  # the cached listing
    response = client.get(url, {"refresh": "1"})
    assert response.status_code == 302 and "refresh" not in response.url
    assert "v2" in rows_of(client.get(url).text)
    registry_client.delete_manifest("shop/web", registry_client.resolve("shop/web", "v2"))


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
    assert "latest" in html  # also tagged


def test_tag_page_of_an_oci_index_has_a_section_per_platform(client_for, registry_fixtures):
    html = client_for().get(reverse("browser-tag", args=["tools/multi", "2.0"])).text
    assert registry_fixtures.multi_digest in html
    assert "<h2>linux/amd64</h2>" in html and "<h2>linux/arm64/v8</h2>" in html
    assert "2 attestations" in html
    assert "unknown/unknown" not in html
    assert '<span class="badge badge-purple">sig</span>' in html


def test_tag_page_of_a_docker_manifest_list(client_for, registry_fixtures):
    html = client_for().get(reverse("browser-tag", args=["tools/legacy-list", "1"])).text
    assert "application/vnd.docker.distribution.manifest.list.v2+json" in html
    assert "<h2>linux/amd64</h2>" in html and "<h2>linux/arm/v7</h2>" in html


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


def test_htmx_history_restore_gets_the_whole_page(client_for):
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = client_for().get(reverse("browser-repository", args=["shop/api"]), headers=headers)
    assert "<html" in response.text
    assert "HX-Request" in response.headers["Vary"]
