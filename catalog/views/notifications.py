"""The endpoint the registry's `notifications.endpoints` posts events to (see README)."""

import hmac
import json
from datetime import UTC

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from catalog import sync, tasks
from catalog.models import RegistryEvent
from registry import counters
from registry.client import DIGEST_RE, IMAGE_TYPES, INDEX_TYPES, REPOSITORY_RE, TAG_RE, storable

EVENT_TYPES = {
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",
    "application/json",
}


@csrf_exempt  # the registry is no browser: the shared secret is the protection
@login_not_required
@require_POST
def notifications_receive(request):
    """Record each new push or delete once (by event id) and queue the index update it calls for."""
    secret = settings.REGISTRY_NOTIFICATIONS_SECRET
    if not secret:
        return HttpResponse("Notifications are off: set REGISTRY_NOTIFICATIONS_SECRET.", status=404)
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {secret}".encode()):
        return HttpResponse("Wrong or missing Authorization header.", status=401)
    if request.content_type not in EVENT_TYPES:
        return HttpResponse("Expected a registry event envelope.", status=415)
    events, problem = read_envelope(request.body)
    if problem:
        return HttpResponse(problem, status=400)
    if len(events) > settings.REGISTRY_NOTIFICATIONS_MAX_EVENTS:
        limit = settings.REGISTRY_NOTIFICATIONS_MAX_EVENTS
        return HttpResponse(f"At most {limit} events per request (REGISTRY_NOTIFICATIONS_MAX_EVENTS).", status=413)
    registry = sync.current_registry()
    for event in events:
        counters.count_received(str(event["action"]))
    accepted = sum(1 for event in events if accept(registry, event))
    return JsonResponse({"accepted": accepted})


def read_envelope(body: bytes) -> tuple[list[dict], str]:
    """The events of an envelope, or why it is refused: nothing is recorded from an envelope with a bad event."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return [], "Expected JSON (not nested deeper than JSON allows here) with an events list."
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        return [], "Expected JSON with an events list."
    for number, event in enumerate(events, 1):
        if not isinstance(event, dict):
            return [], f"Event {number} is not an object."
        for key in ("target", "actor", "request", "source"):
            if key in event and not isinstance(event[key], dict | None):
                return [], f"Event {number}: {key} is not an object."
        if not isinstance(event.get("id"), str | int) or not isinstance(event.get("action"), str):
            return [], f"Event {number} has no id or action."
    return events, ""


def accept(registry, event: dict) -> bool:
    """Record one event and queue its work; False for duplicates and events the index ignores."""
    target = event.get("target") if isinstance(event.get("target"), dict) else {}
    repository, tag, digest = (str(target.get(key) or "") for key in ("repository", "tag", "digest"))
    action = event.get("action")
    if action not in ("push", "delete") or not REPOSITORY_RE.match(repository) or not event.get("id"):
        return False
    if action == "push" and (target.get("mediaType") not in INDEX_TYPES | IMAGE_TYPES or not TAG_RE.match(tag)):
        return False  # layer uploads and the untagged children of an index: nothing for the index to do
    if (digest and not DIGEST_RE.match(digest)) or (tag and not TAG_RE.match(tag)):
        return False
    try:
        with transaction.atomic():
            # A delete also goes to the audit log (cleanup listens to this model's post_save), in this transaction.
            RegistryEvent.objects.create(
                event_id=storable(str(event["id"]))[:100],
                registry=registry,
                action=action,
                repository=repository,
                tag=tag,
                digest=digest,
                media_type=storable(str(target.get("mediaType") or ""))[:200],
                actor=storable(str((event.get("actor") or {}).get("name") or ""))[:150],
                address=storable(str((event.get("request") or {}).get("addr") or ""))[:100],
                timestamp=event_time(event),
            )
    except IntegrityError:
        counters.count_duplicate()
        return False  # delivered before: the registry retries until it sees a 2xx
    if action == "push":
        when = event_time(event)
        tasks.apply_push.enqueue(repository, tag, digest, when.isoformat() if when else "")
    else:
        tasks.apply_delete.enqueue(repository, digest, tag)
    return True


def event_time(event: dict):
    """The event's timestamp, aware; None when missing or impossible (month 13), rather than a 500."""
    try:
        parsed = parse_datetime(str(event.get("timestamp") or ""))
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed
