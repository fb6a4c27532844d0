from django import template

register = template.Library()


@register.filter
def short_digest(digest: str) -> str:
    """sha256:0123456789abcdef… -> 0123456789ab, as docker shows image IDs."""
    return digest.partition(":")[2][:12] if ":" in digest else digest[:12]


@register.filter
def percent(share: float) -> float:
    """A 0..1 share as a percentage number, to be formatted with floatformat (localized)."""
    return share * 100
