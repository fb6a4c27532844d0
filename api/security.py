"""Who is calling the API, and how often: a personal token (Authorization: Bearer) or the dashboard's session
(with CSRF on unsafe methods), and a per-token limit of requests per minute."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer, SessionAuth
from ninja.throttling import BaseThrottle

from accounts import roles
from api import tokens


class TokenAuth(HttpBearer):
    """`Authorization: Bearer rui_…`: the token's user, as the request's user, or None (then 401)."""

    def authenticate(self, request, token: str):
        found = tokens.authenticate(token.strip())
        if found is None:  # a token that does not work is refused, whatever session cookie comes with it
            raise AuthenticationError()
        request.user = found.user  # roles are checked on request.user, as on the pages
        request.api_token = found
        return found.user


class DashboardSession(SessionAuth):
    """The dashboard's own pages calling the API with their session cookie; ninja checks CSRF on unsafe methods."""

    def __call__(self, request):
        if not request.user.is_authenticated:  # no session: nothing to check CSRF for (a 401, not a CSRF 403)
            return None
        return super().__call__(request)

    def authenticate(self, request, key):
        return request.user


class PerTokenRateLimit(BaseThrottle):
    """At most API_RATE_LIMIT requests a minute per token (per user for session calls), counted in the "default"
    cache that every process shares (Redis, or files on one machine). A fixed window per minute: one counter and one
    increment a request, where a sliding window would rewrite a list of times."""

    def allow_request(self, request) -> bool:
        limit = settings.API_RATE_LIMIT
        if not limit:
            return True
        token = getattr(request, "api_token", None)
        caller = f"token-{token.pk}" if token else f"user-{request.user.pk}"
        key = f"api-rate:{caller}:{int(time.time() // 60)}"
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=120)
            count = 1
        return count <= limit

    def wait(self) -> float:
        return 60 - time.time() % 60  # until the next minute's window


def require_role(request, role: str) -> None:
    """403 unless the caller has at least `role` now (a token acts with its user's current role)."""
    if not roles.has_role(request.user, role):
        current = roles.role_of(request.user) or "none"
        raise HttpError(403, f"This needs the {role} role or higher; yours is {current}.")
