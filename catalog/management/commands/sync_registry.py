"""Reconcile the index with the registry: once (for cron), for one repository, or every N seconds (the
scheduler the run command starts beside the task worker: each tick also lets cleanup queue the retention runs
that are due and garbage_collection a scheduled collection, through catalog.signals.scheduler_tick)."""

import logging
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from catalog import sync, tasks
from catalog.models import SyncRun
from catalog.signals import scheduler_tick
from registry.client import RegistryError, get_client

logger = logging.getLogger(__name__)
WATCH_SECONDS = 30  # the longest the scheduler sleeps between two ticks


class Command(BaseCommand):
    help = "Bring the index in step with the registry."

    def add_arguments(self, parser):
        parser.add_argument("--repository", help="Sync this repository only.")
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Keep running; read the tags lists this often, and ask about every tag's digest at most this often.",
        )

    def handle(self, *args, repository=None, every=None, **options):
        if every is not None:
            return self.schedule(every)
        client, registry = get_client(), sync.current_registry()
        if repository:
            try:
                fetched = sync.sync_repository(client, registry, repository)
            except RegistryError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(f"{repository}: {fetched} new manifests indexed.")
            return
        run = sync.reconcile(client, registry)
        self.stdout.write(
            f"{run.status}: {run.repositories_done} of {run.repositories_total} repositories, "
            f"{run.manifests_fetched} manifests fetched, {len(run.errors)} errors."
        )
        for error in run.errors:
            self.stderr.write(f"  {error['repository'] or 'registry'}: {error['error']}")
        if run.status != SyncRun.DONE:
            raise CommandError("The reconcile did not finish.")

    def schedule(self, interval: float) -> None:
        """Queue a reconcile every `interval` seconds; tick at least every WATCH_SECONDS, so the other apps' periodic
        work (due retention runs and collections, jobs whose worker stopped) is never long in coming."""
        if interval <= 0:
            raise CommandError("--every needs a number of seconds above 0.")
        next_reconcile = time.monotonic()
        while True:
            reconcile = time.monotonic() >= next_reconcile
            if reconcile:
                next_reconcile = time.monotonic() + interval
            self.tick(reconcile=reconcile, interval=interval)
            time.sleep(min(interval, WATCH_SECONDS))

    def tick(self, reconcile: bool = True, interval: float = 600) -> None:
        """Queue a reconcile of the tags lists (tags added and removed), and the sweep (a full reconcile: has any
        tag moved?) unless one runs or began within the interval, then let the other apps queue their periodic
        work. The sweep, paced by REGISTRY_SWEEP_RATE, may take longer than an interval; the lists never wait for
        it. The scheduler must outlive a bad tick (a database hiccup, a broken policy)."""
        if reconcile:
            try:
                tasks.start_reconcile(verify=False)
                tasks.start_reconcile(verify=True, not_since=timezone.now() - timedelta(seconds=interval))
            except Exception:
                logger.exception("Queuing a reconcile failed")
        for receiver, outcome in scheduler_tick.send_robust(sender=self.__class__):
            if isinstance(outcome, Exception):
                logger.error("The scheduler's %s failed", receiver.__qualname__, exc_info=outcome)
