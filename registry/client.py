"""The registry HTTP API client: every request the dashboard makes to the registry goes through here.

It speaks the Docker Registry HTTP API v2 as the CNCF distribution registry (registry:2 and 3) serves it,
returns plain dataclasses and raises RegistryError subclasses that carry a message a person can act on.
Safety rules live here so that no caller can skip them: every request has a timeout, at most
MAX_IN_FLIGHT requests run at once, manifest GET/HEAD always send the full Accept list (without it the
registry rewrites or hides manifests and answers with another digest), and bodies fetched by digest are
checked against it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SCHEMA1_TYPES = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}
INDEX_TYPES = {OCI_INDEX, DOCKER_MANIFEST_LIST}
IMAGE_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

MAX_IN_FLIGHT = 8
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024  # any other answer: catalog and tag pages, errors, tokens
CATALOG_PAGE = 1000
MAX_PAGES = 10_000  # of one catalog or tags list: a registry that keeps linking to new pages is stopped
MAX_LIST_ENTRIES = 200_000  # names in one catalog or tags list, unless the client is given another limit
# Probes ask the registry what it allows without changing anything: deleting a digest nobody can push content
# for tells "delete enabled" (404) from "disabled" (405); an upload started (then cancelled) tells read-only.
PROBE_REPOSITORY = "registry-ui/probe"
PROBE_DIGEST = "sha256:" + "0" * 64
PROBE_TAG = "registry-ui-probe"
# The placeholder manifest a tag is moved to before it is deleted on 2.x (see RegistryClient.remove_tag).
EMPTY_JSON, EMPTY_MEDIA_TYPE = b"{}", "application/vnd.oci.empty.v1+json"
THROWAWAY_ANNOTATION = "io.registry-ui.throwaway"
ATTESTATION_TYPE = "attestation-manifest"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REPOSITORY_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")

T = TypeVar("T")
R = TypeVar("R")


# --- Errors ---------------------------------------------------------------------------------


def gettext_noop(message: str) -> str:
    """Marks a message for makemessages, untranslated. Django's own needs settings, and this module is used
    without them too: by the benchmarks and by the scripts that push demo and test images."""
    return message


# RegistryError.note after a tag's removal failed half way (remove_tag).
PUT_BACK = gettext_noop("The tag was put back on its image.")
LEFT_ON_PLACEHOLDER = gettext_noop("The tag now points to an empty placeholder (%(placeholder)s): push it again.")


class RegistryError(Exception):
    """The registry could not answer the question. `status` is what the dashboard's page answers."""

    status = 502

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        # What else happened, for a person (e.g. where a tag points after a failed removal): a sentence kept
        # untranslated, marked with gettext_noop, and its parameters, so that it is translated where it is shown.
        self.note, self.note_params = "", {}


class RegistryUnreachable(RegistryError):
    status = 503


class RegistryTimeout(RegistryError):
    status = 504


class RegistryUnauthorized(RegistryError):
    """The registry rejected the dashboard's own account (REGISTRY_USERNAME / REGISTRY_PASSWORD)."""


class MalformedResponse(RegistryError):
    pass


class UnsupportedManifest(RegistryError):
    pass


class NotFound(RegistryError):
    status = 404


class DeleteDisabled(RegistryError):
    """405 with the JSON code UNSUPPORTED: the registry runs with storage.delete.enabled false."""

    status = 405


class ReadOnly(RegistryError):
    """405 in plain text: the registry is in read-only (maintenance) mode."""

    status = 405


# --- Data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    artifact_type: str = ""

    @property
    def is_attestation(self) -> bool:
        return self.annotations.get("vnd.docker.reference.type") == ATTESTATION_TYPE

    @property
    def describes(self) -> str:
        """For an attestation: the digest of the image it is about."""
        return self.annotations.get("vnd.docker.reference.digest", "")


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    size: int
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    artifact_type: str = ""
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The blobs this image manifest references: its config, then its layers."""
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def image_size(self) -> int:
        """Compressed size of an image: config plus layers, as the descriptors state them."""
        return sum(blob.size for blob in self.blobs)


@dataclass(frozen=True)
class HistoryEntry:
    created: datetime | None
    created_by: str
    comment: str
    empty_layer: bool


@dataclass(frozen=True)
class ImageConfig:
    digest: str
    created: datetime | None = None
    os: str = ""
    architecture: str = ""
    variant: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    exposed_ports: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    history: tuple[HistoryEntry, ...] = ()

    @property
    def platform(self) -> Platform | None:
        return Platform(self.os, self.architecture, self.variant) if self.os or self.architecture else None


@dataclass(frozen=True)
class RegistryStatus:
    api_version: str
    auth_scheme: str


@dataclass(frozen=True)
class Exchange:
    """One request as the client saw it, told to the client's `observe` callback: for the reachability banner
    and for the request counters."""

    method: str
    operation: str  # what was asked (see operation_of): a small fixed set, fit for a metric's label
    status: int | None  # the HTTP status; None when no answer came (unreachable, timed out)
    seconds: float
    ours: bool  # the registry itself, not a token service
    failure: str = ""  # without an answer: the error's code (UNREACHABLE, TIMEOUT, TLS)

    @property
    def answered(self) -> bool:
        return self.status is not None


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the registry, its body read in full (within the request's size limit)."""

    method: str
    url: str
    status_code: int
    headers: requests.structures.CaseInsensitiveDict
    content: bytes
    links: dict = field(default_factory=dict, hash=False, compare=False)

    def json(self) -> Any:
        return json.loads(self.content)


