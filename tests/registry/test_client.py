"""The registry client against a real docker-registry 2.8, plus tiny loopback HTTP servers for the faults a real
registry can't be made to produce (garbage answers, timeouts, token auth, slow answers)."""

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from django.core.cache import cache

from devtools.images import ImageSpec, push_image
from devtools.localregistry import LocalRegistry, free_port
from registry.client import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_ACCEPT,
    MAX_CONFIG_BYTES,
    MAX_IN_FLIGHT,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    DeleteDisabled,
    MalformedResponse,
    NotFound,
    ReadOnly,
    RegistryClient,
    RegistryError,
    RegistryTimeout,
    RegistryUnauthorized,
    RegistryUnreachable,
    UnsupportedManifest,
    parse_config,
    parse_manifest,
    sha256_digest,
)
from registry.htpasswd import add_user
from tests.conftest import BASE_TIME, BIG_TAG_COUNT, SERVICE_PASSWORD, SERVICE_USER, USERS, XSS

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
FIXTURE_REPOSITORIES = {
    "shop/api",
    "shop/web",
    "tools/multi",
    "tools/legacy-list",
    "empty/gone",
    "evil/xss",
    "big/many",
}
# repository, tag, Fixtures attribute with its digest, status of a HEAD that forgets the Accept list
FIXTURE_TAGS = [
    pytest.param("shop/api", "1.10.0", "api_digest", 200, id="docker-schema2"),
    pytest.param("shop/web", "v1", "web_digest", 404, id="oci-manifest"),
    pytest.param("tools/multi", "2.0", "multi_digest", 404, id="oci-index"),
    pytest.param("tools/legacy-list", "1", "list_digest", 200, id="docker-manifest-list"),
]


# --- Helpers ---------------------------------------------------------------------------------


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the concurrency test opens eight connections at once


Answer = tuple[int, dict[str, str], bytes | Iterable[bytes]]


