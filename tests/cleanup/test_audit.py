"""The audit log and its CSV export: maintainers read what was deleted, by whom, from where, with what result."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from accounts import roles
from catalog import sync
from cleanup.models import AuditEntry, DeleteJob
from tests.conftest import XSS

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 10, 12, tzinfo=UTC)
DIGEST = "sha256:" + "ab12cd34ef56" + "0" * 52


def entry(message: str, **fields) -> AuditEntry:
    """An entry told apart from the others by its message."""
    values = {
        "timestamp": START,
        "user": "alice",
        "address": "10.0.0.7",
        "action": AuditEntry.REMOVE_TAG,
        "repository": "shop/api",
        "tags": ["v1"],
        "digest": DIGEST,
        "message": message,
    }
    return AuditEntry.objects.create(**{**values, **fields})


def shown(client, **params) -> list[str]:
    """The messages of the entries the audit page lists, top to bottom."""
    response = client.get(reverse("browser-audit"), params)
    assert response.status_code == 200
    return re.findall(r'<div class="small muted">([^<]*)</div>', response.text)


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("name", ["browser-audit", "browser-audit-csv"])
def test_viewers_may_not_read_the_audit_log(client_for, name):
    entry("secret")
    response = client_for(roles.VIEWER).get(reverse(name))
    assert response.status_code == 403
    assert b"secret" not in response.content


@pytest.mark.parametrize("name", ["browser-audit", "browser-audit-csv"])
def test_anonymous_visitors_are_sent_to_log_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["browser-audit", "browser-audit-csv"])
def test_the_audit_log_is_read_only(client_for, name):
    assert client_for(roles.MAINTAINER).post(reverse(name)).status_code == 405


@pytest.mark.parametrize("role", [roles.MAINTAINER, roles.ADMIN])
def test_maintainers_and_admins_see_the_entries_newest_first(client_for, role):
    entry("older", timestamp=START - timedelta(days=1))
    entry("newest", timestamp=START + timedelta(days=1))
    entry("middle")
    assert shown(client_for(role)) == ["newest", "middle", "older"]


def test_an_entry_shows_every_column(client_for):
    job = DeleteJob.objects.create(registry=sync.current_registry(), kind=DeleteJob.TAG, requested_by="alice")
    entry("Deleted.", action=AuditEntry.DELETE_MANIFEST, tags=[f"t{n}" for n in range(12)], bytes=3 * 1024 * 1024)
    entry("Moved since.", outcome=AuditEntry.SKIPPED, tags=[], digest="")
    entry("Refused.", outcome=AuditEntry.FAILED, source=AuditEntry.REGISTRY, user="")
    entry("In a job.", tags=["j1"], job=job)
    html = client_for(roles.MAINTAINER).get(reverse("browser-audit")).text
    assert "<h1>Audit log</h1>" in html
    assert "from which address" in html
    assert "4 rows" in html
    assert '<time datetime="2025-03-10T12:00:00+00:00"' in html
    assert "2025-03-10 12:00:00</time>" in html
    assert "<td>Delete image</td>" in html and "<td>Remove tag</td>" in html
    assert '<td class="mono small secondary">10.0.0.7</td>' in html
    assert "t0, t1, t2, t3, t4, t5, t6, t7, t8, t9 <span" in html and "t10" not in html
    assert "and 2 more" in html
    assert f'<span class="digest" title="{DIGEST}">ab12cd34ef56</span>' in html
    assert '<span class="badge badge-ok">done</span>' in html
    assert '<span class="badge badge-warn">skipped</span>' in html
    assert '<span class="badge badge-danger">failed</span>' in html
    assert '<span class="badge badge-purple">registry</span>' in html
    assert '<span class="badge badge-info">dashboard</span>' in html
    assert "3.0\xa0MB" in html
    assert html.count("\xa0MB") == 1  # no size where nothing was freed
    assert f'<a href="/deletes/{job.pk}/">Job {job.pk}</a>' in html
    assert 'href="/audit.csv"' in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"user": "bob"}, ["by-bob"]),
        ({"user": "bo"}, []),
        ({"repository": "shop/api"}, ["by-alice"]),
        ({"repository": "shop/*"}, ["by-bob", "by-alice"]),
        ({"repository": "shop"}, []),
        ({"action": AuditEntry.REGISTRY_DELETE}, ["by-registry"]),
        ({"action": "drop-table"}, ["by-registry", "by-bob", "by-alice"]),
        ({"source": AuditEntry.REGISTRY}, ["by-registry"]),
        ({"source": AuditEntry.DASHBOARD}, ["by-bob", "by-alice"]),
        ({"source": AuditEntry.DASHBOARD, "user": "alice"}, ["by-alice"]),
    ],
)
def test_each_filter_narrows_the_list(client_for, params, expected):
    entry("by-alice")
    entry("by-bob", user="bob", repository="shop/web", timestamp=START + timedelta(hours=1))
    entry(
        "by-registry",
        source=AuditEntry.REGISTRY,
        action=AuditEntry.REGISTRY_DELETE,
        user="ci",
        repository="tools/x",
        timestamp=START + timedelta(hours=2),
    )
    assert shown(client_for(roles.MAINTAINER), **params) == expected


def test_dates_take_in_whole_days_of_the_current_time_zone(client_for, settings):
    settings.TIME_ZONE = "Europe/Madrid"  # UTC+1 in March
    entry("9th, last minute", timestamp=datetime(2025, 3, 9, 22, 59, tzinfo=UTC))
    entry("10th, first minute", timestamp=datetime(2025, 3, 9, 23, 0, tzinfo=UTC))
    entry("10th, last minute", timestamp=datetime(2025, 3, 10, 22, 59, tzinfo=UTC))
    entry("11th, first minute", timestamp=datetime(2025, 3, 10, 23, 0, tzinfo=UTC))
    client = client_for(roles.MAINTAINER)
    day = ["10th, last minute", "10th, first minute"]
    assert shown(client, since="2025-03-10", until="2025-03-10") == day
    assert shown(client, since="2025-03-10") == ["11th, first minute", *day]
    assert shown(client, until="2025-03-10") == [*day, "9th, last minute"]
    assert shown(client, since="0001-01-01", until="9999-12-31") == ["11th, first minute", *day, "9th, last minute"]


@pytest.mark.parametrize("value", ["2025-02-30", "yesterday", "10/03/2025"])
def test_a_bad_date_is_a_message_and_the_other_filters_still_apply(client_for, value):
    entry("by-alice")
    entry("by-bob", user="bob")
    response = client_for(roles.MAINTAINER).get(reverse("browser-audit"), {"since": value, "user": "bob"})
    assert response.status_code == 200
    assert "Since: “" + value + "” is not a date like 2024-01-31, so this filter was left out." in response.text
    assert '<div class="alert alert-error" role="alert">' in response.text
    assert re.findall(r'<div class="small muted">([^<]*)</div>', response.text) == ["by-bob"]


def test_the_filter_form_keeps_its_values_and_the_csv_link_its_filters(client_for):
    params = {"user": "alice", "repository": "shop/*", "action": AuditEntry.REMOVE_TAG, "until": "2025-03-10"}
    html = client_for(roles.MAINTAINER).get(reverse("browser-audit"), params).text
    assert 'name="repository" value="shop/*"' in html
    assert '<option value="remove-tag" selected>Remove tag</option>' in html
    assert 'href="/audit.csv?user=alice&amp;repository=shop%2F%2A&amp;action=remove-tag&amp;until=2025-03-10"' in html


def test_htmx_filtering_gets_only_the_table(client_for):
    entry("by-alice")
    client = client_for(roles.MAINTAINER)
    htmx = {"HX-Request": "true", "HX-Target": "audit"}
    response = client.get(reverse("browser-audit"), {"user": "alice"}, headers=htmx)
    assert response.text.lstrip().startswith('<section class="card" id="audit">')
    assert "<html" not in response.text
    assert "alice&#x27;s" in response.text or "by-alice" in response.text


def test_fifty_entries_a_page(client_for):
    AuditEntry.objects.bulk_create(
        AuditEntry(user="alice", action=AuditEntry.REMOVE_TAG, message=f"n{n}", timestamp=START + timedelta(minutes=n))
        for n in range(51)
    )
    client = client_for(roles.MAINTAINER)
    first = shown(client)
    assert len(first) == 50 and first[0] == "n50"
    assert shown(client, page=2) == ["n0"]
    assert "Page 1 of 2" in client.get(reverse("browser-audit")).text


def test_what_the_registry_and_users_wrote_is_escaped(client_for):
    entry(XSS, tags=[XSS], user=XSS[:150], repository=XSS, address=XSS[:100])
    html = client_for(roles.MAINTAINER).get(reverse("browser-audit")).text
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_the_csv_has_a_header_and_every_entry(client_for):
    job = DeleteJob.objects.create(registry=sync.current_registry(), kind=DeleteJob.TAGS, requested_by="alice")
    entry("Deleted.", tags=["v1", "v2"], bytes=2048, job=job, outcome=AuditEntry.DONE)
    entry("older", timestamp=START - timedelta(days=1), tags=[], digest="")
    response = client_for(roles.MAINTAINER).get(reverse("browser-audit-csv"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="audit-\d{8}-\d{6}\.csv"', response["Content-Disposition"])
    rows = csv_rows(response)
    assert rows[0] == [
        "timestamp",
        "source",
        "user",
        "address",
        "action",
        "repository",
        "tags",
        "digest",
        "outcome",
        "message",
        "bytes",
        "job",
    ]
    assert rows[1] == [
        "2025-03-10T12:00:00Z",
        "dashboard",
        "alice",
        "10.0.0.7",
        "remove-tag",
        "shop/api",
        "v1 v2",
        DIGEST,
        "done",
        "Deleted.",
        "2048",
        str(job.pk),
    ]
    assert rows[2][0] == "2025-03-09T12:00:00Z"
    assert rows[2][6:8] == ["", ""]
    assert rows[2][-1] == ""
    assert len(rows) == 3


def test_csv_cells_that_look_like_formulas_stay_text(client_for):
    entry('=HYPERLINK("http://evil")', user="@admin", tags=["-1+1"], repository="+x", address="\t10.0.0.1")
    entry("\rcarriage", timestamp=START - timedelta(hours=1))
    rows = csv_rows(client_for(roles.MAINTAINER).get(reverse("browser-audit-csv")))
    first = rows[1]
    assert first[2] == "'@admin"
    assert first[3] == "'\t10.0.0.1"
    assert first[5] == "'+x"
    assert first[6] == "'-1+1"
    assert first[9] == '\'=HYPERLINK("http://evil")'
    assert rows[2][9] == "'\rcarriage"
    assert rows[2][2] == "alice"  # ordinary cells are left alone


def test_the_csv_applies_the_filters(client_for):
    entry("by-alice")
    entry("by-bob", user="bob", timestamp=START + timedelta(days=2))
    entry("by-registry", user="bob", source=AuditEntry.REGISTRY, action=AuditEntry.REGISTRY_DELETE)
    client = client_for(roles.MAINTAINER)
    rows = csv_rows(client.get(reverse("browser-audit-csv"), {"user": "bob", "source": "dashboard"}))
    assert [row[9] for row in rows[1:]] == ["by-bob"]
    rows = csv_rows(client.get(reverse("browser-audit-csv"), {"until": "2025-03-10", "since": "not a date"}))
    assert [row[9] for row in rows[1:]] == ["by-registry", "by-alice"]


def test_a_delete_job_is_one_row_with_its_entries_folded_under_it(client_for):
    """Seen: a 34-tag delete made 77 rows (each delete again as "Delete seen by the registry")."""
    job = DeleteJob.objects.create(registry=sync.current_registry(), kind=DeleteJob.TAGS, requested_by="alice")
    for n in range(34):
        entry(f"tag {n}", tags=[f"v{n}"], job=job, outcome=AuditEntry.FAILED if n == 7 else AuditEntry.DONE)
        entry("", action=AuditEntry.REGISTRY_DELETE, source=AuditEntry.REGISTRY, user=settings.REGISTRY_USERNAME)
    entry("someone else's", action=AuditEntry.REGISTRY_DELETE, source=AuditEntry.REGISTRY, user="bob")
    entry("by hand, outside a job")
    html = client_for(roles.MAINTAINER).get(reverse("browser-audit")).text
    assert "3 rows" in html  # the job, bob's delete, the loose entry
    assert "34 deletes the registry reported for the dashboard's own account are folded" in html
    row = re.search(r'<tr class="job-row">.*?</tr>', html, re.S)[0]
    assert "Delete job: 34 entries" in row and "<summary>34 tags</summary>" in row
    assert (
        '<span class="badge badge-ok">done: 33</span>' in row
        and '<span class="badge badge-danger">failed: 1</span>' in row
    )
    assert row.count("<li>") == 34 and f'<a href="/deletes/{job.pk}/">Job {job.pk}</a>' in row
    assert "someone else&#x27;s" in html and "by hand, outside a job" in html
    csv = csv_rows(client_for(roles.MAINTAINER).get(reverse("browser-audit-csv")))
    assert len(csv) == 1 + 34 + 34 + 2  # the CSV keeps every entry
