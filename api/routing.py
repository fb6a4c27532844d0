"""The API's URLs as Django serves them: django-ninja's patterns, made to fit the dashboard's middleware. Every API
view authenticates for itself (a token or the session), so the site-wide login redirect is lifted from them; a
method a path does not take, and a path that does not exist, answer problems like every other API error."""

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, path
from ninja import NinjaAPI

from api.problems import problem


def problem_on_405(view):
    @login_not_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/problem"):
            allowed = response.get("Allow", "")
            answer = problem(405, f"{request.method} is not allowed here; this path takes {allowed}.")
            answer["Allow"] = allowed
            return answer
        return response

    return wrapped


@login_not_required
def unknown_path(request, rest: str = ""):
    return problem(404, f"There is no API path {request.path}; the list is in openapi.json beside it.")


def urls(api: NinjaAPI) -> tuple[list, str, str]:
    """What `path()` takes for an included URLconf: ninja's patterns, wrapped, then a catch-all for unknown paths
    (and for the API's root)."""
    patterns, app_name, namespace = api.urls
    wrapped = [
        URLPattern(pattern.pattern, problem_on_405(pattern.callback), pattern.default_args, pattern.name)
        if pattern.name != "api-root"
        else path("", unknown_path, name="api-root")  # ninja's own answers an HTML 404
        for pattern in patterns
    ]
    return [*wrapped, path("<path:rest>", unknown_path, name="unknown")], app_name, namespace
