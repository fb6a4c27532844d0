"""What cleanup announces to the apps built on it, which connect in their AppConfig.ready(): cleanup never
imports them."""

from django.dispatch import Signal

# Sent with `job` when a delete job's task is about to start. A receiver may hold the job back until it can go
# (garbage_collection waits for a running collection) and returns a stored reason (cleanup/reasons.py) when it
# must not go at all; the job then fails with that reason.
delete_job_starting = Signal()

# Sent with `job` and `deleted`, [(repository, tag, digest, bytes), …], for the tags a delete job has just taken from
# the registry.
tags_deleted = Signal()

# Sent with `job` when a delete job or a retention run has ended (done or failed), its outcomes written.
delete_job_finished = Signal()
