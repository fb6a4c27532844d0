from django.apps import AppConfig
from django.db.models.signals import post_save


class CleanupConfig(AppConfig):
    name = "cleanup"
    verbose_name = "Deleting, retention and the audit log"

    def ready(self):
        from catalog.models import RegistryEvent
        from catalog.signals import scheduler_tick
        from cleanup import audit, tasks

        post_save.connect(audit.record_registry_delete, sender=RegistryEvent, dispatch_uid="cleanup-registry-delete")
        scheduler_tick.connect(tasks.queue_due_retention, dispatch_uid="cleanup-retention")
        scheduler_tick.connect(tasks.end_abandoned_jobs, dispatch_uid="cleanup-abandoned")
