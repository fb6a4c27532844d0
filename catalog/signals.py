"""What the index announces to the apps built on it, which connect in their AppConfig.ready(): catalog never
imports them."""

from django.dispatch import Signal

# Sent on every tick of the scheduler (`sync_registry --every`), after it queues a reconcile: cleanup queues the
# retention runs that are due, garbage_collection a scheduled collection.
scheduler_tick = Signal()
