"""Removing a single tag on distribution 3.x, at the client seam.

Distribution 3.x (registry:3) is not packaged here (Debian has docker-registry 2.8 only), so a loopback stand-in
plays it: http.server in a thread that answers as 3.x does where the dashboard's delete path meets it.
- GET /v2/ -> 200.
- HEAD /v2/<repo>/manifests/<tag> -> 200 with Docker-Content-Digest for a known tag, 404 MANIFEST_UNKNOWN else.
- DELETE /v2/<repo>/manifests/<tag> -> 202 for a known tag (3.x deletes a tag by name, leaving its manifest
  and the other tags on it), 404 {"errors":[{"code":"MANIFEST_UNKNOWN"}]} for an unknown one (the answer the
  dashboard's probe gets); with deleting disabled, 405 UNSUPPORTED as 2.8 and 3.x both answer.
- anything else (a PUT, say) -> 405, and is recorded like every request, so a test can show it wasn't sent.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog.models import Registry
from cleanup import plan as delete_plan
from cleanup import run as delete_run
from cleanup.models import AuditEntry
from cleanup.reasons import english
from registry.client import (
    PROBE_REPOSITORY,
    PROBE_TAG,
    DeleteDisabled,
    RegistryClient,
)

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
Tags = dict[str, dict[str, str]]  # repository -> tag -> digest


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tags: Tags, *, delete_enabled: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.tags = tags
        self.delete_enabled = delete_enabled
        self.received: list[tuple[str, str]] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append((self.command, self.path))
            status, headers, body = self.respond()
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def respond(self) -> tuple[int, dict[str, str], bytes]:
        api = {"Docker-Distribution-API-Version": "registry/2.0"}
        if self.command == "GET" and self.path == "/v2/":
            return 200, {**api, "Content-Type": "application/json"}, b"{}"
        repository, marker, reference = self.path.removeprefix("/v2/").rpartition("/manifests/")
        if not marker or self.command not in ("HEAD", "DELETE"):
            return error(405, "UNSUPPORTED")
        tags = self.server.tags.get(repository, {})
        if self.command == "DELETE" and not self.server.delete_enabled:
            return error(405, "UNSUPPORTED")
        if reference not in tags:
            return error(404, "MANIFEST_UNKNOWN")
        if self.command == "HEAD":
            return 200, {**api, "Docker-Content-Digest": tags[reference]}, b""
        del tags[reference]
        return 202, api, b""

    def log_message(self, *args) -> None:
        pass


def error(status: int, code: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"errors": [{"code": code, "message": code.lower().replace("_", " ")}]}).encode()
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


@contextmanager
def distribution_3(
    tags: dict[str, dict[str, str]] | None = None, **options
) -> Iterator[tuple[StandIn, RegistryClient]]:
    server = StandIn(tags if tags is not None else {}, **options)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server, RegistryClient(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


def team_app() -> Tags:
    return {"team/app": {"old": DIGEST, "sibling": DIGEST, "other": OTHER}}


def test_the_stand_in_answers_the_api_check_like_a_registry():
    with distribution_3() as (_, client):
        assert client.status().api_version == "registry/2.0"


def test_tag_delete_mode_is_native_when_a_delete_by_tag_is_answered_manifest_unknown():
    with distribution_3() as (server, client):
        assert client.tag_delete_mode() == "native"
    assert server.received == [("DELETE", f"/v2/{PROBE_REPOSITORY}/manifests/{PROBE_TAG}")]


def test_tag_delete_mode_with_deleting_disabled_raises_delete_disabled():
    with distribution_3(delete_enabled=False) as (_, client), pytest.raises(DeleteDisabled):
        client.tag_delete_mode()


def test_remove_tag_native_sends_one_delete_by_tag_and_no_put():
    with distribution_3(team_app()) as (server, client):
        client.remove_tag("team/app", "old", "native")
    assert server.received == [("DELETE", "/v2/team/app/manifests/old")]
    assert server.tags == {"team/app": {"sibling": DIGEST, "other": OTHER}}


def test_remove_tag_native_of_an_unknown_tag_counts_as_already_gone():
    with distribution_3(team_app()) as (server, client):
        client.remove_tag("team/app", "never-was", "native")  # no exception
    assert server.received == [("DELETE", "/v2/team/app/manifests/never-was")]
    assert server.tags == team_app()


def test_the_engine_removes_a_tag_on_3_x_by_name_after_checking_where_it_points(db):
    """delete_run.delete_mode remembers 'native'; a remove-tag step asks where the tag points, then deletes it by
    name: two requests, no throwaway manifest, and the sibling on the same digest is untouched."""
    with distribution_3(team_app()) as (server, client):
        registry = Registry.objects.create(name="v3", url=client.url)
        mode = delete_run.delete_mode(client, registry)
        server.received.clear()
        step = delete_plan.Step(AuditEntry.REMOVE_TAG, "team/app", DIGEST, ["old"], why="Other tags keep it.")
        outcome = delete_run.perform(client, step, mode)
    assert mode == "native" and Registry.objects.get(pk=registry.pk).tag_delete == "native"
    assert outcome == (AuditEntry.DONE, "Other tags keep it.", None)
    assert server.received == [("HEAD", "/v2/team/app/manifests/old"), ("DELETE", "/v2/team/app/manifests/old")]
    assert server.tags == {"team/app": {"sibling": DIGEST, "other": OTHER}}


def test_the_engine_leaves_a_tag_alone_on_3_x_when_it_points_elsewhere_or_is_already_gone():
    with distribution_3(team_app()) as (server, client):
        moved = delete_plan.Step(AuditEntry.REMOVE_TAG, "team/app", OTHER, ["old"])  # chosen at another digest
        gone = delete_plan.Step(AuditEntry.REMOVE_TAG, "team/app", DIGEST, ["never-was"])
        assert delete_run.perform(client, moved, "native")[0] == AuditEntry.SKIPPED
        outcome, why, _error = delete_run.perform(client, gone, "native")
        assert (outcome, english(why)) == (AuditEntry.DONE, "Already gone from the registry.")
    assert [method for method, _ in server.received] == ["HEAD", "HEAD"]  # nothing deleted, nothing pushed
    assert server.tags == team_app()
