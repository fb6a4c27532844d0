"""Failed sign-ins, counted per user name and per address in the cache: past the limits, sign-in is refused for
LOGIN_LOCKOUT_SECONDS."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    if settings.TRUST_PROXY_HEADERS and (forwarded := request.headers.get("X-Forwarded-For")):
        return forwarded.split(",")[-1].strip()  # the address the proxy itself saw
    return request.META.get("REMOTE_ADDR", "")


def _throttle_keys(request: HttpRequest, username: str) -> list[tuple[str, int]]:
    return [
        (f"login-failures:user:{username.lower()}", settings.LOGIN_FAILURES_PER_USER),
        (f"login-failures:address:{client_address(request)}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def login_blocked(request: HttpRequest, username: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _throttle_keys(request, username))


def record_failed_login(request: HttpRequest, username: str) -> None:
    for key, _limit in _throttle_keys(request, username):
        cache.add(key, 0, settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_LOCKOUT_SECONDS)
    logger.warning("Failed login for %r from %s", username[:150], client_address(request))


def clear_failed_logins(request: HttpRequest, username: str) -> None:
    cache.delete(f"login-failures:user:{username.lower()}")