# --- Parsing (pure) -------------------------------------------------------------------------


def _json(body: bytes, what: str) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse(f"The registry sent {what} that is not valid JSON.") from None
    except RecursionError:
        raise MalformedResponse(f"The registry sent {what} nested too deeply to read.") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"The registry sent {what} that is not a JSON object.")
    return data


def storable(text: str) -> str:
    """Text from the registry as a database can keep it: PostgreSQL refuses NUL in text and JSON, so a NUL becomes
    the six characters \\u0000 (which is also how a page would show it)."""
    return text.replace("\x00", "\\u0000")


def _text(value: Any) -> str:
    return storable(value) if isinstance(value, str) else ""


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (storable(value),)
    if isinstance(value, list):
        return tuple(storable(item) for item in value if isinstance(item, str))
    return ()


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        storable(str(key)): storable(str(item)) for key, item in value.items() if isinstance(item, str | int | float)
    }


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from a config; None when missing, unparseable or the Unix epoch."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None if moment.year <= 1970 else moment


def parse_descriptor(data: Any) -> Descriptor:
    if not isinstance(data, dict) or not isinstance(data.get("digest"), str):
        raise MalformedResponse("A manifest holds a descriptor without a digest.")
    size = data.get("size")
    if not isinstance(size, int) or size < 0:
        raise MalformedResponse(f"Descriptor {data['digest']} has no valid size.")
    platform = data.get("platform")
    return Descriptor(
        media_type=_text(data.get("mediaType")),
        digest=data["digest"],
        size=size,
        platform=(
            Platform(_text(platform.get("os")), _text(platform.get("architecture")), _text(platform.get("variant")))
            if isinstance(platform, dict)
            else None
        ),
        annotations=_string_map(data.get("annotations")),
        artifact_type=_text(data.get("artifactType")),
    )


def parse_manifest(body: bytes, digest: str, content_type: str = "") -> Manifest:
    data = _json(body, "a manifest")
    media_type = _text(data.get("mediaType")) or content_type.split(";")[0].strip()
    if data.get("schemaVersion") == 1 or media_type in SCHEMA1_TYPES:
        raise UnsupportedManifest(
            "This image uses the Docker schema 1 manifest format, which was retired in Docker 1.10; "
            "push it again with a current Docker to browse it."
        )
    if not media_type:
        # OCI allows leaving mediaType out: tell an index from an image by its fields.
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    if media_type not in INDEX_TYPES | IMAGE_TYPES:
        raise UnsupportedManifest(f"The manifest has media type {media_type!r}, which the dashboard cannot show.")
    layers, children = data.get("layers") or [], data.get("manifests") or []
    if not isinstance(layers, list) or not isinstance(children, list):
        raise MalformedResponse("The manifest's layers or manifests field is not a list.")
    return Manifest(
        digest=digest,
        media_type=media_type,
        size=len(body),
        config=parse_descriptor(data["config"]) if "config" in data else None,
        layers=tuple(parse_descriptor(item) for item in layers),
        manifests=tuple(parse_descriptor(item) for item in children),
        annotations=_string_map(data.get("annotations")),
        artifact_type=_text(data.get("artifactType")),
        subject=parse_descriptor(data["subject"]) if isinstance(data.get("subject"), dict) else None,
    )


