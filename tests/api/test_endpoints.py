"""Every reading endpoint, for each role, against the session registry's index: what a script gets back."""

import pytest
from django.test import Client

from accounts import roles
from cleanup.models import AuditEntry
from tests.conftest import BIG_TAG_COUNT, XSS

pytestmark = pytest.mark.django_db
EVERY_ROLE = [roles.VIEWER, roles.MAINTAINER, roles.ADMIN]


@pytest.fixture
def as_role(index, token_for, bearer):
    def make(role: str) -> Client:
        return bearer(token_for(role))

    return make


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_the_repository_list_holds_every_repository_with_its_counts_and_sizes(as_role, role):
    answer = as_role(role).get("/api/v1/repositories", {"limit": 1000})
    assert answer.status_code == 200
    rows = {row["name"]: row for row in answer.json()["items"]}
    assert set(rows) >= {"shop/api", "shop/web", "tools/multi", "tools/legacy-list", "evil/xss", "big/many"}
    assert rows["shop/api"]["tag_count"] == 4
    assert rows["big/many"]["tag_count"] == BIG_TAG_COUNT
    assert rows["shop/api"]["namespace"] == "shop"
    assert rows["shop/api"]["referenced_bytes"] > rows["shop/api"]["unique_bytes"] > 0  # shares a base layer
    assert answer.json()["next_cursor"] is None


def test_the_repository_list_filters_by_name_and_namespace_and_sorts_by_tags(as_role):
    client = as_role(roles.VIEWER)
    names = [row["name"] for row in client.get("/api/v1/repositories", {"q": "multi"}).json()["items"]]
    assert names == ["tools/multi"]
    names = [row["name"] for row in client.get("/api/v1/repositories", {"namespace": "tools"}).json()["items"]]
    assert names == ["tools/legacy-list", "tools/multi"]
    by_tags = client.get("/api/v1/repositories", {"sort": "tags"}).json()["items"]
    assert [row["name"] for row in by_tags[:2]] == ["big/many", "shop/api"]
    by_size = client.get("/api/v1/repositories", {"sort": "size", "dir": "asc"}).json()["items"]
    sizes = [row["referenced_bytes"] for row in by_size]
    assert sizes == sorted(sizes)


def test_the_repository_list_walks_its_pages_with_the_cursor_each_once(as_role):
    client = as_role(roles.VIEWER)
    everything = [row["name"] for row in client.get("/api/v1/repositories", {"sort": "name"}).json()["items"]]
    seen, params = [], {"sort": "name", "limit": 2}
    while True:
        answer = client.get("/api/v1/repositories", params)
        page = answer.json()
        seen += [row["name"] for row in page["items"]]
        if not page["next_cursor"]:
            assert "Link" not in answer
            break
        assert 'rel="next"' in answer["Link"]
        params = {"cursor": page["next_cursor"], "limit": 2}
    assert seen == everything
    assert len(everything) > 4


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_one_repository_comes_with_its_storage_figures(as_role, role):
    answer = as_role(role).get("/api/v1/repositories/shop/api")
    assert answer.status_code == 200
    body = answer.json()
    assert body["name"] == "shop/api" and body["tag_count"] == 4
    figures = body["storage"]
    assert figures["referenced_bytes"] == figures["unique_bytes"] + figures["shared_bytes"]
    assert figures["shared_bytes"] > 0
    assert figures["largest_layers"] and all(
        layer["digest"].startswith("sha256:") for layer in figures["largest_layers"]
    )


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_the_tags_of_a_repository_come_newest_first(as_role, role, registry_fixtures):
    answer = as_role(role).get("/api/v1/repositories/shop/api/-/tags")
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [tag["name"] for tag in items] == ["latest", "1.10.0", "1.2.0", "1.0.0"]
    assert items[0]["digest"] == registry_fixtures.api_digest
    assert items[0]["also_tagged"] == ["1.10.0"]
    assert answer.json()["total"] == 4


def test_tags_sort_by_name_and_size_and_filter_by_pattern(as_role):
    client = as_role(roles.VIEWER)
    by_name = client.get("/api/v1/repositories/shop/api/-/tags", {"sort": "name"}).json()["items"]
    assert [tag["name"] for tag in by_name] == ["1.0.0", "1.2.0", "1.10.0", "latest"]  # natural order
    matching = client.get("/api/v1/repositories/shop/api/-/tags", {"pattern": r"^1\.\d+\.0$", "sort": "name"})
    assert [tag["name"] for tag in matching.json()["items"]] == ["1.0.0", "1.2.0", "1.10.0"]
    by_size = client.get("/api/v1/repositories/tools/multi/-/tags", {"sort": "size", "dir": "desc"}).json()["items"]
    assert [tag["name"] for tag in by_size] == ["2.0"]  # the signature tag is a badge, not a tag row


