"""Garbage collection from cron: `manage.py registry_gc [--dry-run]`, with the same safety as the button
(one run at a time, read-only while collecting, restart afterwards). Prints the log as it comes."""

from django.core.management.base import BaseCommand, CommandError

from catalog import sync
from garbage_collection import collection, exclusion
from garbage_collection.models import GcRun


class Command(BaseCommand):
    help = "Run the registry's garbage collection through the configured bridge (GC_BRIDGE)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be deleted; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        try:
            run = collection.new_run(sync.current_registry(), dry_run=dry_run, user="cli")
        except exclusion.Busy as exc:
            raise CommandError(str(exc)) from None
        run = collection.run(run)
        self.stdout.write(run.log)
        freed = "" if run.bytes_freed is None else f", {run.bytes_freed:,} bytes freed"
        self.stdout.write(
            f"{run.status}: {run.blobs_eligible} blobs and {run.manifests_eligible} manifests eligible, "
            f"about {run.bytes_estimate or 0:,} bytes{freed}."
        )
        if run.status != GcRun.DONE:
            raise CommandError(run.error or "The garbage collection failed.")