@contextmanager
def loopback(handle: Callable[[BaseHTTPRequestHandler], Answer]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every request with handle(request); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, body = handle(self)
            self.send_response(status)
            if isinstance(body, bytes):
                headers = {"Content-Length": str(len(body)), **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                for chunk in [body] if isinstance(body, bytes) else body:
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, which some tests want

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, *args) -> None:
            pass

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def json_answer(data, status: int = 200, headers: dict | None = None) -> Answer:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(data).encode()


def raw(method: str, url: str, **kwargs) -> requests.Response:
    """A request that bypasses the client, to show what the registry itself answers."""
    kwargs.setdefault("auth", (SERVICE_USER, SERVICE_PASSWORD))
    return requests.request(method, url, timeout=5, **kwargs)


def count_requests(client: RegistryClient, monkeypatch) -> list[tuple[str, str]]:
    """Record (method, url) of every HTTP request the client sends from now on."""
    sent, send = [], client._send

    def counting(method, url, **kwargs):
        sent.append((method, url))
        return send(method, url, **kwargs)

    monkeypatch.setattr(client, "_send", counting)
    return sent


def tiny(name: str, **extra) -> ImageSpec:
    return ImageSpec(layers=[{"app/name.txt": name}], created=BASE_TIME, **extra)


def unique(purpose: str) -> str:
    return f"client-tests/{purpose}-{uuid.uuid4().hex[:12]}"


@dataclass
class ConfiguredRegistry(LocalRegistry):
    """A LocalRegistry with a catalog page limit or a path prefix. start() rewrites the config, so the additions
    go into write_config."""

    maxentries: int = 0
    prefix: str = ""

    @property
    def url(self) -> str:
        return super().url + self.prefix

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        if self.prefix:
            text = text.replace("http:\n", f"http:\n  prefix: {self.prefix}/\n")
        if self.maxentries:
            text += f"catalog:\n  maxentries: {self.maxentries}\n"
        self.config_path.write_text(text)


@contextmanager
def own_registry(
    root: Path, users: dict[str, str] | None = None, **settings
) -> Iterator[tuple[ConfiguredRegistry, RegistryClient]]:
    """A second, empty registry for tests that need other settings; the service account can log in."""
    local = ConfiguredRegistry(root, **settings)
    local.write_config()
    for name, password in {SERVICE_USER: SERVICE_PASSWORD, **(users or {})}.items():
        add_user(local.htpasswd, name, password, cost=4)
    local.start()
    try:
        yield local, RegistryClient(local.url, SERVICE_USER, SERVICE_PASSWORD)
    finally:
        local.stop()


# --- status and credentials ------------------------------------------------------------------


def test_status_reports_the_registry_api_version_and_basic_auth(registry_client):
    status = registry_client.status()
    assert status.api_version == "registry/2.0"
    assert status.auth_scheme == "basic"


def test_a_wrong_service_password_raises_unauthorized_with_a_message(registry):
    client = RegistryClient(registry.url, SERVICE_USER, "not-the-service-password")
    with pytest.raises(RegistryUnauthorized) as raised:
        client.status()
    assert raised.value.message == "The registry rejected the dashboard's account (GET /v2/)."
    assert raised.value.status == 502
    assert raised.value.code == "UNAUTHORIZED"


def test_check_credentials_accepts_the_right_password_and_refuses_a_wrong_one(registry_client):
    assert registry_client.check_credentials("alice", USERS["alice"]) is True
    assert registry_client.check_credentials("alice", USERS["bob"]) is False
    assert registry_client.check_credentials("nobody", "whatever") is False


def test_check_credentials_refuses_a_password_longer_than_72_bytes_without_raising(registry_client):
    too_long = USERS["alice"] + "ü" * 40
    assert len(too_long.encode()) > 72
    assert registry_client.check_credentials("alice", too_long) is False


@pytest.mark.registry
def test_check_credentials_accepts_a_non_ascii_password_in_the_latin1_range(tmp_path):
    with own_registry(tmp_path, users={"dora": "pässwörd"}) as (local, client):
        # The registry itself accepts the UTF-8 bytes, as `docker login` and curl send them.
        assert raw("GET", local.url + "/v2/", auth=(b"dora", "pässwörd".encode())).status_code == 200
        assert client.check_credentials("dora", "pässwörd") is True


@pytest.mark.registry
def test_check_credentials_accepts_a_password_outside_latin1(tmp_path):
    with own_registry(tmp_path, users={"ivan": "пароль-123"}) as (local, client):
        assert raw("GET", local.url + "/v2/", auth=(b"ivan", "пароль-123".encode())).status_code == 200
        assert client.check_credentials("ivan", "пароль-123") is True


# --- catalog ---------------------------------------------------------------------------------


def test_catalog_lists_every_fixture_repository_including_one_whose_tags_were_all_deleted(registry_client):
    names = registry_client.catalog()
    assert set(names) >= FIXTURE_REPOSITORIES
    assert len(names) == len(set(names))


@pytest.mark.registry
def test_catalog_follows_link_pages_when_the_registry_refuses_a_page_of_1000(tmp_path, monkeypatch):
    names = [f"paged/repo-{n}" for n in range(5)]
    with own_registry(tmp_path, maxentries=2) as (local, client):
        for name in names:
            push_image(client, name, "1", tiny(name))
        with pytest.raises(RegistryError) as refused:
            client.request("GET", "/v2/_catalog?n=1000")
        assert refused.value.code == "PAGINATION_NUMBER_INVALID"
        sent = count_requests(client, monkeypatch)
        assert sorted(client.catalog()) == names
    assert "n=1000" in sent[0][1]
    assert len([url for _, url in sent if "last=" in url]) >= 2  # five repositories, two a page


@pytest.mark.registry
def test_catalog_pages_keep_the_path_prefix_of_a_registry_served_under_one(tmp_path, monkeypatch):
    names = [f"prefixed/repo-{n}" for n in range(3)]
    with own_registry(tmp_path, maxentries=2, prefix="/registry") as (local, client):
        for name in names:
            push_image(client, name, "1", tiny(name))
        sent = count_requests(client, monkeypatch)
        assert sorted(client.catalog()) == names
    assert len(sent) >= 3
    assert {urlsplit(url).path for _, url in sent} == {"/registry/v2/_catalog"}


def test_catalog_pages_keep_the_path_prefix_behind_a_proxy_that_strips_it():
    # Behind such a proxy the registry sees /v2/… and writes its Link without the prefix.
    pages = {"": (["a/one", "a/two"], "a/two"), "a/two": (["b/three"], "")}

    def handle(request):
        url = urlsplit(request.path)
        if url.path != "/registry/v2/_catalog":
            return json_answer({"errors": [{"code": "NAME_UNKNOWN", "message": "not here"}]}, 404)
        names, last = pages[parse_qs(url.query).get("last", [""])[0]]
        link = {"Link": f'</v2/_catalog?last={quote(last, safe="")}&n=1000>; rel="next"'} if last else {}
        return json_answer({"repositories": names}, headers=link)

    with loopback(handle) as url:
        assert RegistryClient(url + "/registry").catalog() == ["a/one", "a/two", "b/three"]


# --- tags ------------------------------------------------------------------------------------


def test_tags_lists_every_tag_of_a_repository(registry_client):
    assert sorted(registry_client.tags("shop/api")) == ["1.0.0", "1.10.0", "1.2.0", "latest"]


def test_tags_come_back_all_at_once_in_the_registrys_own_order(registry_client, registry, registry_fixtures):
    tags = registry_client.tags("big/many")
    assert len(tags) == BIG_TAG_COUNT
    assert set(tags) == set(registry_fixtures.big_created)
    assert tags == raw("GET", f"{registry.url}/v2/big/many/tags/list").json()["tags"]


def test_tags_of_a_repository_whose_tags_were_all_deleted_is_an_empty_list(registry_client, registry):
    assert raw("GET", f"{registry.url}/v2/empty/gone/tags/list").json()["tags"] is None
    assert registry_client.tags("empty/gone") == []


def test_tags_of_an_unknown_repository_raise_not_found(registry_client):
    with pytest.raises(NotFound) as raised:
        registry_client.tags("no/such-repository")
    assert raised.value.code == "NAME_UNKNOWN"
    assert raised.value.status == 404


# --- resolve ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("repository", "tag", "fixture", "status_without_accept"), FIXTURE_TAGS)
def test_resolve_gives_the_digest_that_was_pushed_and_that_a_get_returns(
    registry_client, registry_fixtures, repository, tag, fixture, status_without_accept
):
    digest = registry_client.resolve(repository, tag)
    assert digest == getattr(registry_fixtures, fixture)
    assert registry_client.manifest(repository, tag).digest == digest


@pytest.mark.parametrize(("repository", "tag", "fixture", "status_without_accept"), FIXTURE_TAGS)
def test_a_head_without_the_accept_list_misses_the_manifest_or_gets_another_digest(
    registry, registry_fixtures, repository, tag, fixture, status_without_accept
):
    # What resolve() would see if it forgot the Accept list: OCI manifests are hidden, Docker ones are rewritten
    # to schema 1 under another digest. The tests above would catch it.
    response = raw("HEAD", f"{registry.url}/v2/{repository}/manifests/{tag}")
    assert response.status_code == status_without_accept
    assert response.headers.get("Docker-Content-Digest") != getattr(registry_fixtures, fixture)


def test_resolve_of_an_unknown_tag_raises_not_found(registry_client):
    with pytest.raises(NotFound):
        registry_client.resolve("shop/api", "no-such-tag")


# --- manifest --------------------------------------------------------------------------------


def test_a_docker_image_manifest_has_config_and_layer_descriptors_with_their_sizes(
    registry_client, registry, registry_fixtures
):
    manifest = registry_client.manifest("shop/api", registry_fixtures.api_digest)
    assert manifest.media_type == DOCKER_MANIFEST and not manifest.is_index
    assert manifest.config.media_type == DOCKER_CONFIG
    assert [layer.media_type for layer in manifest.layers] == [DOCKER_LAYER, DOCKER_LAYER]
    for blob in manifest.blobs:
        stored = raw("HEAD", f"{registry.url}/v2/shop/api/blobs/{blob.digest}")
        assert int(stored.headers["Content-Length"]) == blob.size
    assert manifest.image_size == sum(blob.size for blob in manifest.blobs)
    body = raw("GET", f"{registry.url}/v2/shop/api/manifests/1.10.0", headers={"Accept": MANIFEST_ACCEPT}).content
    assert manifest.size == len(body)


def test_an_oci_image_manifest_has_oci_config_and_layers(registry_client, registry_fixtures):
    manifest = registry_client.manifest("shop/web", "v1")
    assert manifest.digest == registry_fixtures.web_digest
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.config.media_type == OCI_CONFIG
    assert [layer.media_type for layer in manifest.layers] == [OCI_LAYER, OCI_LAYER]


def test_an_oci_index_lists_its_platforms_and_marks_attestations_with_the_image_they_describe(registry_client):
    index = registry_client.manifest("tools/multi", "2.0")
    assert index.media_type == OCI_INDEX and index.is_index
    assert index.config is None and index.layers == ()
    images = [child for child in index.manifests if not child.is_attestation]
    attestations = [child for child in index.manifests if child.is_attestation]
    assert [str(child.platform) for child in images] == ["linux/amd64", "linux/arm64/v8"]
    assert [attestation.describes for attestation in attestations] == [child.digest for child in images]
    assert {str(attestation.platform) for attestation in attestations} == {"unknown/unknown"}
    assert not any(child.describes for child in images)
    for child in index.manifests:
        fetched = registry_client.manifest("tools/multi", child.digest)
        assert (fetched.media_type, fetched.size) == (OCI_MANIFEST, child.size)


def test_a_docker_manifest_list_lists_its_platforms_without_attestations(registry_client):
    manifest_list = registry_client.manifest("tools/legacy-list", "1")
    assert manifest_list.media_type == DOCKER_MANIFEST_LIST and manifest_list.is_index
    assert [str(child.platform) for child in manifest_list.manifests] == ["linux/amd64", "linux/arm/v7"]
    assert not any(child.is_attestation for child in manifest_list.manifests)
    child = manifest_list.manifests[1]
    assert registry_client.manifest("tools/legacy-list", child.digest).media_type == DOCKER_MANIFEST


def test_manifests_and_configs_fetched_by_digest_are_cached_and_not_requested_again(
    registry, registry_fixtures, monkeypatch
):
    client = RegistryClient(registry.url, SERVICE_USER, SERVICE_PASSWORD, cache=cache)
    sent = count_requests(client, monkeypatch)
    manifest = client.manifest("shop/api", registry_fixtures.api_digest)
    config = client.config("shop/api", manifest.config.digest)
    assert len(sent) == 2
    assert client.manifest("shop/api", registry_fixtures.api_digest) == manifest
    assert client.config("shop/api", manifest.config.digest) == config
    assert len(sent) == 2


def test_a_manifest_asked_for_by_tag_is_fetched_again_because_tags_move(registry, registry_fixtures, monkeypatch):
    client = RegistryClient(registry.url, SERVICE_USER, SERVICE_PASSWORD, cache=cache)
    sent = count_requests(client, monkeypatch)
    client.manifest("shop/api", "latest")
    client.manifest("shop/api", "latest")
    assert len(sent) == 2
    client.manifest("shop/api", registry_fixtures.api_digest)  # but its digest was cached on the way
    assert len(sent) == 2


def test_a_manifest_or_config_whose_bytes_do_not_match_the_digest_raises_malformed(registry, registry_fixtures):
    digest = registry_fixtures.api_digest
    genuine = raw("GET", f"{registry.url}/v2/shop/api/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT})
    tampered = json.loads(genuine.content)
    tampered["layers"][0]["size"] += 1
    config_digest = tampered["config"]["digest"]

    def handle(request):
        if "/blobs/" in request.path:
            return 200, {"Content-Type": "application/octet-stream"}, b'{"config": {"Env": ["EVIL=1"]}}'
        body = json.dumps(tampered).encode()
        return 200, {"Content-Type": DOCKER_MANIFEST, "Docker-Content-Digest": digest}, body

    with loopback(handle) as url:
        client = RegistryClient(url, cache=cache)
        for reference in (digest, "1.10.0"):
            with pytest.raises(MalformedResponse, match="does not match its digest"):
                client.manifest("shop/api", reference)
        with pytest.raises(MalformedResponse, match="does not match its digest"):
            client.config("shop/api", config_digest)


def test_an_oversized_config_blob_is_refused_without_downloading_all_of_it():
    total, chunk, sent = 4 * MAX_CONFIG_BYTES, b"x" * (1 << 20), [0]

    def endless_config():
        while sent[0] < total:
            sent[0] += len(chunk)
            yield chunk

    def handle(request):
        return 200, {"Content-Type": "application/octet-stream", "Content-Length": str(total)}, endless_config()

    with loopback(handle) as url, pytest.raises(MalformedResponse):
        RegistryClient(url).config("any/repository", "sha256:" + "a" * 64)
    assert sent[0] <= total // 2


# --- config ----------------------------------------------------------------------------------


def test_config_gives_created_date_labels_env_history_and_exposed_ports(registry_client, registry_fixtures):
    manifest = registry_client.manifest("shop/api", registry_fixtures.api_digest)
    config = registry_client.config("shop/api", manifest.config.digest)
    assert config.created == BASE_TIME + timedelta(days=10)
    assert config.labels == {"org.opencontainers.image.version": "1.10.0"}
    assert config.env == ("PATH=/usr/local/bin:/usr/bin:/bin",)
    assert config.exposed_ports == ("8080/tcp",)
    assert (config.entrypoint, config.cmd) == (("/app/api",), ("--port", "8080"))
    assert (config.working_dir, config.user, str(config.platform)) == ("/app", "1000", "linux/amd64")
    assert [(entry.created_by, entry.empty_layer) for entry in config.history] == [
        ("ADD layer0 /", False),
        ("ADD layer1 /", False),
        ('CMD ["/bin/sh"]', True),
    ]
    assert {entry.created for entry in config.history} == {config.created}


def test_a_label_containing_html_comes_back_as_the_same_plain_text(registry_client, registry_fixtures):
    manifest = registry_client.manifest("evil/xss", registry_fixtures.xss_digest)
    config = registry_client.config("evil/xss", manifest.config.digest)
    assert config.labels == {"description": XSS}
    assert f"GREETING={XSS}" in config.env
    assert config.cmd == ("sh", "-c", XSS)


# --- parsing (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/vnd.docker.distribution.manifest.v1+prettyjws", ""])
def test_a_schema1_manifest_is_unsupported_with_a_message_that_says_what_to_do(content_type):
    body = json.dumps({
        "schemaVersion": 1, "name": "old/app", "tag": "1", "architecture": "amd64",
        "fsLayers": [{"blobSum": "sha256:" + "a" * 64}], "history": [{"v1Compatibility": "{}"}],
    }).encode()  # fmt: skip
    with pytest.raises(UnsupportedManifest) as raised:
        parse_manifest(body, sha256_digest(body), content_type)
    assert "Docker schema 1" in raised.value.message
    assert "push it again" in raised.value.message


def test_parse_config_reads_null_labels_env_and_ports_as_empty():
    body = json.dumps({"config": {"Labels": None, "Env": None, "ExposedPorts": None, "Cmd": None}}).encode()
    config = parse_config(body, sha256_digest(body))
    assert (config.labels, config.env, config.exposed_ports, config.cmd) == ({}, (), (), ())


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        pytest.param(None, None, id="missing"),
        pytest.param("1970-01-01T00:00:00Z", None, id="epoch"),
        pytest.param("0001-01-01T00:00:00Z", None, id="go-zero-time"),
        pytest.param("yesterday", None, id="garbage"),
        pytest.param("2024-05-01T12:34:56.123456789Z", datetime(2024, 5, 1, 12, 34, 56, 123456, UTC), id="nanos"),
        pytest.param("2024-05-01T14:34:56+02:00", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC), id="offset"),
    ],
)
def test_parse_config_gives_a_created_date_only_when_there_is_a_real_one(created, expected):
    body = json.dumps({"architecture": "amd64"} if created is None else {"created": created}).encode()
    assert parse_config(body, sha256_digest(body)).created == expected


