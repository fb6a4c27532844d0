"""The JSON API, version 1: reading the index as the pages do, for scripts, CI jobs and terminals; the acting
endpoints (deletes, retention, garbage collection, the index's refresh) are routers of their own, mounted below.

Everything here reads the index through the same query functions as the pages; registry calls happen only where a
page's visit would make them (catalog/freshness.py). Errors are RFC 9457 problems (api/problems.py). Repository
names hold slashes, so a repository's sub-resources follow "/-/", as on the pages (no name component can be "-").
"""

import logging
from typing import Literal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError

from accounts import roles
from api import answers, cursors, schemas
from api.cursors import CursorError
from api.problems import problem, validation_detail
from api.security import DashboardSession, PerTokenRateLimit, TokenAuth, require_role
from api.views import deletes, gc, index, retention
from catalog import freshness, queries, storage, sync
from cleanup import audit
from cleanup.models import AuditEntry
from cleanup.patterns import PatternError, compile_pattern
from registry.client import NotFound, RegistryError
from webhooks import api as webhooks_api

logger = logging.getLogger(__name__)
PROBLEMS = schemas.READING_PROBLEMS
MAX_LIMIT = 1000
# The tags list's other answer, merged into its generated 200 (ninja keys responses by int status).
TEXT_TAGS = {200: {"content": {"text/plain": {"schema": {"type": "string"}, "example": "1.10.0\n1.2.0\n1.0.0\n"}}}}

api = NinjaAPI(
    title="Registry UI API",
    version="1",
    description=(
        "Read the dashboard's index of the registry, and act on it as the pages do, with the same roles: delete "
        "tags (a plan first, then its confirmation), retention policies, garbage collection, a refresh of the index. "
        "Send a personal token as `Authorization: Bearer TOKEN` (make one on the API tokens page, or with "
        "`manage.py create_api_token USERNAME`); the dashboard's own pages may call it with their session (unsafe "
        "methods with the CSRF token). A token acts with its user's role at the time of each request. Errors are "
        "RFC 9457 problem details. Lists take `limit` and return `next_cursor` (also as a `Link: rel=next` header)."
    ),
    urls_namespace="api-v1",
    docs_url=None,  # the dashboard serves the documentation page itself (api/views/docs.py), with its own CSP
    auth=[TokenAuth(), DashboardSession()],
    throttle=PerTokenRateLimit(),
)
api.add_router("/webhooks", webhooks_api.router)


def next_link(request, cursor: str | None, response: HttpResponse) -> None:
    if cursor:
        query = request.GET.copy()
        query["cursor"] = cursor
        response["Link"] = f'<{request.path}?{query.urlencode()}>; rel="next"'


@api.get("/repositories", response={200: schemas.RepositoryPage, **PROBLEMS}, tags=["repositories"])
def repository_list(
    request,
    response: HttpResponse,
    q: str = Query("", description="Part of the name.", max_length=200),
    namespace: str = Query("", description='Only names under "NAMESPACE/".', max_length=200),
    sort: Literal["name", "size", "tags", "pushed", "created"] = "name",
    dir: Literal["asc", "desc"] | None = Query(None, description="Default: asc for name, desc for the others."),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(None, description="From a previous answer: the next page of the same query."),
):
    """Repositories of the index with their tag counts and sizes, as on the Repositories page."""
    position = cursors.decode(cursor, "repositories") if cursor else None
    query = position.query if position else {"kind": "repositories", "q": q, "ns": namespace, "s": sort, "d": dir}
    registry = sync.current_registry()
    figures, current = freshness.storage_figures(registry)
    rows = storage.with_sizes(queries.repository_rows(registry, query["q"], query["ns"]), figures)
    descending = (query["d"] or ("asc" if query["s"] == "name" else "desc")) == "desc"
    ordered = queries.sort_repositories(rows, query["s"], descending)
    shown, start, more = cursors.page(ordered, limit, position, key=lambda row: row.name)
    following = cursors.Cursor(query, start + len(shown), shown[-1].name).encode() if more else None
    next_link(request, following, response)
    return {"items": [answers.repository(row) for row in shown], "next_cursor": following, "sizes_current": current}


