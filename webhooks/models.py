"""Outgoing webhooks: the endpoints admins add, and every delivery of an event to one of them."""

import uuid
from urllib.parse import urlsplit

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cleanup import reasons
from cleanup.models import STORED_REASON
from webhooks import events


class Endpoint(models.Model):
    """Where events are posted. The secret signs every delivery, so it is kept as it was typed (a hash could not
    sign); no page or API answer shows it after it is saved."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list, help_text="The event types it receives (webhooks/events.py).")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self):
        return self.name

    @property
    def event_labels(self) -> list[str]:
        return [str(events.EVENT_LABELS[name]) for name in self.events if name in events.EVENT_LABELS]

    @property
    def url_shown(self) -> str:
        """The URL's scheme and host only: a chat's incoming-webhook URL is itself a secret."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


class Delivery(models.Model):
    """One event for one endpoint, and how its attempts went. An event sent to several endpoints has one
    delivery each, with the same event id."""

    PENDING, SENDING, RETRYING, DELIVERED, FAILED = "pending", "sending", "retrying", "delivered", "failed"
    STATUSES = [
        (PENDING, "pending"),
        (SENDING, "sending"),
        (RETRYING, "retrying"),
        (DELIVERED, "delivered"),
        (FAILED, "failed"),
    ]
    WAITING = [PENDING, SENDING, RETRYING]  # an attempt is still to come (a "sending" one may have lost its worker)

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    event_type = models.CharField(max_length=50)
    payload = models.JSONField(help_text="The body posted, as JSON.")
    status = models.CharField(max_length=20, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True, help_text="The last attempt's.")
    error = models.TextField(blank=True, help_text="Why the last attempt failed, in English.")
    error_reason = models.JSONField(null=True, blank=True, help_text=STORED_REASON)
    response_excerpt = models.TextField(blank=True, help_text="The start of the last answer's body.")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the next attempt is due.")
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_created"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next"),
        ]

    @property
    def event_label(self) -> str:
        return str(events.EVENT_LABELS.get(self.event_type, _("Test event")))

    @property
    def shown_error(self) -> str:
        """Why the last attempt failed, in the reader's language."""
        return self.error if self.error_reason is None else reasons.shown(self.error_reason)

    @property
    def waiting(self) -> bool:
        return self.status in self.WAITING