def test_parse_config_keeps_history_entries_that_made_no_layer():
    body = json.dumps({
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created": "2024-01-01T00:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
            {"created_by": "COPY . /app # buildkit", "comment": "buildkit.dockerfile.v0"},
            "not an entry",
        ]
    }).encode()  # fmt: skip
    history = parse_config(body, sha256_digest(body)).history
    assert [entry.empty_layer for entry in history] == [False, True, False]
    assert history[1].created_by == '/bin/sh -c #(nop)  CMD ["sh"]'
    assert (history[2].created, history[2].comment) == (None, "buildkit.dockerfile.v0")


# --- writing and deleting --------------------------------------------------------------------


def test_upload_blob_pushes_once_and_put_manifest_returns_the_digest_its_tag_resolves_to(
    registry_client, registry, monkeypatch
):
    repository = unique("upload")
    data = f"a blob for {repository}".encode()
    sent = count_requests(registry_client, monkeypatch)
    blob = registry_client.upload_blob(repository, data, OCI_LAYER)
    assert (blob.digest, blob.size, blob.media_type) == (sha256_digest(data), len(data), OCI_LAYER)
    assert [method for method, _ in sent] == ["HEAD", "POST", "PUT"]
    sent.clear()
    assert registry_client.upload_blob(repository, data, OCI_LAYER) == blob
    assert [method for method, _ in sent] == ["HEAD"]  # already there: not sent again
    assert raw("GET", f"{registry.url}/v2/{repository}/blobs/{blob.digest}").content == data

    config = registry_client.upload_blob(repository, b"{}", OCI_CONFIG)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": OCI_LAYER, "digest": blob.digest, "size": blob.size}],
    }).encode()  # fmt: skip
    digest = registry_client.put_manifest(repository, "v1", body, OCI_MANIFEST)
    assert digest == sha256_digest(body) == registry_client.resolve(repository, "v1")
    assert registry_client.manifest(repository, "v1").layers == (blob,)


