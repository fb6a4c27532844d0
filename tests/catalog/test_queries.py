"""The pure rules behind the tag table and search: ordering, digest prefixes, shared digests, signatures, sizes."""

import re

from hypothesis import given
from hypothesis import strategies as st

from catalog.queries import digest_prefix, natural_key, siblings, signature_kinds
from catalog.storage import distinct_size
from registry.client import Descriptor, Manifest

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_natural_order_compares_numbers_as_numbers():
    tags = ["v1.10.0", "v1.2.0", "latest", "v1.9.1", "v10", "v2"]
    assert sorted(tags, key=natural_key) == ["latest", "v1.2.0", "v1.9.1", "v1.10.0", "v2", "v10"]


def readable_natural_key(text: str) -> list:
    """The natural order spelled out: parts compared in turn, a number before text, numbers by value."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text) if part]


# Tag names (and repository names): letters, digits, "_", ".", "-", "/", with long runs of digits and zeros.
NAMES = st.text(alphabet=st.sampled_from("aAbZz_.-/0019"), max_size=12) | st.from_regex(
    r"[a-z]{0,3}[0-9]{1,30}", fullmatch=True
)


@given(st.lists(NAMES, max_size=30))
def test_the_stored_natural_key_sorts_as_the_natural_order(names):
    """The key is bytes so the database sorts by it: its byte order must be the natural order."""
    by_key = sorted(names, key=lambda name: (natural_key(name), name))
    assert [readable_natural_key(name) for name in by_key] == sorted(readable_natural_key(name) for name in names)


def test_a_digest_prefix_needs_four_hex_digits_with_or_without_sha256():
    assert digest_prefix("ABCD") == "sha256:abcd"
    assert digest_prefix(" sha256:0123ab ") == "sha256:0123ab"
    assert digest_prefix("abc") is None  # too short to be read as a digest prefix
    assert digest_prefix("sha256:ab") is None
    assert digest_prefix("release") is None
    assert digest_prefix("a" * 65) is None


def test_tags_on_one_digest_know_each_other():
    shared = siblings([("1.0", DIGEST_A), ("latest", DIGEST_A), ("1.10", DIGEST_A), ("2.0", DIGEST_B)])
    assert shared == {"1.0": ["1.10", "latest"], "latest": ["1.0", "1.10"], "1.10": ["1.0", "latest"], "2.0": []}


def test_signature_tags_become_badge_kinds_of_the_image_they_sign():
    names = ["sha256-" + "a" * 64 + ".sig", "sha256-" + "a" * 64 + ".att", "latest", "sha256-short.sig"]
    assert signature_kinds(names) == {DIGEST_A: ["att", "sig"]}


def test_an_index_size_counts_a_blob_shared_by_platforms_once():
    shared, config = Descriptor("layer", DIGEST_A, 1000), Descriptor("config", DIGEST_B, 10)
    amd64 = Manifest("sha256:1", "image", 100, config=config, layers=(shared, Descriptor("layer", "sha256:2", 50)))
    arm64 = Manifest("sha256:3", "image", 100, config=config, layers=(shared, Descriptor("layer", "sha256:4", 70)))
    assert amd64.image_size == 1060
    assert distinct_size([amd64, arm64]) == 1000 + 10 + 50 + 70
