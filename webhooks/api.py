"""/api/v1/webhooks: the Webhooks page's work for scripts (admins only). A django-ninja Router that the API
(api/views/v1.py) adds, so it is called with the API's tokens, rate limit and problems (RFC 9457). Input goes
through the page's form: the same rules, the same messages (a non-public target is refused with 422)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from accounts import roles
from webhooks import events, tasks
from webhooks.forms import EndpointForm
from webhooks.models import Delivery, Endpoint

router = Router(tags=["webhooks"])


class WebhookProblem(Schema):
    """An RFC 9457 problem (media type application/problem+json)."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Forbidden"])
    status: int = Field(examples=[403])
    detail: str


PROBLEMS = dict.fromkeys((401, 403, 404, 422, 429), WebhookProblem)
EVENTS_DESCRIPTION = "Event types: " + ", ".join(events.EVENT_TYPES) + "."


class EndpointIn(Schema):
    name: str = Field(max_length=100)
    url: str = Field(description="http(s) URL on a public address (unless WEBHOOK_ALLOW_PRIVATE_TARGETS).")
    events: list[str] = Field(description=EVENTS_DESCRIPTION)
    active: bool = True
    secret: str = Field("", description="At least 16 characters; empty: one is generated and answered once.")


class EndpointChange(Schema):
    name: str | None = Field(None, max_length=100)
    url: str | None = None
    events: list[str] | None = Field(None, description=EVENTS_DESCRIPTION)
    active: bool | None = None
    secret: str | None = Field(None, description="A new secret (at least 16 characters); absent: kept.")


class EndpointOut(Schema):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str | None = Field(description="The generated secret, in this answer only; null when one was given.")


class DeliveryOut(Schema):
    id: int
    event_id: str
    event_type: str
    status: str = Field(description="pending, sending, retrying, delivered or failed.")
    attempts: int
    response_code: int | None
    duration_ms: int | None
    error: str = Field(description="Why the last attempt failed, in the request's language.")
    response_excerpt: str = Field(description="The start of the last answer's body.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due (retrying).")
    created_at: datetime
    last_attempt_at: datetime | None

    @staticmethod
    def resolve_event_id(delivery: Delivery) -> str:
        return str(delivery.event_id)

    @staticmethod
    def resolve_error(delivery: Delivery) -> str:
        return delivery.shown_error


def require_admin(request) -> None:
    if not roles.has_role(request.user, roles.ADMIN):
        current = roles.role_of(request.user) or "none"
        raise HttpError(403, f"Webhooks need the admin role; yours is {current}.")


def saved(form: EndpointForm, request) -> Endpoint:
    """The form's endpoint saved, or a 422 naming each field's problem."""
    if not form.is_valid():
        problems = [f"{field}: {' '.join(messages)}" for field, messages in form.errors.items()]
        raise HttpError(422, "; ".join(problems))
    endpoint = form.save(commit=False)
    endpoint.created_by = endpoint.created_by or request.user.username
    endpoint.save()
    return endpoint


@router.get("", response={200: list[EndpointOut], **PROBLEMS})
def webhook_list(request):
    """Every endpoint (never its secret)."""
    require_admin(request)
    return list(Endpoint.objects.all())


@router.post("", response={201: EndpointCreated, **PROBLEMS})
def webhook_create(request, payload: EndpointIn):
    """Add an endpoint. A secret left out is generated and answered here only."""
    require_admin(request)
    form = EndpointForm(data=payload.dict())
    endpoint = saved(form, request)
    endpoint.secret = form.generated_secret or None  # answered, not saved: only a generated one is shown
    return Status(201, endpoint)


@router.get("/{endpoint_id}", response={200: EndpointOut, **PROBLEMS})
def webhook_detail(request, endpoint_id: int):
    require_admin(request)
    return get_object_or_404(Endpoint, pk=endpoint_id)


@router.patch("/{endpoint_id}", response={200: EndpointOut, **PROBLEMS})
def webhook_update(request, endpoint_id: int, payload: EndpointChange):
    """Change what is given; the rest (the secret too) is kept."""
    require_admin(request)
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id)
    current = {"name": endpoint.name, "url": endpoint.url, "events": endpoint.events, "active": endpoint.active}
    given = payload.dict(exclude_none=True)
    return saved(EndpointForm(data={**current, **given}, instance=endpoint), request)


@router.delete("/{endpoint_id}", response={204: None, **PROBLEMS})
def webhook_delete(request, endpoint_id: int):
    """Delete an endpoint and its delivery log."""
    require_admin(request)
    get_object_or_404(Endpoint, pk=endpoint_id).delete()
    return HttpResponse(status=204)


@router.get("/{endpoint_id}/deliveries", response={200: list[DeliveryOut], **PROBLEMS})
def webhook_deliveries(request, endpoint_id: int, limit: int = Query(50, ge=1, le=1000)):
    """The endpoint's delivery log, newest first: status, response code, duration, next retry."""
    require_admin(request)
    return list(get_object_or_404(Endpoint, pk=endpoint_id).deliveries.all()[:limit])


@router.post("/{endpoint_id}/test", response={202: DeliveryOut, **PROBLEMS})
def webhook_test(request, endpoint_id: int):
    """Queue a test event to the endpoint (active or not); the answer is its delivery, as queued."""
    require_admin(request)
    delivery = tasks.send_test_event(get_object_or_404(Endpoint, pk=endpoint_id), request.user.username)
    delivery.refresh_from_db()  # sent already by a backend that runs tasks at once
    return Status(202, delivery)