def test_deleting_a_digest_removes_every_tag_that_points_to_it_and_keeps_the_others(registry_client):
    repository = unique("delete")
    image = push_image(registry_client, repository, "1.0", tiny(repository))
    assert push_image(registry_client, repository, "latest", tiny(repository)).digest == image.digest
    other = push_image(registry_client, repository, "other", tiny(repository + "-other"))
    assert sorted(registry_client.tags(repository)) == ["1.0", "latest", "other"]

    registry_client.delete_manifest(repository, image.digest)

    assert registry_client.tags(repository) == ["other"]
    with pytest.raises(NotFound):
        registry_client.resolve(repository, "latest")
    assert registry_client.resolve(repository, "other") == other.digest


def test_deleting_a_manifest_that_is_already_gone_succeeds(registry_client):
    repository = unique("delete-twice")
    image = push_image(registry_client, repository, "1", tiny(repository))
    registry_client.delete_manifest(repository, image.digest)
    registry_client.delete_manifest(repository, image.digest)
    assert registry_client.tags(repository) == []


def test_delete_manifest_refuses_a_tag_name_without_asking_the_registry(
    registry_client, registry_fixtures, monkeypatch
):
    sent = count_requests(registry_client, monkeypatch)
    with pytest.raises(ValueError, match="by sha256 digest only"):
        registry_client.delete_manifest("shop/api", "latest")
    assert sent == []
    assert registry_client.resolve("shop/api", "latest") == registry_fixtures.api_digest


