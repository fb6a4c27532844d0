"""Webhooks' background work on Django's Tasks framework: one task per delivery attempt.

An event becomes one delivery per subscribed endpoint, each attempted by a task. A failed attempt (no answer, a
timeout, a status other than 2xx) is tried again after WEBHOOK_RETRY_SECONDS, then 5 times longer each time, up to
WEBHOOK_MAX_ATTEMPTS. The retry is queued with `run_after` where the backend can defer (the database backend; RQ's
needs its scheduler); on every tick the scheduler also queues the attempts that are due and have no task to run them
(a backend that can't defer, a worker that died), so a retry is late by at most a tick, never lost. An attempt first
claims its delivery, so that two tasks for the same one send it once.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone
from django.utils.translation import gettext_noop

from cleanup.reasons import english, reason
from webhooks import delivery, events
from webhooks.models import Delivery, Endpoint

logger = logging.getLogger(__name__)
BACKOFF_FACTOR = 5
TICK_GRACE = timedelta(minutes=1)  # a deferred task this late has been lost: the tick queues another
DUE_PER_TICK = 200
KEPT_DAYS = 30  # finished deliveries are pruned from the log after this
ERROR_EXCERPT = 300  # characters of an endpoint's answer kept with the attempt


def queue_event(body: dict, endpoints=None) -> list[Delivery]:
    """One delivery of the event per active endpoint that chose its type (or to `endpoints` as given), each attempted
    by a task once the transaction commits."""
    if endpoints is None:
        endpoints = [point for point in Endpoint.objects.filter(active=True) if body["type"] in point.events]
    if not endpoints:
        return []
    with transaction.atomic():
        now = timezone.now()
        deliveries = Delivery.objects.bulk_create(
            Delivery(
                endpoint=point,
                event_id=body["id"],
                event_type=body["type"],
                payload=body,
                created_at=now,
                next_attempt_at=now,
            )
            for point in endpoints
        )
        for queued in deliveries:
            transaction.on_commit(lambda pk=queued.pk: attempt_delivery.enqueue(pk))
    return deliveries


def claim(delivery_id: int) -> Delivery | None:
    """The delivery, marked as being sent, when an attempt is due; None when another task has it or it is over. The
    claim lasts as long as an attempt can; after that the tick may try again (its worker died)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_READ_TIMEOUT + 60)
    due = Delivery.objects.filter(pk=delivery_id, status__in=Delivery.WAITING, next_attempt_at__lte=now)
    if not due.update(status=Delivery.SENDING, next_attempt_at=lease, last_attempt_at=now):
        return None
    return Delivery.objects.select_related("endpoint").get(pk=delivery_id)


@task
def attempt_delivery(delivery_id: int) -> str:
    """One attempt at a delivery; its status afterwards."""
    found = claim(delivery_id)
    if found is None:
        return "not due"
    body = json.dumps(found.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Registry-UI-Event": found.event_type,
        "X-Registry-UI-Delivery": str(found.event_id),
        delivery.SIGNATURE_HEADER: delivery.signature_header(found.endpoint.secret, body),
    }
    found.attempts += 1
    found.response_code = found.duration_ms = None
    found.response_excerpt = ""
    try:
        answer = delivery.post(found.endpoint.url, body, headers)
    except delivery.TargetRefused as exc:
        return finish(found, Delivery.FAILED, exc.why)  # the same address tomorrow: no retry
    except delivery.DeliveryError as exc:
        return finish(found, None, exc.why)
    found.response_code, found.duration_ms = answer.status, round(answer.seconds * 1000)
    found.response_excerpt = answer.body[:ERROR_EXCERPT].decode(errors="replace").strip()
    if answer.ok:
        return finish(found, Delivery.DELIVERED, None)
    if 300 <= answer.status < 400:
        return finish(
            found, None, reason(gettext_noop("Answered %(status)s: redirects are not followed."), status=answer.status)
        )
    return finish(found, None, reason(gettext_noop("Answered %(status)s."), status=answer.status))


def finish(found: Delivery, status: str | None, why) -> str:
    """Record the attempt: `status`, or (None) another attempt after the backoff while attempts are left."""
    now = timezone.now()
    if status is None and found.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = settings.WEBHOOK_RETRY_SECONDS * BACKOFF_FACTOR ** (found.attempts - 1)
        found.status, found.next_attempt_at = Delivery.RETRYING, now + timedelta(seconds=delay)
    else:
        found.status, found.next_attempt_at = status or Delivery.FAILED, None
    found.error, found.error_reason = english(why) if why else "", why
    fields = ["status", "attempts", "response_code", "duration_ms", "response_excerpt", "error", "error_reason"]
    found.save(update_fields=[*fields, "next_attempt_at"])
    if found.status == Delivery.RETRYING and attempt_delivery.get_backend().supports_defer:
        attempt_delivery.using(run_after=found.next_attempt_at).enqueue(found.pk)
    if found.status == Delivery.FAILED:
        logger.warning("Webhook delivery %s to %s failed: %s", found.pk, found.endpoint.name, found.error)
    return found.status


def queue_due_attempts(now=None, **signal) -> int:
    """The scheduler's tick (catalog.signals.scheduler_tick): queue the attempts that are due and that no task will
    make, and prune the log; how many were queued."""
    now = now or timezone.now()
    late = now - TICK_GRACE if attempt_delivery.get_backend().supports_defer else now
    due = Delivery.objects.filter(status__in=Delivery.WAITING, next_attempt_at__lte=late).order_by("next_attempt_at")
    ids = list(due.values_list("pk", flat=True)[:DUE_PER_TICK])
    for pk in ids:
        attempt_delivery.enqueue(pk)
    old = Delivery.objects.filter(created_at__lt=now - timedelta(days=KEPT_DAYS)).exclude(status__in=Delivery.WAITING)
    old.delete()
    return len(ids)


def send_test_event(endpoint: Endpoint, by: str) -> Delivery:
    """The page's and the API's "Send a test event": to this endpoint, active or not, whatever events it chose."""
    return queue_event(events.test_event(endpoint.name, by), endpoints=[endpoint])[0]