def parse_config(body: bytes, digest: str) -> ImageConfig:
    data = _json(body, "an image configuration")
    container = data.get("config") if isinstance(data.get("config"), dict) else {}
    history = data.get("history") if isinstance(data.get("history"), list) else []
    return ImageConfig(
        digest=digest,
        created=parse_time(data.get("created")),
        os=_text(data.get("os")),
        architecture=_text(data.get("architecture")),
        variant=_text(data.get("variant")),
        entrypoint=_strings(container.get("Entrypoint")),
        cmd=_strings(container.get("Cmd")),
        env=_strings(container.get("Env")),
        labels=_string_map(container.get("Labels")),
        exposed_ports=tuple(sorted(container["ExposedPorts"]))
        if isinstance(container.get("ExposedPorts"), dict)
        else (),
        working_dir=_text(container.get("WorkingDir")),
        user=_text(container.get("User")),
        history=tuple(
            HistoryEntry(
                created=parse_time(entry.get("created")),
                created_by=_text(entry.get("created_by")),
                comment=_text(entry.get("comment")),
                empty_layer=entry.get("empty_layer") is True,
            )
            for entry in history
            if isinstance(entry, dict)
        ),
    )


def operation_of(method: str, path: str) -> str:
    """What a request to the registry asks, from its method and path: ping, catalog, tags, manifest, blob, upload
    or other (a token service's answer is "token", told by the caller)."""
    if path.rstrip("/").endswith("/v2"):
        return "ping"
    if path.endswith("/v2/_catalog"):
        return "catalog"
    if path.endswith("/tags/list"):
        return "tags"
    if "/blobs/uploads/" in path or (method in ("POST", "PATCH") and "/blobs/" in path):
        return "upload"
    for part, name in (("/manifests/", "manifest"), ("/blobs/", "blob")):
        if part in path:
            return name
    return "other"


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split a WWW-Authenticate header into its scheme and parameters."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


# --- The client -----------------------------------------------------------------------------


