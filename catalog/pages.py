"""How every page answers: the whole page, or for an htmx request the partial of it that the request targets."""

from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page(request, template: str, context: dict, partials: dict[str, str] | None = None, status: int = 200):
    """The whole page, or, for an htmx request whose target (an element id) `partials` names, only that
    partial of the template (`{% partialdef %}`). A history restore and any other target get the whole page
    (the "being indexed" poll targets #main and wants it all)."""
    htmx = request.htmx
    target = htmx.target if htmx and not htmx.history_restore_request else None
    partial = (partials or {}).get(target or "")
    response = render(request, f"{template}#{partial}" if partial else template, context, status=status)
    # A cache must not answer a full-page request with a fragment, nor one fragment for another.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def without_refresh(request) -> str:
    """The same page without ?refresh, so reloading or sorting afterwards reads the fresh index."""
    query = request.GET.copy()
    query.pop("refresh", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path
