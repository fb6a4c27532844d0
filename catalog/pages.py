"""How every page answers: the whole page, or for an htmx request the partial of it that the request targets; and,
for a reload that would show the same thing again, 304 Not Modified without rendering anything.

A page's ETag is made of what decides its content: the index's change marker (Registry.index_changed_at, set by
every write that changes what a page shows), the user and role, language and color theme, URL and query, the htmx
target, the CSRF cookie (forms carry its token), what the user's session holds (the tags selected for deletion), the
code's templates, the minute (pages say "3 minutes ago"), and what the view adds (a Refresh in progress). A page
with a message waiting is always rendered."""

import hashlib
import time
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseNotModified
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import parse_etags

from accounts import roles, theme
from registry import reachability


def code_version() -> str:
    """The templates, translations and collected static files, by name and modification time: a deploy that
    changes one changes every ETag. The same in every process on a machine."""
    roots = [Path(settings.BASE_DIR) / "templates", Path(settings.BASE_DIR) / "locale"]
    files = [path for root in roots if root.is_dir() for path in sorted(root.rglob("*")) if path.is_file()]
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    stamps = [f"{path}:{path.stat().st_mtime_ns}" for path in [*files, manifest] if path.exists()]
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:16]


CODE_VERSION = code_version()


def page_etag(request, registry, *parts) -> str:
    """The page's ETag, or "" when it must be rendered whatever the browser has (a message is waiting)."""
    if len(messages.get_messages(request)):  # counting does not mark them read
        return ""
    material = [
        CODE_VERSION,
        registry.index_changed_at,
        registry.delete_status,
        request.user.pk,
        roles.role_of(request.user),
        request.LANGUAGE_CODE,
        theme.theme_of(request),
        request.get_full_path(),
        request.headers.get("HX-Request"),
        request.headers.get("HX-Target"),
        request.headers.get("HX-History-Restore-Request"),
        csrf_secret(request),
        sorted(request.session.items()),  # e.g. the tags selected for deletion
        int(time.time() // 60),
        reachability.down_since(),  # the banner
        *parts,
    ]
    return f'"{hashlib.sha256(repr(material).encode()).hexdigest()[:32]}"'


def csrf_secret(request) -> str:
    """The CSRF secret the page's forms are made from: the cookie's, or the one this answer sets (a first visit)."""
    get_token(request)
    return request.META.get("CSRF_COOKIE", "")


def not_modified(request, etag: str) -> HttpResponseNotModified | None:
    """304 when the browser's copy (If-None-Match) has this ETag."""
    if not etag or etag not in parse_etags(request.headers.get("If-None-Match", "")):
        return None
    response = HttpResponseNotModified()
    set_validators(response, etag)
    return response


def set_validators(response, etag: str) -> None:
    response["ETag"] = etag
    # The browser keeps the page and asks each time (no-cache); no shared cache keeps a signed-in user's page.
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ["HX-Request", "HX-Target", "Cookie"])


def render_page(
    request, template: str, context: dict, partials: dict[str, str] | None = None, status: int = 200, etag: str = ""
):
    """The whole page, or, for an htmx request whose target (an element id) `partials` names, only that
    partial of the template (`{% partialdef %}`). A history restore and any other target get the whole page
    (the "being indexed" poll targets #main and wants it all). With `etag` (page_etag), a later request that
    has it gets a 304 from not_modified() before the view does any work."""
    htmx = request.htmx
    target = htmx.target if htmx and not htmx.history_restore_request else None
    partial = (partials or {}).get(target or "")
    response = render(request, f"{template}#{partial}" if partial else template, context, status=status)
    # A cache must not answer a full-page request with a fragment, nor one fragment for another.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    if etag and status == 200:
        set_validators(response, etag)
    return response


def without_refresh(request) -> str:
    """The same page without ?refresh, so reloading or sorting afterwards reads the fresh index."""
    query = request.GET.copy()
    query.pop("refresh", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path
