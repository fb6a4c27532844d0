"""A real HTTP server of the tests' own, on 127.0.0.1, that records every request and answers as told."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks import events
from webhooks.models import Endpoint

SECRET = "a-secret-of-at-least-16-characters"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    endless: bool = False  # a body that never ends, sent until the client hangs up


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """The server: `answers` are used in order (then 200 "ok"); `received` holds every request."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.received: list[Received] = []
        self.bytes_sent = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.path, dict(self.headers), body))
                answer = receiver.answers.pop(0) if receiver.answers else Answer()
                time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                length = 1 << 40 if answer.endless else len(answer.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(answer.body)
                        receiver.bytes_sent += len(answer.body)
                        if not answer.endless:
                            break
                except OSError:  # the client hung up
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    """A server on loopback, with private targets allowed (this test's own server is the only one reached)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def endpoint_for(db):
    def make(url: str, event_types=None, **fields) -> Endpoint:
        chosen = list(event_types or events.EVENT_TYPES)
        return Endpoint.objects.create(name="Team hook", url=url, secret=SECRET, events=chosen, **fields)

    return make
