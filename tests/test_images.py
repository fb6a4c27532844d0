"""The pure rules behind the tag table: ordering, filtering, shared digests, sizes."""

from datetime import UTC, datetime

from browser.images import TagRow, distinct_size, filter_rows, mark_relations, natural_key, sort_rows
from browser.registry import Descriptor, Manifest

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_natural_order_compares_numbers_as_numbers():
    tags = ["v1.10.0", "v1.2.0", "latest", "v1.9.1", "v10", "v2"]
    assert sorted(tags, key=natural_key) == ["latest", "v1.2.0", "v1.9.1", "v1.10.0", "v2", "v10"]


def test_rows_without_a_created_date_sort_last_both_ways():
    rows = [
        TagRow("old", created=datetime(2020, 1, 1, tzinfo=UTC)),
        TagRow("unknown"),
        TagRow("new", created=datetime(2024, 1, 1, tzinfo=UTC)),
    ]
    assert [row.tag for row in sort_rows(rows, "created", descending=True)] == ["new", "old", "unknown"]
    assert [row.tag for row in sort_rows(rows, "created", descending=False)] == ["old", "new", "unknown"]


def test_equal_sizes_fall_back_to_the_tag_name():
    rows = [TagRow("b", size=5), TagRow("a", size=5), TagRow("c", size=1)]
    assert [row.tag for row in sort_rows(rows, "size", descending=False)] == ["c", "a", "b"]


def test_filter_matches_tag_text_and_digest_prefixes():
    rows = [TagRow("release-1", digest=DIGEST_A), TagRow("nightly", digest=DIGEST_B)]
    assert [row.tag for row in filter_rows(rows, "RELEASE")] == ["release-1"]
    assert [row.tag for row in filter_rows(rows, "bbbb")] == ["nightly"]
    assert [row.tag for row in filter_rows(rows, "sha256:aaaa")] == ["release-1"]
    assert filter_rows(rows, "bb") == []  # too short to be read as a digest prefix
    assert filter_rows(rows, "  ") == rows


def test_tags_on_one_digest_know_each_other_and_signature_tags_become_badges():
    rows = [TagRow("1.0", digest=DIGEST_A), TagRow("latest", digest=DIGEST_A), TagRow("2.0", digest=DIGEST_B)]
    mark_relations(rows, ["sha256-" + "a" * 64 + ".sig", "sha256-" + "a" * 64 + ".att"])
    assert rows[0].shared_with == ["latest"] and rows[1].shared_with == ["1.0"] and rows[2].shared_with == []
    assert rows[0].signatures == ["att", "sig"] and rows[2].signatures == []


def test_an_index_size_counts_a_blob_shared_by_platforms_once():
    shared, config = Descriptor("layer", DIGEST_A, 1000), Descriptor("config", DIGEST_B, 10)
    amd64 = Manifest("sha256:1", "image", 100, config=config, layers=(shared, Descriptor("layer", "sha256:2", 50)))
    arm64 = Manifest("sha256:3", "image", 100, config=config, layers=(shared, Descriptor("layer", "sha256:4", 70)))
    assert amd64.image_size == 1060
    assert distinct_size([amd64, arm64]) == 1000 + 10 + 50 + 70
