"""/metrics on the run command's deployment (what `make run` starts): two gunicorn workers, a task worker, a
notifications listener and a notifications worker, each a process of its own. Counts made in the listener and the
workers show up on the web server's /metrics, the same whichever web worker answers."""

import socket
import time
from datetime import UTC, datetime

import pytest
import requests

from devtools.images import ImageSpec, push_image
from tests.demo import indexed_tags, start_demo, wait_for_line, wait_until
from tests.metrics.helpers import TOKEN, parse, value

pytestmark = [pytest.mark.registry, pytest.mark.slow]  # the command starts a registry of its own


def scrape(base: str) -> dict:
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_counts_from_every_process_add_up_on_the_web_server(tmp_path):
    stale = tmp_path / "metrics" / "counter_elsewhere-1.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left from an earlier start")
    demo = start_demo(tmp_path, METRICS_TOKEN=TOKEN, WEB_CONCURRENCY="2")
    try:
        wait_for_line(demo.process, r"Dashboard: http://")
        assert not stale.exists()  # emptied at the start

        database = tmp_path / "db.sqlite3"
        wait_until(lambda: "demo/api:2.0" in indexed_tags(database), seconds=60)  # the task worker's reconcile
        push_image(
            demo.service_client(), "metrics/probe", "v1", ImageSpec(layers=[{"a": "b"}], created=datetime.now(UTC))
        )
        wait_until(lambda: "metrics/probe:v1" in indexed_tags(database), seconds=60)  # listener, then worker

        def counted() -> bool:
            samples = scrape(demo.base)
            return (value(samples, "registry_ui_notifications_applied_total", action="push") or 0) >= 1

        wait_until(counted, seconds=30)
        # Spread over both web workers: each adds up every process's files, so no counter goes down from one
        # scrape to the next (activity goes on: the registry notifies the dashboard's own pulls too).
        scrapes = [scrape(demo.base) for _ in range(8)]
        for earlier, later in zip(scrapes, scrapes[1:], strict=False):
            for key, number in earlier.items():
                if key[0].endswith(("_total", "_count", "_bucket")):
                    assert later.get(key, 0) >= number, key

        samples = scrapes[-1]
        # Received by the notifications listener, a gunicorn of its own: never by the web server answering here.
        assert value(samples, "registry_ui_notifications_received_total", action="push") >= 1
        # The task worker's reconcile read the tags lists; the notifications worker asked about the pushed tag.
        assert value(samples, "registry_ui_registry_requests_total", method="GET", operation="tags", status="200") >= 3
        assert value(samples, "registry_ui_registry_requests_total", method="HEAD", operation="manifest", status="200")
        assert value(samples, "registry_ui_registry_request_duration_seconds_count", operation="tags") >= 3

        client = demo.service_client()
        tags = sum(len(client.tags(name)) for name in client.catalog())
        assert value(samples, "registry_ui_tags") == tags

        files = sorted(path.name for path in (tmp_path / "metrics").glob("*.db"))
        host = socket.gethostname().replace("_", "-")
        assert all(name.split("_", 1)[1].startswith(f"{host}-") for name in files), files
        assert len({name.rsplit("-", 1)[1] for name in files}) >= 3  # several processes wrote their own files
    finally:
        demo.stop()
        time.sleep(0.1)