def test_the_tags_of_a_big_repository_come_in_pages_of_the_limit_in_creation_order(as_role, registry_fixtures):
    client = as_role(roles.VIEWER)
    newest = sorted(registry_fixtures.big_created, key=registry_fixtures.big_created.get, reverse=True)
    first = client.get("/api/v1/repositories/big/many/-/tags", {"limit": 100}).json()
    second = client.get("/api/v1/repositories/big/many/-/tags", {"cursor": first["next_cursor"], "limit": 100}).json()
    assert [tag["name"] for tag in first["items"] + second["items"]] == newest[:200]
    assert first["total"] == BIG_TAG_COUNT


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_a_multi_platform_tag_lists_its_platforms_with_digests_and_its_attestations(as_role, role, registry_fixtures):
    answer = as_role(role).get("/api/v1/repositories/tools/multi/-/tags/2.0")
    assert answer.status_code == 200
    body = answer.json()
    assert body["digest"] == registry_fixtures.multi_digest
    assert body["media_type"] == "application/vnd.oci.image.index.v1+json" and body["is_index"]
    assert [image["platform"] for image in body["images"]] == ["linux/amd64", "linux/arm64/v8"]
    assert all(image["digest"].startswith("sha256:") and image["size"] > 0 for image in body["images"])
    assert len(body["attestations"]) == 2
    assert body["signatures"] == ["sig"]
    assert body["created"].startswith("2024-01-06")


def test_a_tag_s_labels_come_back_as_plain_strings_never_as_html(as_role, registry_fixtures):
    answer = as_role(roles.VIEWER).get("/api/v1/repositories/evil/xss/-/tags/latest")
    assert answer["Content-Type"].startswith("application/json")
    assert answer.json()["labels"] == {"description": XSS}
    assert answer.json()["digest"] == registry_fixtures.xss_digest
    plain = as_role(roles.VIEWER).get("/api/v1/repositories/shop/api/-/tags/1.2.0").json()
    assert plain["labels"] == {"team": "payments"} and plain["platforms"] == ["linux/amd64"]


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_search_finds_repositories_tags_digests_and_labels(as_role, role, registry_fixtures):
    client = as_role(role)
    assert [repo["name"] for repo in client.get("/api/v1/search", {"q": "shop"}).json()["repositories"]] == [
        "shop/api",
        "shop/web",
    ]
    by_digest = client.get("/api/v1/search", {"q": registry_fixtures.api_digest[:20]}).json()["digests"]
    assert by_digest[0]["digest"] == registry_fixtures.api_digest
    assert {"repository": "shop/api", "tag": "latest"} in by_digest[0]["tags"]
    by_label = client.get("/api/v1/search", {"q": "payments"}).json()["labels"]
    assert by_label[0]["labels"] == {"team": "payments"}
    assert by_label[0]["tags"] == [{"repository": "shop/api", "tag": "1.2.0"}]


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_storage_gives_the_registry_s_total_and_the_largest_repositories(as_role, role):
    body = as_role(role).get("/api/v1/storage", {"largest": 3}).json()
    assert [repo["name"] for repo in body["largest_repositories"]][0] == "big/many"
    assert len(body["largest_repositories"]) == 3
    assert body["total_bytes"] > 0 and body["total_blobs"] > BIG_TAG_COUNT
    assert body["disk_used_bytes"] is None  # no GC bridge: nothing measures the disk


@pytest.mark.parametrize(("role", "status"), [(roles.VIEWER, 403), (roles.MAINTAINER, 200), (roles.ADMIN, 200)])
def test_the_audit_log_is_for_maintainers_and_admins(as_role, role, status):
    AuditEntry.objects.create(user="bob", action=AuditEntry.REMOVE_TAG, repository="shop/api", tags=["old"])
    answer = as_role(role).get("/api/v1/audit")
    assert answer.status_code == status
    if status == 200:
        assert [entry["tags"] for entry in answer.json()["items"]] == [["old"]]
    else:
        assert answer["Content-Type"] == "application/problem+json"
        assert "maintainer" in answer.json()["detail"]


def test_the_audit_log_takes_the_page_s_filters_and_pages_with_its_cursor(as_role):
    for n in range(5):
        AuditEntry.objects.create(user="bob", action=AuditEntry.REMOVE_TAG, repository=f"shop/app-{n}", tags=[str(n)])
    AuditEntry.objects.create(user="eve", action=AuditEntry.DELETE_MANIFEST, repository="other/x", tags=["z"])
    client = as_role(roles.MAINTAINER)
    assert [e["user"] for e in client.get("/api/v1/audit", {"user": "eve"}).json()["items"]] == ["eve"]
    first = client.get("/api/v1/audit", {"repository": "shop/*", "limit": 3}).json()
    rest = client.get("/api/v1/audit", {"cursor": first["next_cursor"], "limit": 3}).json()
    assert [e["tags"][0] for e in first["items"] + rest["items"]] == ["4", "3", "2", "1", "0"]
    assert rest["next_cursor"] is None
    bad_date = client.get("/api/v1/audit", {"since": "2024-02-30"}).json()
    assert "2024-02-30" in bad_date["ignored_filters"][0] and len(bad_date["items"]) == 6


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_sync_status_tells_of_the_latest_reconcile(as_role, role):
    body = as_role(role).get("/api/v1/sync").json()
    assert body["latest_run"]["kind"] == "full" and body["latest_run"]["status"] == "done"
    assert body["latest_run"]["repositories_done"] == body["latest_run"]["repositories_total"] > 5
    assert body["checked_since"] is not None


def test_a_signed_in_page_session_reads_the_api_too(index, client_for):
    answer = client_for(roles.VIEWER).get("/api/v1/repositories/shop/api/-/tags", {"format": "txt"})
    assert answer.status_code == 200
    assert answer.text.splitlines()[0] == "latest"
