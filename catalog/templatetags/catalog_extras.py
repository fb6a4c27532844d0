import re

from django import template

register = template.Library()

# Control characters (tab and newline excepted), bidirectional overrides and isolates, zero-width marks: in text from
# the registry they could hide or reorder what a page shows (U+202E turns "gpj.exe" into "exe.jpg").
INVISIBLE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


@register.filter
def visible(text) -> str:
    """Text from the registry with every invisible or reordering character shown as \\uXXXX (then escaped as usual)."""
    return INVISIBLE_RE.sub(lambda match: f"\\u{ord(match.group()):04x}", str(text))


@register.filter
def short_digest(digest: str) -> str:
    """sha256:0123456789abcdef… -> 0123456789ab, as docker shows image IDs."""
    return digest.partition(":")[2][:12] if ":" in digest else digest[:12]


@register.filter
def percent(share: float) -> float:
    """A 0..1 share as a percentage number, to be formatted with floatformat (localized)."""
    return share * 100
