"""Patterns people type run in linear time: `(a+)+$`, which takes Python's backtracking engine seconds at 27
characters and twice as long with each one more, is answered at once by the delete filter and by retention."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connections

from catalog.models import Manifest, Registry, Tag
from cleanup import retention
from cleanup.models import RetentionPolicy
from cleanup.patterns import PatternError, compile_pattern
from cleanup.retention import TagInfo
from cleanup.selection import TagFilterForm

EVIL = "(a+)+$"
VICTIMS = ["a" * length + "-" for length in range(30, 41)]


def within(seconds: float, work) -> bool:
    """Whether `work` finishes within `seconds` (a runaway match is left to its daemon thread)."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
            done.set()
        finally:
            connections.close_all()  # this thread's own database connection

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


@pytest.mark.django_db(transaction=True)  # the match runs in a thread of its own, with its own connection
def test_the_delete_filter_answers_a_catastrophic_pattern_at_once():
    registry = Registry.objects.create(url="http://registry.invalid", name="r")
    repository = registry.repositories.create(name="team/app")
    manifest = Manifest.objects.create(digest="sha256:" + "1" * 64, media_type="m", size=1)
    Tag.objects.bulk_create(Tag(repository=repository, name=name, manifest=manifest) for name in [*VICTIMS, "aaa"])
    form = TagFilterForm({"pattern": EVIL, "by": "pushed"})
    assert form.is_valid(), form.errors
    found = []
    assert within(5, lambda: found.extend(form.selected(repository)))
    assert found == ["aaa"]


def test_retention_answers_a_catastrophic_keep_rule_at_once():
    policy = RetentionPolicy(repositories="*", keep_regex=EVIL)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tags = [TagInfo(name, f"sha256:{n:064x}", now) for n, name in enumerate([*VICTIMS, "aaa"])]
    going = []
    assert within(5, lambda: going.extend(retention.to_delete(tags, [policy], now)))
    assert [tag.name for tag in going] == VICTIMS


@pytest.mark.parametrize("pattern", ["^(?!latest)", r"(a)\1", "(?<=v)1"])
def test_look_around_and_back_references_are_refused_with_a_reason(pattern):
    with pytest.raises(PatternError, match="not available: patterns run on RE2"):
        compile_pattern(pattern)
    form = TagFilterForm({"pattern": pattern, "by": "pushed"})
    assert not form.is_valid()
    assert "Not a valid regular expression" in form.errors["pattern"][0]