@api.get(
    "/repositories/{path:name}/-/tags",
    response={200: schemas.TagPage, **PROBLEMS},
    tags=["repositories"],
    openapi_extra={"responses": TEXT_TAGS},
)
def tag_list(
    request,
    response: HttpResponse,
    name: str,
    sort: Literal["created", "pushed", "name", "size"] = "created",
    dir: Literal["asc", "desc"] | None = Query(None, description="Default: asc for name, desc (newest) otherwise."),
    q: str = Query("", description="Part of the name, or a digest prefix (as on the page).", max_length=200),
    pattern: str = Query("", description="A regular expression (RE2) the name must match.", max_length=200),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
    format: Literal["json", "txt"] | None = Query(
        None, description="txt: one tag name a line (or Accept: text/plain)."
    ),
):
    """A repository's tags, newest first by default. With `format=txt` or `Accept: text/plain`, one name a line."""
    repository = freshness.revalidated(name)
    position = cursors.decode(cursor, "tags") if cursor else None
    query = position.query if position else {"kind": "tags", "q": q, "p": pattern, "s": sort, "d": dir}
    tags = queries.filter_tags(queries.plain_tags(repository), query["q"])
    if query["p"]:
        matching = compile_pattern(query["p"])
        tags = tags.filter(pk__in=[pk for pk, tag in tags.values_list("pk", "name") if matching.search(tag)])
    descending = (query["d"] or ("asc" if query["s"] == "name" else "desc")) == "desc"
    ids, start, more = cursors.page(queries.sort_tags(tags, query["s"], descending), limit, position, key=int)
    following = cursors.Cursor(query, start + len(ids), ids[-1]).encode() if more else None
    rows = queries.tag_rows(repository, ids)
    if format == "txt" or (format is None and wants_text(request)):
        text = HttpResponse("".join(f"{row.name}\n" for row in rows), content_type="text/plain; charset=utf-8")
        next_link(request, following, text)
        return text
    next_link(request, following, response)
    items = [answers.tag(row, row.shared_with, row.signatures) for row in rows]
    return {"items": items, "total": tags.count(), "next_cursor": following, "synced_at": repository.synced_at}


def wants_text(request) -> bool:
    """Accept prefers text/plain to JSON (curl's */* gets JSON)."""
    return request.get_preferred_type(["application/json", "text/plain"]) == "text/plain"


@api.get("/repositories/{path:name}/-/tags/{tag}", response={200: schemas.TagDetail, **PROBLEMS}, tags=["repositories"])
def tag_detail(request, name: str, tag: str):
    """One tag from the index: digest, media type, size, created, labels, and a multi-platform image's platform images
    (with their digests) and attestations."""
    repository = freshness.revalidated(name)
    row = repository.tags.select_related("manifest", "repository").filter(name=tag).first()
    if row is None:
        raise Http404(f"The index has no tag {tag} in {name}.")
    also_tagged, signatures = queries.index_relations(repository, tag, row.manifest.digest)
    return answers.tag_detail(row, also_tagged, signatures)


@api.get("/repositories/{path:name}", response={200: schemas.RepositoryDetail, **PROBLEMS}, tags=["repositories"])
def repository_detail(request, name: str):
    """One repository: its counts, and its storage (referenced, unique and shared bytes, largest layers)."""
    repository = freshness.revalidated(name)
    row = next((row for row in queries.repository_rows(repository.registry, name) if row.name == name), None)
    if row is None:
        raise Http404(f"The index has no repository named {name}.")
    return answers.repository_detail(row, repository, storage.repository_storage(repository.registry, name))


@api.get("/search", response={200: schemas.SearchResults, **PROBLEMS}, tags=["search"])
def search(request, q: str = Query(..., min_length=1, max_length=200)):
    """Repositories and tags by name, images by digest prefix or label value: the Search page's results."""
    if not q.strip():
        raise HttpError(422, "query.q: give a name, a digest prefix or a label value to search for.")
    return answers.search(queries.search(sync.current_registry(), q))


