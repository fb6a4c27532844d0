"""Run retention policies now, for cron: every policy, or one with --policy; --dry-run only says what would go."""

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from catalog import sync
from cleanup import retention, run
from cleanup.models import DeleteJob, RetentionPolicy
from registry.client import RegistryError, get_client


class Command(BaseCommand):
    help = "Apply the retention policies: delete the tags no rule keeps (or, with --dry-run, list them)."

    def add_arguments(self, parser):
        parser.add_argument("--policy", type=int, metavar="ID", help="Run this policy only (default: every policy).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Read the registry and say what would go; delete nothing."
        )

    def handle(self, *args, policy=None, dry_run=False, **options):
        registry = sync.current_registry()
        policies = registry.retention_policies.all()
        if policy is not None:
            policies = policies.filter(pk=policy)
            if not policies:
                raise CommandError(f"There is no retention policy {policy}.")
        if not policies:
            self.stdout.write("There are no retention policies.")
        failed = False
        for item in policies:
            self.stdout.write(f"Policy {item.pk} ({item.repositories}): {retention.describe(item)}")
            try:
                failed |= self.dry_run(registry, item) if dry_run else self.run_now(item)
            except RegistryError as exc:
                self.stderr.write(f"  {exc.message}")
                failed = True
        if failed:
            raise CommandError("Some policies could not be applied in full.")

    def dry_run(self, registry, policy: RetentionPolicy) -> bool:
        retention.refresh(registry, policy)
        preview = retention.preview(registry, policy)
        for repository in preview.repositories:
            size = filesizeformat(repository.bytes)
            self.stdout.write(f"  {repository.name}: {len(repository.going)} to go, {repository.kept} kept, {size}")
            for item in repository.going:
                note = f" (only untagged: {item.reason})" if item.untag_only else ""
                self.stdout.write(f"    {item.tag.name} {item.tag.digest[:19]}{note}")
        self.stdout.write(f"  {preview.tag_count} tags would go; {filesizeformat(preview.bytes)} freed after GC.")
        return False

    def run_now(self, policy: RetentionPolicy) -> bool:
        job = run.run(retention.new_run(policy, "cli"), get_client(), retention.chooser(policy))
        self.stdout.write(
            f"  {job.status}: {job.done} of {job.total} tags handled, {job.failed} failed, "
            f"{filesizeformat(job.bytes_estimate)} freed after GC (estimate)."
        )
        if job.error:
            self.stderr.write(f"  {job.error}")
        return job.status != DeleteJob.DONE or job.failed > 0