def test_delete_status_is_enabled_on_the_session_registry(registry_client):
    assert registry_client.delete_status() == "enabled"


@pytest.mark.registry
def test_a_registry_with_deleting_disabled_says_so_and_refuses_deletes(tmp_path):
    with own_registry(tmp_path, delete_enabled=False) as (local, client):
        image = push_image(client, "keep/me", "1", tiny("keep"))
        assert client.delete_status() == "disabled"
        with pytest.raises(DeleteDisabled) as raised:
            client.delete_manifest("keep/me", image.digest)
        assert (raised.value.status, raised.value.message) == (405, "Deleting is disabled on this registry.")
        assert client.resolve("keep/me", "1") == image.digest


@pytest.mark.registry
def test_a_read_only_registry_says_so_and_refuses_deletes(tmp_path):
    with own_registry(tmp_path) as (local, client):
        image = push_image(client, "keep/me", "1", tiny("keep"))
        local.restart(readonly=True)
        assert client.delete_status() == "read-only"
        with pytest.raises(ReadOnly) as raised:
            client.delete_manifest("keep/me", image.digest)
        assert raised.value.status == 405
        assert "read-only" in raised.value.message
        assert client.resolve("keep/me", "1") == image.digest


# --- faults from loopback servers ------------------------------------------------------------


