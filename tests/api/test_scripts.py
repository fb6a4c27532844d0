"""The API as shell scripts use it: plain text, newest first, read the way `curl … | head -1` reads it."""

import pytest

from accounts import roles

pytestmark = pytest.mark.django_db


def curl(client, url: str, **headers) -> list[str]:
    """What a script reading the answer line by line gets."""
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain")
    return answer.content.decode().splitlines()


def test_which_versions_of_shop_api_exist_newest_first(index, token_for, bearer):
    client = bearer(token_for(roles.VIEWER))
    lines = curl(client, "/api/v1/repositories/shop/api/-/tags?format=txt")
    assert lines == ["latest", "1.10.0", "1.2.0", "1.0.0"]  # 1.10.0 and latest are one image, the newest
    assert curl(client, "/api/v1/repositories/shop/api/-/tags?format=txt&pattern=^1%5C.")[0] == "1.10.0"


def test_accept_text_plain_gets_one_tag_a_line_and_curl_s_default_gets_json(index, token_for, bearer):
    client = bearer(token_for(roles.VIEWER))
    assert curl(client, "/api/v1/repositories/shop/api/-/tags", Accept="text/plain") == [
        "latest",
        "1.10.0",
        "1.2.0",
        "1.0.0",
    ]
    answer = client.get("/api/v1/repositories/shop/api/-/tags", headers={"Accept": "*/*"})
    assert answer["Content-Type"].startswith("application/json")


def test_a_long_text_list_says_where_its_next_page_is(index, token_for, bearer, registry_fixtures):
    client = bearer(token_for(roles.VIEWER))
    answer = client.get("/api/v1/repositories/big/many/-/tags", {"format": "txt", "limit": 10})
    newest = sorted(registry_fixtures.big_created, key=registry_fixtures.big_created.get, reverse=True)
    assert answer.content.decode().splitlines() == newest[:10]
    following = answer["Link"].removeprefix("<").partition(">")[0]
    assert client.get(following).content.decode().splitlines() == newest[10:20]
