"""The audit log's entries that come from outside the delete engine: the registry's own delete notifications."""

from django.utils import timezone

from catalog.models import RegistryEvent
from cleanup.models import AuditEntry


def record_registry_delete(sender, instance: RegistryEvent, created: bool, **kwargs) -> None:
    """A delete the registry reported (made past the dashboard, or by it) goes to the audit log too. Connected to
    RegistryEvent's post_save, so it is written in the transaction that records the event."""
    if not created or instance.action != "delete":
        return
    AuditEntry.objects.create(
        source=AuditEntry.REGISTRY,
        user=instance.actor,
        address=instance.address,
        action=AuditEntry.REGISTRY_DELETE,
        repository=instance.repository,
        tags=[instance.tag] if instance.tag else [],
        digest=instance.digest,
        outcome=AuditEntry.DONE,
        timestamp=instance.timestamp or timezone.now(),
    )