class RegistryClient:
    """One registry, one account. Safe to share between threads."""

    def __init__(
        self,
        url: str,
        username: str = "",
        password: str = "",
        *,
        verify: bool | str = True,
        connect_timeout: float = 3.05,
        read_timeout: float = 15,
        cache: Any = None,
        max_list_entries: int = MAX_LIST_ENTRIES,
        token_realms: Iterable[str] = (),
        observe: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._observe = observe or (lambda exchange: None)  # told of each request: what, its status, how long
        self.verify = verify
        self.timeout = (connect_timeout, read_timeout)
        self.cache = cache
        self.max_list_entries = max_list_entries
        self.token_realms = tuple(token_realms)  # when given, the only token services that get credentials
        self._credentials = _basic_auth(username, password) if username else None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._tokens_lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=MAX_IN_FLIGHT)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # -- transport --

    def _send(self, method: str, url: str, **kwargs) -> Answer:
        """One HTTP request (see _exchange), told to `observe`: what it asked, its status (or that none came), and
        how long it took. An error in `observe` never fails the request."""
        ours = _origin(url) == _origin(self.url)  # not a token service's failure
        operation = operation_of(method, urlsplit(url).path) if ours else "token"
        began = time.perf_counter()
        try:
            answer = self._exchange(method, url, **kwargs)
        except (RegistryUnreachable, RegistryTimeout) as exc:
            self._tell(Exchange(method, operation, None, time.perf_counter() - began, ours, exc.code))
            raise
        self._tell(Exchange(method, operation, answer.status_code, time.perf_counter() - began, ours))
        return answer

    def _tell(self, exchange: Exchange) -> None:
        with contextlib.suppress(Exception):
            self._observe(exchange)

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        auth: Any = None,
        headers: dict | None = None,
        limit: int = MAX_BODY_BYTES,
        **kwargs,
    ) -> Answer:
        """One HTTP request with the forced timeout, its body read up to `limit` bytes while it holds
        its in-flight slot; network failures become RegistryErrors."""
        with self._in_flight:
            # The timeouts bound each read; the whole answer gets the same time in all, so a registry trickling
            # a byte at a time cannot hold a thread for long.
            deadline = time.monotonic() + sum(self.timeout)
            try:
                response = self.session.request(
                    method,
                    url,
                    auth=auth,
                    headers=headers,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=method in ("GET", "HEAD"),
                    stream=True,
                    **kwargs,
                )
                if method == "HEAD":  # no body, whatever Content-Length says; reading hands the connection back
                    response.raw.read()
                    body = b""
                else:
                    body = _read_body(response, limit, deadline)
                return Answer(method, response.url, response.status_code, response.headers, body, response.links)
            except urllib3.exceptions.ReadTimeoutError:  # raised by raw reads, which requests does not wrap
                raise RegistryTimeout(
                    f"{self.url} did not answer within {self.timeout[1]:g} seconds.", code="TIMEOUT"
                ) from None
            except urllib3.exceptions.HTTPError as exc:
                raise RegistryUnreachable(f"Cannot connect to {self.url}: {_reason(exc)}", code="UNREACHABLE") from None
            except requests.exceptions.SSLError as exc:
                raise RegistryUnreachable(f"TLS with {self.url} failed: {_reason(exc)}", code="TLS") from None
            except requests.exceptions.Timeout:
                raise RegistryTimeout(
                    f"{self.url} did not answer within {self.timeout[1]:g} seconds.", code="TIMEOUT"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise RegistryUnreachable(f"Cannot connect to {self.url}: {_reason(exc)}", code="UNREACHABLE") from None

    def request(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> Answer:
        """A request to the registry with the dashboard's account; non-2xx answers raise."""
        url = path if path.startswith(("http://", "https://")) else self.url + path
        if _origin(url) != _origin(self.url):  # a Link or Location the registry sent, pointing elsewhere
            raise MalformedResponse(
                f"The registry pointed the dashboard at {_origin_text(url)}; only {_origin_text(self.url)} is "
                "followed, so the dashboard's account is sent nowhere else.",
                code="FOREIGN_HOST",
            )
        scope = _scope_for(method, url)
        token = self._cached_token(scope)
        response = self._send(
            method, url, auth=None if token else self._credentials, headers=_with_bearer(headers, token), **kwargs
        )
        if response.status_code == 401:
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if scheme == "bearer" and "realm" in params:
                token = self._fetch_token(params, scope)
                response = self._send(method, url, headers=_with_bearer(headers, token), **kwargs)
        if response.status_code >= 400:
            raise _error_for(response)
        return response

    def _cached_token(self, scope: str) -> str | None:
        with self._tokens_lock:
            token, expires = self._tokens.get(scope, ("", 0.0))
        return token if token and expires > time.monotonic() else None

    def _fetch_token(self, challenge: dict[str, str], scope: str) -> str:
        if not self.realm_allowed(challenge["realm"]):
            raise RegistryUnauthorized(
                f"The registry asks for the dashboard's account at a token service it may not be sent to "
                f"({_origin_text(challenge['realm'])}): only HTTPS, the registry's own host, or the realms "
                "REGISTRY_TOKEN_REALMS names get credentials.",
                code="FOREIGN_REALM",
            )
        params = {"service": challenge.get("service", "")}
        if challenge.get("scope") or scope:
            params["scope"] = challenge.get("scope") or scope
        response = self._send("GET", challenge["realm"], auth=self._credentials, params=params)
        if response.status_code in (401, 403):
            raise RegistryUnauthorized(
                "The registry's token service rejected the dashboard's account.", code="UNAUTHORIZED"
            )
        if response.status_code >= 400:
            raise _error_for(response)
        token, data = _token(response)
        if not token:
            raise MalformedResponse("The registry's token service answered without a token.")
        lifetime = data.get("expires_in") if isinstance(data.get("expires_in"), int) else 60
        with self._tokens_lock:
            self._tokens[scope] = (token, time.monotonic() + max(lifetime - 10, 5))
        return token

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply `function` to every item on up to MAX_IN_FLIGHT threads, keeping the order."""
        items = list(items)
        if len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT) as pool:
            return list(pool.map(function, items))

    # -- reading --

    def status(self) -> RegistryStatus:
        """Ping /v2/ with the dashboard's account."""
        response = self.request("GET", "/v2/")
        if "registry/2.0" not in response.headers.get("Docker-Distribution-API-Version", "registry/2.0"):
            raise MalformedResponse(f"{self.url} does not look like a Docker registry (no registry/2.0 API).")
        scheme = "token" if self._tokens else ("basic" if self._credentials else "none")
        return RegistryStatus(
            api_version=response.headers.get("Docker-Distribution-API-Version", ""), auth_scheme=scheme
        )

    def catalog(self) -> list[str]:
        """Every repository name, following the Link header through all pages."""
        try:
            return self._paginate(f"/v2/_catalog?n={CATALOG_PAGE}", "repositories")
        except RegistryError as exc:
            if exc.code != "PAGINATION_NUMBER_INVALID":
                raise
            # catalog.maxentries is below our page size: let the registry choose its own.
            return self._paginate("/v2/_catalog", "repositories")

    def tags(self, repository: str) -> list[str]:
        """Every tag of a repository, unsorted as the registry gives them ([] for none)."""
        return self._paginate(f"/v2/{_name(repository)}/tags/list", "tags")

    def _paginate(self, path: str, key: str) -> list[str]:
        """Every page of a list, following the Link header; stopped with an error when the pages loop, never end,
        or hold more names than the limit (REGISTRY_MAX_LIST_ENTRIES)."""
        names: list[str] = []
        seen: set[str] = set()
        next_url: str | None = self.url + path
        while next_url:
            if next_url in seen or len(seen) >= MAX_PAGES:
                problem = (
                    "links back to a page it gave already" if next_url in seen else f"has over {MAX_PAGES:,} pages"
                )
                raise MalformedResponse(f"The registry's {key} list {problem}: stopped reading it.", code="PAGINATION")
            seen.add(next_url)
            response = self.request("GET", next_url)
            page = _json(response.content, f"a {key} list").get(key)
            if page is not None and not isinstance(page, list):
                raise MalformedResponse(f"The registry's {key} list is not a list.")
            names.extend(item for item in page or [] if isinstance(item, str))
            if len(names) > self.max_list_entries:
                raise MalformedResponse(
                    f"The registry's {key} list has more than {self.max_list_entries:,} names: stopped reading it "
                    "(REGISTRY_MAX_LIST_ENTRIES sets the limit).",
                    code="TOO_MANY",
                )
            next_url = _next_link(response, self.url)
        return names

    def resolve(self, repository: str, reference: str) -> str:
        """The digest a tag points to now (HEAD, with the full Accept list)."""
        response = self.request(
            "HEAD", f"/v2/{_name(repository)}/manifests/{_reference(reference)}", headers={"Accept": MANIFEST_ACCEPT}
        )
        digest = response.headers.get("Docker-Content-Digest", "")
        if not DIGEST_RE.match(digest):
            raise MalformedResponse(f"The registry gave no valid digest for {repository}:{reference}.")
        return digest

    def manifest(self, repository: str, reference: str) -> Manifest:
        """A manifest by tag or digest. By digest it comes from the cache when it has been seen before."""
        if DIGEST_RE.match(reference) and (cached := self._cache_get(f"manifest:{reference}")):
            return parse_manifest(cached[0], reference, cached[1])
        response = self.request(
            "GET",
            f"/v2/{_name(repository)}/manifests/{_reference(reference)}",
            headers={"Accept": MANIFEST_ACCEPT},
            limit=MAX_MANIFEST_BYTES,
        )
        body = response.content
        digest = sha256_digest(body)
        expected = reference if DIGEST_RE.match(reference) else response.headers.get("Docker-Content-Digest", digest)
        if expected != digest:
            raise MalformedResponse(f"The manifest of {repository}:{reference} does not match its digest {expected}.")
        content_type = response.headers.get("Content-Type", "")
        manifest = parse_manifest(body, digest, content_type)
        self._cache_set(f"manifest:{digest}", (body, content_type))
        return manifest

    def config(self, repository: str, digest: str) -> ImageConfig:
        """An image's config blob, parsed; cached by digest without expiry."""
        if cached := self._cache_get(f"config:{digest}"):
            return cached
        response = self.request("GET", f"/v2/{_name(repository)}/blobs/{_reference(digest)}", limit=MAX_CONFIG_BYTES)
        body = response.content
        if sha256_digest(body) != digest:
            raise MalformedResponse(f"The config blob of {repository} does not match its digest {digest}.")
        config = parse_config(body, digest)
        self._cache_set(f"config:{digest}", config)
        return config

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            self.request("HEAD", f"/v2/{_name(repository)}/blobs/{_reference(digest)}")
        except NotFound:
            return False
        return True

    def delete_status(self) -> str:
        """'enabled', 'disabled' or 'read-only', found by deleting a digest that cannot exist."""
        try:
            self.request("DELETE", f"/v2/{PROBE_REPOSITORY}/manifests/{PROBE_DIGEST}")
        except NotFound:
            return "enabled"
        except DeleteDisabled:
            return "disabled"
        except ReadOnly:
            return "read-only"
        return "enabled"

    def tag_delete_mode(self) -> str:
        """How a single tag can be removed: 'native' (distribution 3.x deletes a tag by name) or 'throwaway'
        (2.x answers 400 DIGEST_INVALID to a delete by tag: see remove_tag). Raises DeleteDisabled or ReadOnly."""
        try:
            self.request("DELETE", f"/v2/{PROBE_REPOSITORY}/manifests/{PROBE_TAG}")
        except NotFound:
            return "native"
        except RegistryError as exc:
            if exc.code in ("DIGEST_INVALID", "HTTP_400"):
                return "throwaway"
            raise
        return "native"

    def accepts_uploads(self, repository: str = "") -> bool:
        """Whether an upload may start now: False when the registry is read-only (maintenance). An upload that
        starts is cancelled at once; in a repository that exists already, the probe leaves nothing behind."""
        try:
            started = self.request("POST", f"/v2/{_name(repository or PROBE_REPOSITORY)}/blobs/uploads/")
        except ReadOnly:
            return False
        with contextlib.suppress(RegistryError):
            self.request("DELETE", urljoin(self.url + "/", started.headers.get("Location", "")))
        return True

    def answers(self) -> bool:
        """Whether anything answers HTTP at the registry's address (any status: 401 is an answer)."""
        try:
            self._send("GET", self.url + "/v2/")
        except RegistryError:
            return False
        return True

    def check_credentials(self, username: str, password: str) -> bool:
        """Whether the registry accepts this user's password (a /v2/ request carrying it; with token auth, a token
        service the password may be sent to must answer with a token)."""
        response = self._send("GET", self.url + "/v2/", auth=_basic_auth(username, password))
        if response.status_code == 401:
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if scheme != "bearer" or "realm" not in params or not self.realm_allowed(params["realm"]):
                return False
            response = self._send(
                "GET",
                params["realm"],
                auth=_basic_auth(username, password),
                params={"service": params.get("service", "")},
            )
            if response.status_code < 400:
                return bool(_token(response, quiet=True)[0])
        if response.status_code in (401, 403):
            return False
        if response.status_code >= 400:
            raise _error_for(response)
        return True

    def realm_allowed(self, realm: str) -> bool:
        """Whether credentials may go to this token service: one REGISTRY_TOKEN_REALMS names when it is set,
        else any over HTTPS, or one on the registry's own host."""
        if self.token_realms:
            return any(realm == allowed or realm.startswith(allowed.rstrip("/") + "/") for allowed in self.token_realms)
        realm_url, registry_url = urlsplit(realm), urlsplit(self.url)
        return realm_url.scheme == "https" or (
            realm_url.scheme == "http" and realm_url.hostname == registry_url.hostname
        )

    # -- writing --

    def upload_blob(
        self, repository: str, data: bytes, media_type: str = "application/octet-stream", *, known_new: bool = False
    ) -> Descriptor:
        """Push a blob (skipped when the repository already has it, unless the caller knows it is new);
        returns its descriptor."""
        digest = sha256_digest(data)
        if known_new or not self.blob_exists(repository, digest):
            started = self.request("POST", f"/v2/{_name(repository)}/blobs/uploads/")
            location = urljoin(self.url + "/", started.headers.get("Location", ""))
            separator = "&" if "?" in location else "?"
            self.request(
                "PUT",
                f"{location}{separator}digest={quote(digest)}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Push a manifest under a tag (or its digest); returns the digest."""
        self.request(
            "PUT",
            f"/v2/{_name(repository)}/manifests/{_reference(reference)}",
            data=body,
            headers={"Content-Type": media_type},
        )
        return sha256_digest(body)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest and, with it, every tag that points to it. Already gone counts as done."""
        if not DIGEST_RE.match(digest):
            raise ValueError(f"Refusing to delete {digest!r}: manifests are deleted by sha256 digest only.")
        try:
            self.request("DELETE", f"/v2/{_name(repository)}/manifests/{digest}")
        except NotFound as exc:
            if exc.code not in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", ""):
                raise

    def remove_tag(self, repository: str, tag: str, mode: str, digest: str = "") -> None:
        """Remove one tag and nothing else, whatever other tags share its digest.

        'native' (3.x): DELETE by tag. 'throwaway' (2.x, which deletes only by digest, taking every tag on the
        digest along): point the tag at a tiny manifest of its own, unique by a random annotation, then delete
        that manifest's digest, which only this tag now points to. The caller checks first that the tag still
        points to `digest`; should the second write fail, the tag is put back on `digest`, and the error
        says whether that worked."""
        _reference(tag)
        if DIGEST_RE.match(tag):
            raise ValueError("remove_tag takes a tag name, not a digest.")
        if mode == "native":
            try:
                self.request("DELETE", f"/v2/{_name(repository)}/manifests/{tag}")
            except NotFound as exc:
                if exc.code not in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", ""):
                    raise
            return
        original = self.manifest_bytes(repository, digest) if digest else None
        placeholder = self.put_placeholder(repository, tag)
        try:
            self.delete_manifest(repository, placeholder)
        except RegistryError as exc:
            if original is None:
                raise
            try:
                self.put_manifest(repository, tag, *original)
            except RegistryError:
                exc.note, exc.note_params = LEFT_ON_PLACEHOLDER, {"placeholder": placeholder}
                raise exc from None
            exc.note = PUT_BACK
            raise

    def put_placeholder(self, repository: str, tag: str) -> str:
        """Point the tag at a tiny manifest of its own (remove_tag's first step); the placeholder's digest."""
        empty = self.upload_blob(repository, EMPTY_JSON, EMPTY_MEDIA_TYPE)
        throwaway = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty.digest, "size": empty.size},
            "layers": [],
            "annotations": {THROWAWAY_ANNOTATION: secrets.token_hex(16)},
        }
        body = json.dumps(throwaway, separators=(",", ":"), sort_keys=True).encode()
        return self.put_manifest(repository, tag, body, OCI_MANIFEST)

    def is_placeholder(self, repository: str, digest: str) -> bool:
        """Whether the manifest is one of remove_tag's placeholders: a removal stopped between its two writes."""
        body, _ = self.manifest_bytes(repository, digest)
        if len(body) > 1024:  # a placeholder is some 300 bytes; an image is not worth parsing here
            return False
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            return THROWAWAY_ANNOTATION in json.loads(body).get("annotations", {})
        return False

    def manifest_bytes(self, repository: str, digest: str) -> tuple[bytes, str]:
        """A manifest's exact bytes and media type, by digest (to push it again unchanged)."""
        response = self.request(
            "GET",
            f"/v2/{_name(repository)}/manifests/{_reference(digest)}",
            headers={"Accept": MANIFEST_ACCEPT},
            limit=MAX_MANIFEST_BYTES,
        )
        if sha256_digest(response.content) != digest:
            raise MalformedResponse(f"The manifest of {repository} does not match its digest {digest}.")
        return response.content, response.headers.get("Content-Type", "")

    # -- cache --

    def _cache_get(self, key: str) -> Any:
        return self.cache.get(f"registry:{key}") if self.cache is not None else None

    def _cache_set(self, key: str, value: Any) -> None:
        if self.cache is not None:
            self.cache.set(f"registry:{key}", value, None)


# --- Helpers --------------------------------------------------------------------------------


def _name(repository: str) -> str:
    if not REPOSITORY_RE.match(repository) or len(repository) > 255:
        raise NotFound(f"{repository!r} is not a valid repository name.", code="NAME_INVALID")
    return repository


def _reference(reference: str) -> str:
    if not (DIGEST_RE.match(reference) or TAG_RE.match(reference)):
        raise NotFound(f"{reference!r} is not a valid tag or digest.", code="TAG_INVALID")
    return reference


def _scope_for(method: str, url: str) -> str:
    """The token scope a request needs, so a cached token can be sent without a 401 round trip."""
    path = urlsplit(url).path
    if path.endswith("/v2/_catalog"):
        return "registry:catalog:*"
    match = re.match(r".*/v2/(.+?)/(?:manifests|blobs|tags)/", path)
    if not match:
        return ""
    actions = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "pull,push")
    return f"repository:{match.group(1)}:{actions}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is no number
        port = -1
    return parts.scheme, (parts.hostname or ""), port


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


def _token(response: Answer, *, quiet: bool = False) -> tuple[str, dict]:
    """The token of a token service's answer ("" when there is none), and the answer."""
    try:
        data = _json(response.content, "a token answer")
    except MalformedResponse:
        if quiet:
            return "", {}
        raise
    token = data.get("access_token") or data.get("token")
    return (token if isinstance(token, str) else ""), data


def _basic_auth(username: str, password: str) -> tuple[bytes, bytes]:
    # As bytes, so requests sends UTF-8 as htpasswd and docker login do (for str it would use Latin-1).
    return username.encode(), password.encode()


def _with_bearer(headers: dict | None, token: str | None) -> dict:
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _next_link(response: Answer, base_url: str) -> str | None:
    """The Link header's next page. It is relative to the registry's root (/v2/…), so a path prefix in
    REGISTRY_URL (a proxy serving the registry under /registry) is put back unless it is already there."""
    target = response.links.get("next", {}).get("url")
    if not target:
        return None
    prefix = urlsplit(base_url).path.rstrip("/")
    if target.startswith("/") and prefix and not target.startswith(prefix + "/"):
        target = prefix + target
    return urljoin(base_url, target)


def _read_body(response: requests.Response, limit: int, deadline: float) -> bytes:
    """The whole body, refusing (and dropping the connection) once it passes `limit` bytes or `deadline`: a
    pusher controls what a descriptor points at, and the dashboard must not load a huge blob into memory, nor
    wait for ever on an answer that trickles in."""
    declared = response.headers.get("Content-Length", "")
    where = f"{response.request.method} {urlsplit(response.url).path}"
    body = bytearray()
    if not (declared.isdigit() and int(declared) > limit):
        # read1: what has arrived (one read of the socket), so the deadline is checked however slowly it comes
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            body += chunk
            if time.monotonic() > deadline:
                response.close()
                raise RegistryTimeout(f"The registry's answer to {where} did not arrive in time.", code="TIMEOUT")
            if len(body) > limit:
                break
        else:
            return bytes(body)
    response.close()
    raise MalformedResponse(f"The registry's answer to {where} is larger than the {limit:,}-byte limit.")


def _reason(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    match = re.search(r"\] ([^'\")]+)", text) or re.search(r"Caused by (\w+\(.+?\))", text)
    return match.group(1).strip() if match else text[:200]


def _error_for(response: Answer) -> RegistryError:
    """Turn an error answer into the matching RegistryError, reading the JSON error body if any."""
    status = response.status_code
    is_json = "json" in response.headers.get("Content-Type", "")
    code, detail = "", ""
    if is_json:
        try:
            first = (response.json().get("errors") or [{}])[0]
            code, detail = storable(str(first.get("code", ""))), storable(str(first.get("message", "")))
        except (ValueError, UnicodeDecodeError, RecursionError, AttributeError, IndexError, TypeError):
            pass
    where = f"{response.method} {urlsplit(response.url).path}"
    if status == 401:
        return RegistryUnauthorized(f"The registry rejected the dashboard's account ({where}).", code="UNAUTHORIZED")
    if status == 403:
        return RegistryUnauthorized(f"The dashboard's account may not do {where}.", code="DENIED")
    if status == 404:
        return NotFound(detail or f"Not found: {where}.", code=code)
    if status == 405 and code == "UNSUPPORTED":
        return DeleteDisabled("Deleting is disabled on this registry.", code=code)
    if status == 405:
        return ReadOnly("The registry is in read-only (maintenance) mode.", code="READ_ONLY")
    if status == 400 and code:
        return RegistryError(f"The registry refused {where}: {code} {detail}".strip(), code=code)
    if status == 429:
        return RegistryError(
            "The registry is rate-limiting the dashboard (429 Too Many Requests).", code="TOOMANYREQUESTS"
        )
    return RegistryError(f"The registry answered {status} to {where}.", code=code or f"HTTP_{status}")


def wait_until_answers(
    url: str, seconds: float, *, verify: bool | str = True, alive: Callable[[], None] = lambda: None
) -> None:
    """Wait until a registry just started answers HTTP at `url`. `alive()` is called between tries and raises
    when what was started has died, which ends the wait at once. Raises RegistryUnreachable after `seconds`."""
    probe = RegistryClient(url, verify=verify, connect_timeout=0.5, read_timeout=2)
    deadline = time.monotonic() + seconds
    while not probe.answers():
        alive()
        if time.monotonic() > deadline:
            raise RegistryUnreachable(f"Nothing answered at {url} within {seconds:g} seconds.", code="UNREACHABLE")
        time.sleep(0.05)


# --- The dashboard's client -------------------------------------------------------------------

_client: RegistryClient | None = None
_client_lock = threading.Lock()


def get_client() -> RegistryClient:
    """The client for the registry in settings, built once per process so connections and tokens are reused."""
    global _client
    with _client_lock:
        if _client is None:
            from django.conf import settings
            from django.core.cache import caches

            from registry import counters, reachability

            def observe(exchange: Exchange) -> None:
                reachability.observe(exchange)
                counters.count_request(exchange)

            _client = RegistryClient(
                settings.REGISTRY_URL,
                settings.REGISTRY_USERNAME,
                settings.REGISTRY_PASSWORD,
                verify=settings.REGISTRY_CA_BUNDLE or settings.REGISTRY_VERIFY_TLS,
                connect_timeout=settings.REGISTRY_CONNECT_TIMEOUT,
                read_timeout=settings.REGISTRY_READ_TIMEOUT,
                cache=caches["registry"],
                max_list_entries=settings.REGISTRY_MAX_LIST_ENTRIES,
                token_realms=settings.REGISTRY_TOKEN_REALMS,
                observe=observe,
            )
        return _client


def reset_client() -> None:
    """Forget the client (settings changed)."""
    global _client
    with _client_lock:
        _client = None