def test_a_registry_that_does_not_answer_in_time_raises_timeout():
    # A socket that listens but never accepts: the kernel completes the connection, nobody ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = RegistryClient(f"http://127.0.0.1:{silent.getsockname()[1]}", read_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(RegistryTimeout) as raised:
            client.catalog()
    assert time.monotonic() - started < 3
    assert raised.value.status == 504
    assert "did not answer within 0.5 seconds" in raised.value.message


def test_a_port_with_nothing_listening_raises_unreachable():
    client = RegistryClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryUnreachable) as raised:
        client.status()
    assert raised.value.status == 503
    assert raised.value.code == "UNREACHABLE"
    assert raised.value.message.startswith(f"Cannot connect to {client.url}")


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        pytest.param("text/html", b"<html><body><h1>Welcome to nginx!</h1></body></html>", "not valid JSON", id="html"),
        pytest.param("application/octet-stream", b"\x00\xff\xfe garbage", "not valid JSON", id="garbage"),
        pytest.param("application/json", b'["a/b"]', "not a JSON object", id="json-list"),
        pytest.param("application/json", b'{"repositories": "nope"}', "not a list", id="repositories-not-a-list"),
    ],
)
def test_a_catalog_answer_that_is_not_a_catalog_raises_malformed(content_type, body, message):
    answer = (200, {"Content-Type": content_type}, body)
    with loopback(lambda request: answer) as url, pytest.raises(MalformedResponse, match=message):
        RegistryClient(url).catalog()