@api.get("/storage", response={200: schemas.Storage, **PROBLEMS}, tags=["storage"])
def storage_overview(request, largest: int = Query(10, ge=1, le=MAX_LIMIT, description="Repositories listed.")):
    """The registry's distinct stored bytes and the largest repositories, as on the Storage page."""
    figures = storage.registry_storage(sync.current_registry())
    return answers.registry_storage(figures, storage.volume(), largest)


@api.get("/audit", response={200: schemas.AuditPage, **PROBLEMS}, tags=["audit"])
def audit_log(
    request,
    response: HttpResponse,
    user: str = "",
    repository: str = Query("", description='An exact name, or a prefix ending with "*".'),
    action: str = Query("", description=", ".join(AuditEntry.ACTIONS)),
    source: Literal["", "dashboard", "registry"] = "",
    since: str = Query("", description="A day, YYYY-MM-DD (in TIME_ZONE)."),
    until: str = Query("", description="A day, YYYY-MM-DD, included."),
    include_echoes: bool = Query(False, description="Also the registry's reports of the dashboard's own deletes."),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
):
    """The audit log, newest first, with the page's filters (maintainers and admins)."""
    require_role(request, roles.MAINTAINER)
    position = cursors.decode(cursor, "audit") if cursor else None
    filters = {"user": user, "repository": repository, "action": action, "source": source}
    query = position.query if position else {"kind": "audit", **filters, "since": since, "until": until}
    query.setdefault("echoes", include_echoes)
    entries, _filters, ignored = audit.filter_entries(query)
    if not query["echoes"]:
        entries, _echoes = audit.without_echoes(entries)
    ids, start, more = cursors.page(entries.values_list("pk", flat=True), limit, position, key=int)
    following = cursors.Cursor(query, start + len(ids), ids[-1]).encode() if more else None
    next_link(request, following, response)
    found = entries.in_bulk(ids)
    items = [answers.audit_entry(found[pk]) for pk in ids if pk in found]
    return {"items": items, "next_cursor": following, "ignored_filters": [str(reason) for reason in ignored]}


# --- Acting, and the index's state: a router per area, each in its own module -----------------


api.add_router("", index.router)
api.add_router("", deletes.router)
api.add_router("", retention.router)
api.add_router("", gc.router)


# --- Every error as a problem (RFC 9457) ------------------------------------------------------


@api.exception_handler(AuthenticationError)
def unauthenticated(request, exc):
    return problem(
        401,
        "Send a valid personal API token as `Authorization: Bearer TOKEN` (it may be unknown, revoked or expired, or "
        "its user may no longer sign in), or call from a signed-in session.",
    )


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    if exc.status_code == 429:
        return problem(429, f"More than {settings.API_RATE_LIMIT} requests a minute; wait as Retry-After says.")
    if exc.status_code == 403 and str(exc) == "CSRF check Failed":
        return problem(403, "A session's unsafe request needs its CSRF token (X-CSRFToken); or use an API token.")
    return problem(exc.status_code, str(exc))


@api.exception_handler(ValidationError)
def invalid(request, exc: ValidationError):
    return problem(422, validation_detail(exc.errors))


@api.exception_handler(PermissionDenied)
def forbidden(request, exc):
    return problem(403, str(exc) or "Your role may not see this.")


@api.exception_handler(Http404)
def not_found(request, exc):
    return problem(404, str(exc) or "Not found.")


@api.exception_handler(NotFound)
def not_in_registry(request, exc: NotFound):
    return problem(404, exc.message)


@api.exception_handler(RegistryError)
def registry_failed(request, exc: RegistryError):
    return problem(exc.status if exc.status >= 500 else 502, exc.message)


@api.exception_handler(CursorError)
def bad_cursor(request, exc):
    return problem(400, str(exc))


@api.exception_handler(Exception)
def failed(request, exc):
    logger.exception("API request %s failed", request.path)
    return problem(500, "The dashboard failed to answer this request; its log says why.")


@api.exception_handler(PatternError)
def bad_pattern(request, exc):
    return problem(400, f"The pattern is not a regular expression RE2 can run: {exc}")
