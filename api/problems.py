"""Every error the API answers is an RFC 9457 problem: `application/problem+json` with type, title, status and a
detail a person can act on. The type is "about:blank" (the status says what kind of problem it is, RFC 9457 4.2.1);
the title is the status's standard phrase."""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse

MEDIA_TYPE = "application/problem+json"


def problem(status: int, detail: str, **extra) -> HttpResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    response = HttpResponse(json.dumps(body), status=status, content_type=MEDIA_TYPE)
    if status == 401:  # RFC 6750: say how to authenticate
        response["WWW-Authenticate"] = 'Bearer realm="registry-ui"'
    return response


def validation_detail(errors: list[dict]) -> str:
    """One sentence from pydantic's errors: where and what, e.g. "query.limit: Input should be less than or equal to
    1000"."""
    parts = []
    for error in errors:
        where = [str(part) for part in error.get("loc", ())]
        if where[:2] == ["body", "body"]:  # an operation's body parameter is named `body`: it is the body itself
            where = where[1:]
        place = ".".join(where)
        parts.append(f"{place}: {error.get('msg', 'invalid')}" if place else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "The request is not valid."


def form_detail(place: str, form) -> str:
    """A Django form's errors as one sentence, each after the field it is about: "body.filter.pattern: Not a valid
    regular expression: …" (`place` for the form as a whole)."""
    return "; ".join(
        f"{place}.{field}: {error}" if field != "__all__" else f"{place}: {error}"
        for field, errors in form.errors.items()
        for error in errors
    )
