"""deploy/'s Prometheus alert rules and Grafana dashboard: they load, and every metric they name is in a scrape."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from catalog import sync
from catalog.models import Manifest, RegistryEvent, Repository, SyncRun, Tag
from cleanup.models import Job
from garbage_collection.models import GcRun
from registry import counters
from registry.client import Exchange
from tests.metrics.helpers import TOKEN, scrape

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
RULES = DEPLOY / "prometheus-alerts.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
METRIC = re.compile(r"\bregistry_ui_[a-z_]+\b")


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def rule_expressions() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@pytest.fixture
def everything(settings, tmp_path):
    """An index with a row of each kind /metrics reads, a disk to measure, and every counter counted once: a scrape
    then holds every metric there is."""
    settings.METRICS_TOKEN = TOKEN
    settings.GC_BRIDGE, settings.REGISTRY_BINARY, settings.REGISTRY_STORAGE_PATH = "local", "", str(tmp_path)
    registry, now = sync.current_registry(), timezone.now()
    manifest = Manifest.objects.create(digest="sha256:" + "1" * 64, media_type="x", size=1)
    repository = Repository.objects.create(registry=registry, name="team/app")
    Tag.objects.create(repository=repository, name="v1", manifest=manifest)
    RegistryEvent.objects.create(event_id="e1", registry=registry, action="push", repository="team/app", tag="v1")
    SyncRun.objects.create(registry=registry, kind=SyncRun.LISTS, status=SyncRun.DONE, finished_at=now)
    GcRun.objects.create(
        registry=registry,
        requested_by="carol",
        dry_run=False,
        status=Job.DONE,
        started_at=now - timedelta(seconds=3),
        finished_at=now,
        used_before=10,
        used_after=5,
    )
    counters.count_request(Exchange("GET", "tags", 200, 0.01, True))
    counters.count_received("push")
    counters.count_duplicate()
    counters.count_applied("push")


@pytest.mark.django_db
def test_every_metric_the_rules_and_the_dashboard_use_is_in_a_scrape(client, everything):
    exported = {name for name, _ in scrape(client)}
    used = {name for expression in rule_expressions() + dashboard_expressions() for name in METRIC.findall(expression)}
    assert len(used) > 20
    assert used - exported == set()


def test_the_alert_rules_load_and_cover_what_the_owners_watch():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    expressions = {rule["alert"]: rule["expr"] for rule in rules}
    assert "registry_ui_disk_warning_percent" in expressions["RegistryDiskAboveWarningLevel"]  # the product's level
    assert "registry_ui_reconcile_failures" in expressions["RegistryReconcileFailing"]
    assert "registry_ui_reconcile_last_success_age_seconds" in expressions["RegistryReconcileNotSucceeding"]
    assert "3600" in expressions["RegistryNotificationsSilent"]
    assert "registry_ui_gc_last_run_success" in expressions["RegistryGarbageCollectionFailed"]


def test_the_dashboard_is_importable_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}" and target["expr"]


def test_the_image_and_compose_keep_every_process_s_counters_in_one_folder_under_data_dir():
    root = DEPLOY.parent
    environment = dict(re.findall(r"(\w+)=(\S+)", re.search(r"^ENV (.+)$", (root / "Dockerfile").read_text(), re.M)[1]))
    assert environment["PROMETHEUS_MULTIPROC_DIR"].startswith(environment["DATA_DIR"] + "/")
    for file in ("compose.yaml", "compose.scale.yaml"):
        compose = yaml.safe_load((root / file).read_text())
        services = [  # the image's services but the first start's, which serves nothing
            name for name, service in compose["services"].items() if service.get("build") and service.get("user") != "0"
        ]
        assert len(services) >= 5  # the web server, the notifications listener, two workers, the scheduler
        for name in services:
            assert f"metrics:{environment['PROMETHEUS_MULTIPROC_DIR']}" in compose["services"][name]["volumes"], name
        assert compose["volumes"]["metrics"]["driver_opts"]["type"] == "tmpfs"  # empty whenever the stack starts
