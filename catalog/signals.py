"""What the index announces to the apps built on it, which connect in their AppConfig.ready(): catalog never
imports them."""

from django.dispatch import Signal

# Sent on every tick of the scheduler (`sync_registry --every`), after it queues a reconcile: cleanup queues the
# retention runs that are due, garbage_collection a scheduled collection.
scheduler_tick = Signal()

# Sent with `repository`, `tag`, `digest` and `size` (the image's bytes) once a push the registry notified is in the
# index.
tag_pushed = Signal()

# Sent with `run` (its SyncRun) and `error` when a reconcile fails because the registry can't be read.
reconcile_failed = Signal()

# Sent with `volume` (storage.Volume) when a measurement of the registry's disk finds it above GC_DISK_WARN_PERCENT
# after one that did not (or after a day).
disk_above_warning = Signal()