def test_a_server_error_becomes_a_registry_error_answered_as_bad_gateway():
    answer = (500, {"Content-Type": "text/plain"}, b"internal error")
    with loopback(lambda request: answer) as url, pytest.raises(RegistryError) as raised:
        RegistryClient(url).catalog()
    assert type(raised.value) is RegistryError
    assert raised.value.status == 502
    assert raised.value.code == "HTTP_500"
    assert raised.value.message == "The registry answered 500 to GET /v2/_catalog."


# --- token auth ------------------------------------------------------------------------------

# distribution's token auth needs a separate token server (e.g. cesanta/docker_auth), which is not packaged here,
# so this loopback stand-in plays both the registry and its token service.
TOKEN = "token-for-the-dashboard"


@contextmanager
def token_registry() -> Iterator[tuple[str, dict]]:
    hits = {"registry": 0, "token": []}
    basic = "Basic " + base64.b64encode(f"{SERVICE_USER}:{SERVICE_PASSWORD}".encode()).decode()

    def handle(request):
        url = urlsplit(request.path)
        if url.path == "/token":
            hits["token"].append(parse_qs(url.query))
            if request.headers.get("Authorization") != basic:
                return json_answer({"details": "wrong password"}, 401)
            return json_answer({"access_token": TOKEN, "expires_in": 300})
        hits["registry"] += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f"http://127.0.0.1:{request.server.server_port}/token"
            challenge = f'Bearer realm="{realm}",service="test",scope="registry:catalog:*"'
            return json_answer({"errors": [{"code": "UNAUTHORIZED"}]}, 401, {"WWW-Authenticate": challenge})
        return json_answer({"repositories": ["team/app"]})

    with loopback(handle) as url:
        yield url, hits


