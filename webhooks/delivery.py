"""Every outgoing webhook request: the one module that posts to the endpoints admins add.

An endpoint's URL is typed by a person, so it is also a way to make the dashboard send requests: it must not reach
the services beside it. The host is resolved, refused when any of its addresses is not a public one (loopback,
private, link-local, shared, reserved, multicast, unspecified) unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on, and the
request goes to the address that was checked — a name that resolves to a public address for the check and to
10.0.0.1 for the connection (DNS rebinding) gets nowhere. For HTTPS the certificate is still checked against the
name (and the name sent as SNI). Redirects are never followed (a 3xx is a failed attempt, the target it names is
never asked), the environment's proxies are not used, every wait has a timeout and at most RESPONSE_MAX_BYTES of
an answer are read.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.utils.translation import gettext_noop
from requests.adapters import HTTPAdapter

from cleanup.reasons import english, reason

RESPONSE_MAX_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Registry-UI-Signature"
USER_AGENT = "registry-ui-webhooks/1"


class DeliveryError(Exception):
    """An attempt that failed before any answer came (refused, unreachable, timed out). `why` is a stored reason
    (cleanup/reasons.py): a worker writes it, each reader reads it in their language."""

    def __init__(self, why) -> None:
        super().__init__(english(why))
        self.why = why
        self.message = english(why)


class TargetRefused(DeliveryError):
    """The URL may not be posted to (a scheme other than http(s), or a non-public address); retrying won't help."""


@dataclass(frozen=True)
class Answer:
    """What an endpoint answered: its status, how long it took, and the start of its body (at most the cap)."""

    status: int
    seconds: float
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of "TIMESTAMP.BODY" with the endpoint's secret, hex: what the signature header's v1 holds."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


# Refused kinds of address, as a message names them.
NOT_PUBLIC = {
    "loopback": gettext_noop("a loopback address"),
    "link-local": gettext_noop("a link-local address"),
    "private": gettext_noop("a private address"),
    "multicast": gettext_noop("a multicast address"),
    "unspecified": gettext_noop("an unspecified address"),
    "reserved": gettext_noop("a reserved address"),
    "other": gettext_noop("not a public address"),
}


def why_not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why an address may not be a webhook's target ("" when it may): the kind of network it belongs to."""
    address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:10.0.0.1 is 10.0.0.1
    for kind, flag in [
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("other", not address.is_global),  # shared (100.64.0.0/10), documentation ranges, …
    ]:
        if flag:
            return kind
    return ""


def checked_address(url: str) -> tuple[str, int]:
    """The address to connect to for `url` and its port, after the checks; TargetRefused otherwise. Every address
    the name resolves to must pass, so a name can't hide a private address behind a public one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(
            reason(gettext_noop("Only http:// and https:// URLs with a host name can receive webhooks."))
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(reason(gettext_noop("The URL's port is not a number from 1 to 65535."))) from None
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        message = gettext_noop("The host name %(host)s does not resolve to any address.")
        raise TargetRefused(reason(message, host=parts.hostname)) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in found))
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            if kind := why_not_public(address):
                message = gettext_noop(
                    "%(host)s resolves to %(address)s, %(kind)s: webhooks are only sent to public addresses "
                    "(WEBHOOK_ALLOW_PRIVATE_TARGETS allows others)."
                )
                why = reason(message, host=parts.hostname, address=str(address), kind=reason(NOT_PUBLIC[kind]))
                raise TargetRefused(why)
    return str(addresses[0]), port


class PinnedHostAdapter(HTTPAdapter):
    """Connects to the checked address while TLS still names, and verifies, the URL's host (SNI and certificate),
    through the pool options urllib3 offers for it."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.hostname
            pool_kwargs["assert_hostname"] = self.hostname
        return host_params, pool_kwargs


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` at its checked address; the answer, whatever its status. Raises TargetRefused, or
    DeliveryError when no answer came in time."""
    address, port = checked_address(url)
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    userinfo = parts.netloc.rpartition("@")[0]
    target = urlunsplit(parts._replace(netloc=f"{userinfo + '@' if userinfo else ''}{host}:{port}"))
    session = requests.Session()
    session.trust_env = False  # no proxy, netrc or CA bundle from the environment: the checks above are the rules
    session.mount("https://", PinnedHostAdapter(parts.hostname))
    session.mount("http://", HTTPAdapter(max_retries=0))
    headers = {
        **headers,
        "Host": parts.netloc.rpartition("@")[2],
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",  # the body is read raw and capped: nothing to inflate
    }
    timeout = (settings.WEBHOOK_CONNECT_TIMEOUT, settings.WEBHOOK_READ_TIMEOUT)
    started = time.monotonic()
    try:
        with (
            session,
            session.post(
                target, data=body, headers=headers, allow_redirects=False, timeout=timeout, stream=True
            ) as response,
        ):
            answer_body = read_capped(response, started + settings.WEBHOOK_READ_TIMEOUT)
            return Answer(response.status_code, time.monotonic() - started, answer_body)
    except requests.Timeout:
        seconds = f"{settings.WEBHOOK_READ_TIMEOUT:g}"
        raise DeliveryError(
            reason(gettext_noop("No answer within %(seconds)s s (WEBHOOK_READ_TIMEOUT)."), seconds=seconds)
        ) from None
    except requests.exceptions.SSLError as exc:
        raise DeliveryError(reason(gettext_noop("TLS failed: %(error)s"), error=innermost(exc))) from None
    except requests.RequestException as exc:
        message = gettext_noop("Could not connect to %(host)s: %(error)s")
        raise DeliveryError(reason(message, host=parts.hostname, error=innermost(exc))) from None


def read_capped(response: requests.Response, deadline: float) -> bytes:
    """At most RESPONSE_MAX_BYTES of the answer, raw, and no longer than until `deadline`: the rest is never read
    (the connection is closed with it)."""
    chunks, size = [], 0
    while size < RESPONSE_MAX_BYTES and time.monotonic() < deadline:
        chunk = response.raw.read(min(16 * 1024, RESPONSE_MAX_BYTES - size), decode_content=False)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def innermost(exc: Exception) -> str:
    """The innermost cause's words (urllib3 wraps them twice)."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc)[:300] or type(exc).__name__
