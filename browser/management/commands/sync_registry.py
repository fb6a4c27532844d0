"""Reconcile the index with the registry: once (for cron), for one repository, or every N seconds (the
scheduler the run command starts beside the task worker, which also queues the retention runs that are due)."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError

from browser import collection, index, retention, tasks
from browser.models import SyncRun
from browser.registry import RegistryError, get_client

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Bring the index in step with the registry."

    def add_arguments(self, parser):
        parser.add_argument("--repository", help="Sync this repository only.")
        parser.add_argument(
            "--every", type=float, metavar="SECONDS", help="Keep running; queue a full reconcile this often."
        )

    def handle(self, *args, repository=None, every=None, **options):
        if every is not None:
            return self.schedule(every)
        client, registry = get_client(), index.current_registry()
        if repository:
            try:
                fetched = index.sync_repository(client, registry, repository)
            except RegistryError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(f"{repository}: {fetched} new manifests indexed.")
            return
        run = index.reconcile(client, registry)
        self.stdout.write(
            f"{run.status}: {run.repositories_done} of {run.repositories_total} repositories, "
            f"{run.manifests_fetched} manifests fetched, {len(run.errors)} errors."
        )
        for error in run.errors:
            self.stderr.write(f"  {error['repository'] or 'registry'}: {error['error']}")
        if run.status != SyncRun.DONE:
            raise CommandError("The reconcile did not finish.")

    def schedule(self, interval: float) -> None:
        if interval <= 0:
            raise CommandError("--every needs a number of seconds above 0.")
        while True:
            tasks.start_reconcile()
            self.queue_retention()
            self.queue_collection()
            time.sleep(interval)

    def queue_collection(self) -> None:
        try:
            collection.queue_due(index.current_registry())  # GC_SCHEDULE: off unless set
        except Exception:
            logger.exception("Queuing a scheduled garbage collection failed")

    def queue_retention(self) -> None:
        try:
            retention.queue_due()
        except Exception:  # the scheduler must outlive a bad tick (a database hiccup, a broken policy)
            logger.exception("Queuing the due retention runs failed")
