"""The search page: one box for repositories, tags, digests and label values in the index."""

import re

import pytest
from django.urls import reverse

from catalog import queries, sync
from catalog.models import ManifestChild

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def indexed(db, registry_client):
    """The small repositories of the session registry, indexed (big/many is left out: it is slow to index)."""
    registry = sync.current_registry()
    for name in ("shop/api", "shop/web", "tools/multi", "tools/legacy-list", "evil/xss", "empty/gone"):
        sync.sync_repository(registry_client, registry, name)
    return registry


def section(html: str, kind: str) -> str:
    """One kind of result (repositories, tags, digests, labels); empty when the page has none."""
    found = re.search(rf'<section class="card" id="found-{kind}">.*?</section>', html, re.S)
    return found.group(0) if found else ""


def links_in(html: str) -> list[str]:
    return re.findall(r'<a href="(/repositories/[^"]+)">', html)


def search(client, query: str, headers: dict | None = None) -> str:
    response = client.get(reverse("browser-search"), {"q": query}, headers=headers)
    assert response.status_code == 200
    return response.text


def test_repositories_are_found_by_part_of_their_name(client_for):
    html = search(client_for(), "SHOP/")
    assert links_in(section(html, "repositories")) == ["/repositories/shop/api/", "/repositories/shop/web/"]
    assert section(html, "tags") == section(html, "digests") == section(html, "labels") == ""


def test_tags_are_found_by_part_of_their_name_with_their_repository(client_for):
    found = section(search(client_for(), "1.1"), "tags")
    assert links_in(found) == ["/repositories/shop/api/-/1.10.0/"]
    assert "shop/api:1.10.0" in found


@pytest.mark.parametrize("prefixed", [False, True])
def test_an_image_is_found_by_a_digest_prefix_with_the_tags_pointing_at_it(client_for, registry_fixtures, prefixed):
    query = registry_fixtures.api_digest[: 7 + 8] if prefixed else registry_fixtures.api_digest[7 : 7 + 8]
    found = section(search(client_for(), query), "digests")
    assert registry_fixtures.api_digest in found
    assert links_in(found) == ["/repositories/shop/api/-/1.10.0/", "/repositories/shop/api/-/latest/"]


def test_a_platform_image_is_found_by_digest_with_the_tags_of_its_index(client_for, registry_fixtures):
    child = ManifestChild.objects.get(index__digest=registry_fixtures.multi_digest, platform="linux/arm64/v8").child
    found = section(search(client_for(), child.digest[7:19]), "digests")
    assert child.digest in found and "linux/arm64/v8" in found
    assert links_in(found) == ["/repositories/tools/multi/-/2.0/"]


def test_fewer_than_four_hex_digits_are_not_read_as_a_digest(client_for, registry_fixtures):
    assert section(search(client_for(), registry_fixtures.api_digest[7:10]), "digests") == ""


def test_images_are_found_by_a_label_value_not_by_its_key(client_for):
    client = client_for()
    found = section(search(client, "PAYments"), "labels")
    assert "team" in found and "payments" in found
    assert links_in(found) == ["/repositories/shop/api/-/1.2.0/"]
    assert "Nothing in the index matches" in search(client, "team")  # a key, not a value


def test_a_label_search_with_quotes_is_matched_on_the_values(client_for):
    # Quotes are escaped in the labels' JSON text, so this query is matched in Python alone.
    found = section(search(client_for(), 'alert("x")'), "labels")
    assert links_in(found) == ["/repositories/evil/xss/-/latest/"]


def test_registry_text_in_results_is_escaped(client_for):
    html = search(client_for(), "<script>")
    found = section(html, "labels")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in found
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in re.search(r'<input id="search-query"[^>]*>', html).group(0)  # the query, echoed


def test_each_kind_is_capped_with_a_note(client_for, monkeypatch):
    monkeypatch.setattr(queries, "SEARCH_LIMIT", 2)
    found = section(search(client_for(), "1."), "tags")
    assert links_in(found) == ["/repositories/shop/api/-/1.0.0/", "/repositories/shop/api/-/1.10.0/"]
    assert "Only the first 2 are shown" in found


def test_no_match_and_no_query_say_so(client_for):
    client = client_for()
    assert "Nothing in the index matches “no-such-thing”." in search(client, "no-such-thing")
    html = search(client, "")
    assert "Finds repositories and tags by name" in html and 'id="found-' not in html


def test_typing_gets_the_results_alone_from_htmx(client_for):
    html = search(client_for(), "shop", {"HX-Request": "true", "HX-Target": "results"})
    assert html.lstrip().startswith('<div id="results">') and "<html" not in html
    assert "/repositories/shop/api/" in html


def test_the_top_bar_has_a_search_box_that_leads_here(client_for):
    html = client_for().get(reverse("browser-repositories")).text
    form = re.search(r'<form[^>]*role="search"[^>]*>.*?</form>', html, re.S).group(0)
    assert 'action="/search/"' in form and 'method="get"' in form and 'name="q"' in form


def test_search_answers_only_get_and_only_signed_in_users(client, client_for):
    assert client.get(reverse("browser-search"), {"q": "shop"}).status_code == 302  # to the login page
    assert client_for().post(reverse("browser-search")).status_code == 405
