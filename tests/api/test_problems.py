"""Every error is an RFC 9457 problem with a detail a person can act on; the per-token rate limit answers 429 with
Retry-After."""

import pytest

from accounts import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(index, token_for, bearer):
    return bearer(token_for(roles.VIEWER))


def problem_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["title"]
    return body


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"cursor": "not-a-cursor"}, "cursor is not one this API gave out"),
        ({"pattern": "(unclosed"}, "not a regular expression"),
        ({"pattern": "(?=look-ahead)"}, "look-ahead"),
    ],
)
def test_a_bad_cursor_or_pattern_is_a_400(viewer, params, words):
    assert words in problem_of(viewer.get("/api/v1/repositories/shop/api/-/tags", params), 400)["detail"]


def test_a_cursor_of_another_list_is_a_400(viewer):
    cursor = viewer.get("/api/v1/repositories", {"limit": 1}).json()["next_cursor"]
    detail = problem_of(viewer.get("/api/v1/repositories/shop/api/-/tags", {"cursor": cursor}), 400)["detail"]
    assert "another list" in detail


def test_an_unknown_tag_repository_or_path_is_a_404(viewer):
    assert "no-such-tag" in problem_of(viewer.get("/api/v1/repositories/shop/api/-/tags/no-such-tag"), 404)["detail"]
    assert problem_of(viewer.get("/api/v1/repositories/nobody/here"), 404)["detail"]
    assert "/api/v1/nothing-here" in problem_of(viewer.get("/api/v1/nothing-here"), 404)["detail"]
    assert problem_of(viewer.get("/api/v1/"), 404)["detail"]


def test_a_method_a_path_does_not_take_is_a_405_naming_the_ones_it_does(viewer):
    answer = viewer.delete("/api/v1/repositories/shop/api/-/tags/latest")
    assert "DELETE is not allowed" in problem_of(answer, 405)["detail"]
    assert answer["Allow"] == "GET"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 100_000}, "limit"), ({"sort": "colour"}, "sort"), ({"dir": "up"}, "dir")],
)
def test_a_parameter_out_of_its_range_is_a_422_naming_it(viewer, params, field):
    detail = problem_of(viewer.get("/api/v1/repositories", params), 422)["detail"]
    assert f"query.{field}" in detail


def test_search_without_a_query_is_a_422(viewer):
    assert "query.q" in problem_of(viewer.get("/api/v1/search"), 422)["detail"]


def test_past_the_rate_limit_a_token_gets_429_with_retry_after_and_others_go_on(index, token_for, bearer, settings):
    settings.API_RATE_LIMIT = 3
    busy = bearer(token_for(roles.VIEWER))
    for _ in range(3):
        assert busy.get("/api/v1/sync").status_code == 200
    refused = busy.get("/api/v1/sync")
    assert "3 requests a minute" in problem_of(refused, 429)["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert bearer(token_for(roles.MAINTAINER)).get("/api/v1/sync").status_code == 200  # the limit is per token


def test_without_a_rate_limit_nothing_is_counted(index, token_for, bearer, settings):
    settings.API_RATE_LIMIT = 0
    client = bearer(token_for(roles.VIEWER))
    assert all(client.get("/api/v1/sync").status_code == 200 for _ in range(5))


def test_a_blank_search_is_a_422(viewer):
    assert "search for" in problem_of(viewer.get("/api/v1/search", {"q": "   "}), 422)["detail"]


def test_a_failure_inside_the_dashboard_is_a_500_problem_not_a_traceback(viewer, monkeypatch):
    from catalog import queries

    def broken(registry):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(queries, "index_state", broken)
    body = problem_of(viewer.get("/api/v1/sync"), 500)
    assert "secret internals" not in body["detail"] and "log" in body["detail"]


def test_an_edited_cursor_is_a_400_not_a_query_of_its_own(viewer):
    cursor = viewer.get("/api/v1/repositories", {"limit": 1}).json()["next_cursor"]
    edited = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert (
        "not one this API gave out" in problem_of(viewer.get("/api/v1/repositories", {"cursor": edited}), 400)["detail"]
    )