def test_a_bearer_token_is_fetched_once_and_reused_for_the_next_catalog():
    with token_registry() as (url, hits):
        client = RegistryClient(url, SERVICE_USER, SERVICE_PASSWORD)
        assert client.catalog() == ["team/app"]
        assert client.catalog() == ["team/app"]
    assert hits["token"] == [{"service": ["test"], "scope": ["registry:catalog:*"]}]
    assert hits["registry"] == 3  # 401, retry with the token, then straight in with the cached token


def test_a_wrong_password_at_the_token_service_raises_unauthorized():
    with token_registry() as (url, hits):
        client = RegistryClient(url, SERVICE_USER, "not-the-service-password")
        with pytest.raises(RegistryUnauthorized, match="token service rejected"):
            client.catalog()
    assert len(hits["token"]) == 1


# --- concurrency -----------------------------------------------------------------------------


@contextmanager
def slow_registry(seconds: float) -> Iterator[tuple[str, dict]]:
    """A /v2/ that takes `seconds` to answer and records the most requests it held at once."""
    lock, load = threading.Lock(), {"now": 0, "max": 0}

    def handle(request):
        with lock:
            load["now"] += 1
            load["max"] = max(load["max"], load["now"])
        time.sleep(seconds)
        with lock:
            load["now"] -= 1
        return 200, {"Docker-Distribution-API-Version": "registry/2.0"}, b"{}"

    with loopback(handle) as url:
        yield url, load


def test_no_more_than_eight_requests_are_in_flight_at_once():
    with slow_registry(0.2) as (url, load):
        client = RegistryClient(url)
        statuses = client.map(lambda _: client.status(), range(30))
    assert [status.api_version for status in statuses] == ["registry/2.0"] * 30
    assert load["max"] == MAX_IN_FLIGHT == 8


def test_two_callers_mapping_at_the_same_time_still_share_eight_requests():
    with slow_registry(0.1) as (url, load):
        client = RegistryClient(url)
        callers = [threading.Thread(target=client.map, args=(lambda _: client.status(), range(16))) for _ in "ab"]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    assert load["max"] == 8


def test_a_nul_in_a_config_is_kept_as_text_any_database_can_store():
    body = json.dumps({"config": {"Labels": {"k\x00": "a\x00b"}, "Env": ["X=\x00"], "Cmd": ["\x00"]}}).encode()
    config = parse_config(body, "sha256:" + "c" * 64)
    assert config.labels == {"k\\u0000": "a\\u0000b"} and config.env == ("X=\\u0000",) and config.cmd == ("\\u0000",)


def test_the_client_and_the_image_pusher_import_without_django_settings():
    """The benchmarks and the image-pushing scripts use the client outside Django (no settings configured)."""
    import os
    import subprocess
    import sys

    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    code = "import bench.index, devtools.images, registry.client; print('imported')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "imported", result.stderr
