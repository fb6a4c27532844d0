"""Fill a database of the version before the split (one `browser` app) with one of everything."""
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from browser import auth, tasks
from browser.models import (AuditEntry, Blob, DeleteJob, GcRun, Manifest, ManifestBlob, ManifestChild, Registry,
                            RegistryEvent, Repository, RetentionPolicy, SyncRun, Tag)

now = timezone.now().replace(microsecond=0)
registry = Registry.objects.create(name="registry.example.com", url="http://127.0.0.1:5999", tag_delete="throwaway",
                                   delete_status="enabled", last_reconciled_at=now)
config = Blob.objects.create(digest="sha256:" + "c" * 64, size=1500, media_type="application/vnd.docker.container.image.v1+json")
layer = Blob.objects.create(digest="sha256:" + "d" * 64, size=3_000_000, media_type="application/vnd.docker.image.rootfs.diff.tar.gzip")
image = Manifest.objects.create(digest="sha256:" + "1" * 64, media_type="application/vnd.docker.distribution.manifest.v2+json",
                                size=3_001_500, created=now - timedelta(days=3), platform="linux/amd64",
                                config_digest=config.digest, labels={"team": "payments"})
ManifestBlob.objects.create(manifest=image, blob=config, position=-1)
ManifestBlob.objects.create(manifest=image, blob=layer, position=0)
index = Manifest.objects.create(digest="sha256:" + "2" * 64, media_type="application/vnd.oci.image.index.v1+json",
                                is_index=True, size=3_001_500, platforms=["linux/amd64"])
ManifestChild.objects.create(index=index, child=image, platform="linux/amd64")
api = Repository.objects.create(registry=registry, name="shop/api", synced_at=now)
Repository.objects.create(registry=registry, name="shop/empty", synced_at=now)
for name, manifest in [("1.0", image), ("latest", image), ("multi", index)]:
    Tag.objects.create(repository=api, name=name, manifest=manifest, pushed_at=now - timedelta(days=1))
SyncRun.objects.create(registry=registry, kind=SyncRun.FULL, status=SyncRun.DONE, finished_at=now, repositories_total=2,
                       repositories_done=2, manifests_fetched=2)
RegistryEvent.objects.create(event_id="event-1", registry=registry, action="delete", repository="shop/api",
                             digest="sha256:" + "9" * 64, actor="alice", timestamp=now)

alice, carol = User.objects.create(username="alice"), User.objects.create(username="carol")
for user in (alice, carol):
    user.set_unusable_password()
    user.save()
auth.set_role(alice, auth.MAINTAINER)
auth.set_role(carol, auth.ADMIN)

policy = RetentionPolicy.objects.create(registry=registry, repositories="shop/*", keep_newest=10, schedule="daily",
                                        created_by="carol", last_run_at=now - timedelta(days=2))
done = DeleteJob.objects.create(registry=registry, kind=DeleteJob.TAG, repository="shop/api", requested_by="alice",
                                address="10.0.0.5", selection=[["shop/api", "0.9", "sha256:" + "8" * 64]],
                                status=DeleteJob.DONE, total=1, done=1, bytes_estimate=1234, started_at=now,
                                finished_at=now)
DeleteJob.objects.create(registry=registry, kind=DeleteJob.TAGS, repository="shop/api", requested_by="alice",
                         selection=[["shop/api", "1.0", image.digest]], status=DeleteJob.DRAFT, total=1)
queued = DeleteJob.objects.create(registry=registry, kind=DeleteJob.RETENTION, policy=policy, requested_by="schedule",
                                  status=DeleteJob.QUEUED)
AuditEntry.objects.create(user="alice", address="10.0.0.5", action=AuditEntry.REMOVE_TAG, repository="shop/api",
                          tags=["0.9"], digest="sha256:" + "8" * 64, bytes=1234, job=done, message="Removed.")
AuditEntry.objects.create(user="carol", action=AuditEntry.RULE_CHANGE, repository="shop/*", message="Created policy.")
AuditEntry.objects.create(source=AuditEntry.REGISTRY, user="alice", action=AuditEntry.REGISTRY_DELETE,
                          repository="shop/api", digest="sha256:" + "9" * 64)
dry = GcRun.objects.create(registry=registry, dry_run=True, requested_by="carol", status=GcRun.DONE, started_at=now,
                           finished_at=now, log="1 blobs marked, 2 blobs and 0 manifests eligible for deletion",
                           exit_code=0, blobs_marked=1, blobs_eligible=2, manifests_eligible=0, bytes_estimate=4096)
GcRun.objects.create(registry=registry, dry_run=False, preview=dry, requested_by="carol", status=GcRun.DONE,
                     started_at=now, finished_at=now, exit_code=0, blobs_eligible=2, used_before=10_000,
                     used_after=6_000, log="collected")
AuditEntry.objects.create(user="carol", action=AuditEntry.GARBAGE_COLLECTION, bytes=4000, message="2 blobs deleted.")
tasks.run_delete_job.enqueue(queued.pk)  # still queued when the new version arrives
print("populated")
