"""What garbage collection announces to the apps built on it, which connect in their AppConfig.ready():
garbage_collection never imports them."""

from django.dispatch import Signal

# Sent with `run` (its GcRun) when a real collection has ended, done or failed, its outcome saved.
collection_finished = Signal()
