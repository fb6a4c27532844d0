"""A failing registry gives a page that says what is wrong and what to change, never a traceback."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from devtools.localregistry import free_port
from registry.client import reset_client

pytestmark = pytest.mark.django_db


class Garbage(BaseHTTPRequestHandler):
    """Answers every request with an HTML page, like a misconfigured reverse proxy."""

    def do_GET(self):
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_DELETE = do_GET

    def log_message(self, *args):
        pass


class Slow(Garbage):
    def do_GET(self):
        time.sleep(1.5)
        super().do_GET()

    do_DELETE = do_GET


class Slow3(BaseHTTPRequestHandler):
    """A registry taking half a second per answer, counting how many it holds at once."""

    lock, now, most = threading.Lock(), 0, 0

    def answer(self, status: int, body: bytes) -> None:
        with Slow3.lock:
            Slow3.now += 1
            Slow3.most = max(Slow3.most, Slow3.now)
        time.sleep(0.5)
        with Slow3.lock:
            Slow3.now -= 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, b'{"repositories": []}' if self.path.startswith("/v2/_catalog") else b"{}")

    def do_DELETE(self):
        self.answer(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}')

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(handler) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def point_at(settings, url, **extra):
    settings.REGISTRY_URL = url
    for name, value in extra.items():
        setattr(settings, name, value)
    reset_client()


def test_an_unreachable_registry_gives_503_with_the_setting_to_check(client_for, settings):
    point_at(settings, f"http://127.0.0.1:{free_port()}")
    response = client_for().get(reverse("browser-repositories"))
    assert response.status_code == 503
    assert "The registry cannot be reached" in response.text and "REGISTRY_URL" in response.text
    assert "Traceback" not in response.text


def test_a_slow_registry_gives_504(client_for, settings, serve):
    point_at(settings, serve(Slow), REGISTRY_READ_TIMEOUT=0.3)
    response = client_for().get(reverse("browser-repository", args=["shop/api"]))
    assert response.status_code == 504
    assert "too slow" in response.text and "REGISTRY_READ_TIMEOUT" in response.text


def test_a_registry_answering_garbage_gives_502(client_for, settings, serve):
    point_at(settings, serve(Garbage))
    response = client_for().get(reverse("browser-repositories"))
    assert response.status_code == 502
    assert "cannot read" in response.text


def test_a_rejected_service_account_names_the_settings_to_fix(client_for, settings, registry):
    point_at(settings, settings.REGISTRY_URL, REGISTRY_PASSWORD="wrong")
    response = client_for().get(reverse("browser-repositories"))
    assert response.status_code == 502
    assert "rejected the dashboard&#x27;s account" in response.text
    assert "REGISTRY_USERNAME" in response.text and "REGISTRY_PASSWORD" in response.text
    assert "wrong" not in response.text.replace("went wrong", "")


def test_the_home_page_shows_an_unreachable_registry_as_a_banner(client_for, settings):
    point_at(settings, f"http://127.0.0.1:{free_port()}")
    response = client_for().get(reverse("browser-home"))
    assert response.status_code == 503
    assert "Not reachable" in response.text and "The registry cannot be reached" in response.text
    assert 'href="/repositories/"' in response.text  # the page around it still works


def test_the_home_page_asks_the_registry_its_three_questions_at_once(client_for, settings, serve):
    point_at(settings, serve(Slow3))
    Slow3.most = 0
    response = client_for().get(reverse("browser-home"))
    assert response.status_code == 200 and "Reachable" in response.text
    assert Slow3.most == 3  # the API version, whether deleting works, and the catalog


def test_the_tag_page_survives_an_unreachable_registry(client_for, settings):
    point_at(settings, f"http://127.0.0.1:{free_port()}")
    assert client_for().get(reverse("browser-tag", args=["shop/api", "latest"])).status_code == 503


def test_a_registry_that_stopped_answering_is_said_on_every_page_and_the_tag_page_answers_from_the_index(
    client_for, settings
):
    """Seen: the tag page became a full-page 503 while the repository page silently served the index."""
    from django.core.cache import cache
    from django.utils import timezone

    from catalog import sync
    from catalog.models import Manifest, Repository, Tag

    point_at(settings, f"http://127.0.0.1:{free_port()}", REGISTRY_CACHE_SECONDS=3600)
    cache.clear()
    registry = sync.current_registry()
    repository = Repository.objects.create(registry=registry, name="shop/api", synced_at=timezone.now())
    digest = "sha256:" + "ab" * 32
    manifest = Manifest.objects.create(digest=digest, media_type="application/vnd.oci.image.manifest.v1+json",
                                       size=12_345_678, platform="linux/arm64")  # fmt: skip
    Tag.objects.create(repository=repository, name="latest", manifest=manifest)
    client = client_for()
    page = client.get(reverse("browser-repository", args=["shop/api"])).text
    assert "has not answered" not in page  # nothing was asked of it yet

    response = client.get(reverse("browser-tag", args=["shop/api", "latest"]))
    assert response.status_code == 200 and digest in response.text and "linux/arm64" in response.text
    assert "The registry cannot be reached" in response.text and "what the dashboard’s index held" in response.text
    assert "The registry has not answered for" in response.text
    for url in (reverse("browser-repository", args=["shop/api"]), reverse("browser-repositories")):
        assert "The registry has not answered for" in client.get(url).text
    assert client.get(reverse("browser-tag", args=["shop/api", "gone"])).status_code == 503  # not in the index


def test_tls_failures_name_the_tls_settings(client_for, settings, serve):
    url = serve(Garbage).replace("http://", "https://")
    point_at(settings, url)
    response = client_for().get(reverse("browser-repositories"))
    assert response.status_code == 503
    assert "REGISTRY_CA_BUNDLE" in response.text
