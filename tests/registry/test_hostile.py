"""A registry that answers badly on purpose gets nothing: no credentials sent to another host, no endless lists, no
answer that holds a thread or blows the stack. Each server here is a small loopback stand-in of the tests' own."""

import base64
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from registry.client import (
    MalformedResponse,
    RegistryClient,
    RegistryTimeout,
    RegistryUnauthorized,
)
from tests.conftest import SERVICE_PASSWORD, SERVICE_USER
from tests.registry.test_client import json_answer, loopback

BASIC = "Basic " + base64.b64encode(f"{SERVICE_USER}:{SERVICE_PASSWORD}".encode()).decode()


def recording(answer):
    """A handler that records (path, Authorization header) of each request and answers answer(request)."""
    seen = []

    def handle(request):
        seen.append((request.path, request.headers.get("Authorization")))
        return answer(request)

    return handle, seen


# --- Pagination --------------------------------------------------------------------------------


@pytest.mark.parametrize("link_form", ["{other}/v2/_catalog?last=a", "//{other_host}/v2/_catalog?last=a"])
def test_a_link_to_another_host_is_not_followed_and_gets_no_credentials(link_form):
    other, other_seen = recording(lambda request: json_answer({"repositories": ["stolen/creds"]}))
    with loopback(other) as other_url:
        link = link_form.format(other=other_url, other_host=urlsplit(other_url).netloc)
        registry, _ = recording(
            lambda request: json_answer({"repositories": ["a/one"]}, headers={"Link": f'<{link}>; rel="next"'})
        )
        with loopback(registry) as url, pytest.raises(MalformedResponse) as raised:
            RegistryClient(url, SERVICE_USER, SERVICE_PASSWORD).catalog()
    assert other_seen == []
    assert raised.value.code == "FOREIGN_HOST" and "only http://127.0.0.1" in raised.value.message


def test_a_link_back_to_the_same_page_stops_with_an_error():
    handle, seen = recording(
        lambda request: json_answer({"repositories": ["a/one"]}, headers={"Link": '</v2/_catalog?n=1000>; rel="next"'})
    )
    with loopback(handle) as url, pytest.raises(MalformedResponse, match="links back to a page it gave"):
        RegistryClient(url).catalog()
    assert len(seen) == 1  # the link back to the first page is not followed


def test_a_list_longer_than_the_limit_stops_with_an_error_naming_the_setting():
    def endless(request):
        page = int(parse_qs(urlsplit(request.path).query).get("last", ["0"])[0])
        names = [f"repo/n{page * 100 + n}" for n in range(100)]
        return json_answer({"repositories": names}, headers={"Link": f'</v2/_catalog?last={page + 1}>; rel="next"'})

    handle, seen = recording(endless)
    with loopback(handle) as url, pytest.raises(MalformedResponse, match="REGISTRY_MAX_LIST_ENTRIES"):
        RegistryClient(url, max_list_entries=1_000).catalog()
    assert len(seen) == 11  # 1,100 names read, then it stopped


# --- Token services ------------------------------------------------------------------------------


def challenge_to(realm: str):
    def handle(request):
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return json_answer({"repositories": ["team/app"]})
        header = f'Bearer realm="{realm}",service="test"'
        return json_answer({"errors": [{"code": "UNAUTHORIZED"}]}, 401, {"WWW-Authenticate": header})

    return handle


@pytest.fixture
def token_service():
    """A token service on another host (here: another loopback address, the same port rules apply)."""
    handle, seen = recording(lambda request: json_answer({"token": "t"}))
    with loopback(handle) as url:
        yield url.replace("127.0.0.1", "localhost"), seen


def test_a_realm_on_another_host_over_http_gets_neither_the_account_nor_a_users_password(token_service):
    realm_url, seen = token_service
    with loopback(challenge_to(f"{realm_url}/token")) as url:
        client = RegistryClient(url, SERVICE_USER, SERVICE_PASSWORD)
        with pytest.raises(RegistryUnauthorized) as raised:
            client.catalog()
        assert client.check_credentials("alice", "alice-password") is False
    assert seen == []
    assert raised.value.code == "FOREIGN_REALM" and "REGISTRY_TOKEN_REALMS" in raised.value.message


def test_a_realm_named_in_the_setting_gets_credentials(token_service):
    realm_url, seen = token_service
    with loopback(challenge_to(f"{realm_url}/token")) as url:
        client = RegistryClient(url, SERVICE_USER, SERVICE_PASSWORD, token_realms=[f"{realm_url}/token"])
        assert client.catalog() == ["team/app"]
    assert [authorization for _, authorization in seen] == [BASIC]


def test_which_realms_get_credentials():
    default = RegistryClient("http://registry.internal:5000")
    assert default.realm_allowed("https://auth.example.com/token")  # HTTPS anywhere
    assert default.realm_allowed("http://registry.internal:5001/token")  # the registry's own host
    assert not default.realm_allowed("http://auth.example.com/token")
    pinned = RegistryClient("http://registry.internal:5000", token_realms=["https://auth.example.com/token"])
    assert pinned.realm_allowed("https://auth.example.com/token") and pinned.realm_allowed(
        "https://auth.example.com/token/x"
    )
    assert not pinned.realm_allowed("https://auth.example.com/tokenx")
    assert not pinned.realm_allowed("http://registry.internal:5001/token")  # once pinned, only what is named


@pytest.mark.parametrize(
    "token_answer",
    [(200, {"Content-Type": "text/html"}, b"<html>Welcome</html>"), (204, {}, b""), (200, {}, b'{"token": ""}')],
    ids=["html", "empty", "empty-token"],
)
def test_a_sign_in_counts_only_when_the_token_service_answers_with_a_token(token_answer):
    def handle(request):
        if request.path.startswith("/token"):
            return token_answer
        realm = f"http://127.0.0.1:{request.server.server_port}/token"
        return json_answer({"errors": []}, 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="test"'})

    with loopback(handle) as url:
        assert RegistryClient(url).check_credentials("alice", "any-password") is False


# --- Answers that never end, or nest for ever ------------------------------------------------------


def test_an_answer_trickling_in_is_cut_off_at_the_time_limit():
    def trickle(request):
        def body():
            yield b'{"repositories": ['
            for _ in range(100):
                time.sleep(0.1)
                yield b" "

        return 200, {"Content-Type": "application/json", "Content-Length": "100000"}, body()

    with loopback(trickle) as url:
        started = time.monotonic()
        with pytest.raises(RegistryTimeout, match="did not arrive in time"):
            RegistryClient(url, connect_timeout=0.5, read_timeout=1).catalog()
    assert time.monotonic() - started < 3  # each byte came within the read timeout, the whole answer did not


def test_json_nested_a_hundred_thousand_deep_is_a_clear_error():
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = (200, {"Content-Type": "application/json"}, deep)
    with loopback(lambda request: answer) as url, pytest.raises(MalformedResponse, match="nested too deeply"):
        RegistryClient(url).catalog()
