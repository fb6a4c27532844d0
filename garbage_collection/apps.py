from django.apps import AppConfig


class GarbageCollectionConfig(AppConfig):
    name = "garbage_collection"
    label = "gc"
    verbose_name = "Garbage collection"

    def ready(self):
        from catalog.signals import scheduler_tick
        from cleanup.signals import delete_job_starting
        from garbage_collection import exclusion, tasks

        delete_job_starting.connect(exclusion.delete_waits_for_collection, dispatch_uid="gc-delete-waits")
        scheduler_tick.connect(tasks.queue_due_gc, dispatch_uid="gc-schedule")
