"""The API's answers, built from what the index's query functions and the engines return (catalog/queries.py,
catalog/storage.py, cleanup/audit.py, cleanup/jobs.py, cleanup/retention.py, garbage_collection/collection.py): the
pages and the API read the same rows; only the shape differs. The dashboard's own sentences are answered in English,
as the audit log's CSV keeps them, whatever language the caller's session reads."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation

from catalog import queries, storage
from catalog.models import Manifest, ManifestChild, Repository, SyncRun
from catalog.models import Tag as TagRow
from cleanup import jobs, retention
from cleanup.models import AuditEntry as AuditRow
from cleanup.models import DeleteJob, RetentionPolicy
from cleanup.plan import Plan
from cleanup.reasons import english
from garbage_collection import collection
from garbage_collection.models import GcRun


def repository(row: queries.RepositoryRow) -> dict:
    return {
        "name": row.name,
        "namespace": row.namespace,
        "tag_count": row.tag_count,
        "last_push": row.last_push,
        "newest_created": row.newest,
        "referenced_bytes": row.referenced,
        "unique_bytes": row.unique,
        "synced_at": row.synced_at,
    }


def layer(usage: storage.LayerUsage) -> dict:
    return {
        "digest": usage.digest,
        "media_type": usage.media_type,
        "size": usage.size,
        "repositories": list(usage.repositories),
        "tag_count": usage.tag_count,
    }


def repository_detail(
    row: queries.RepositoryRow, indexed: Repository, figures: storage.RepositoryStorage | None
) -> dict:
    usage = figures.usage if figures else None
    return {
        **repository(row),
        "referenced_bytes": usage.referenced if usage else 0,
        "unique_bytes": usage.unique if usage else 0,
        "verified_at": indexed.verified_at,
        "half_deleted_tags": [str(tag) for tag in indexed.half_deleted],
        "storage": {
            "referenced_bytes": usage.referenced if usage else 0,
            "unique_bytes": usage.unique if usage else 0,
            "shared_bytes": usage.shared if usage else 0,
            "largest_layers": [layer(one) for one in figures.layers] if figures else [],
        },
    }


def platforms(manifest: Manifest) -> list[str]:
    if manifest.is_index:
        return [str(platform) for platform in manifest.platforms]
    return [manifest.platform] if manifest.platform else []


def tag(row: TagRow, also_tagged: list[str], signatures: list[str]) -> dict:
    manifest = row.manifest
    return {
        "name": row.name,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "is_index": manifest.is_index,
        "platforms": platforms(manifest),
        "size": manifest.size,
        "created": manifest.created,
        "pushed_at": row.pushed_at if row.pushed_known else None,
        "also_tagged": also_tagged,
        "signatures": signatures,
    }


def tag_detail(row: TagRow, also_tagged: list[str], signatures: list[str]) -> dict:
    """One tag with its image's labels, and for a multi-platform image each platform image and attestation."""
    manifest = row.manifest
    links = ManifestChild.objects.filter(index=manifest).select_related("child").order_by("pk")
    return {
        **tag(row, also_tagged, signatures),
        "repository": row.repository.name,
        "config_digest": manifest.config_digest,
        "labels": {str(key): str(value) for key, value in sorted((manifest.labels or {}).items())},
        "images": [
            {
                "platform": link.platform,
                "digest": link.child.digest,
                "media_type": link.child.media_type,
                "size": link.child.size,
                "created": link.child.created,
            }
            for link in links
            if not link.is_attestation
        ],
        "attestations": [
            {"digest": link.child.digest, "media_type": link.child.media_type, "size": link.child.size}
            for link in links
            if link.is_attestation
        ],
        "error": manifest.error,
    }


def search_image(hit: queries.ManifestHit) -> dict:
    return {
        "digest": hit.manifest.digest,
        "media_type": hit.manifest.media_type,
        "platform": hit.manifest.platform,
        "labels": {str(key): str(value) for key, value in hit.labels},
        "tags": [{"repository": one.repository.name, "tag": one.name} for one in hit.tags],
        "more_tags": hit.more_tags,
    }


def search(results: queries.SearchResults) -> dict:
    kinds = (results.repositories, results.tags, results.digests, results.labels)
    return {
        "query": results.query,
        "repositories": [{"name": one.name, "tag_count": one.tag_count} for one in results.repositories.items],
        "tags": [
            {"repository": one.repository.name, "tag": one.name, "digest": one.manifest.digest}
            for one in results.tags.items
        ],
        "digests": [search_image(hit) for hit in results.digests.items],
        "labels": [search_image(hit) for hit in results.labels.items],
        "truncated": any(kind.more for kind in kinds),
    }


def registry_storage(figures: storage.RegistryStorage, volume: storage.Volume, largest: int) -> dict:
    return {
        "total_bytes": figures.total_bytes,
        "total_blobs": figures.total_blobs,
        "tag_count": figures.tag_count,
        "largest_repositories": [
            {
                "name": usage.name,
                "tag_count": usage.tag_count,
                "referenced_bytes": usage.referenced,
                "unique_bytes": usage.unique,
                "shared_bytes": usage.shared,
            }
            for usage in figures.repositories[:largest]
        ],
        "largest_layers": [layer(one) for one in figures.layers],
        "disk_used_bytes": volume.usage.used_bytes if volume.usage else None,
        "disk_free_bytes": volume.usage.free_bytes if volume.usage else None,
    }


def audit_entry(entry: AuditRow) -> dict:
    """The stored message: in English, as the CSV has it (the page shows it in the reader's language)."""
    return {
        "id": entry.pk,
        "timestamp": entry.timestamp,
        "source": entry.source,
        "user": entry.user,
        "address": entry.address,
        "action": entry.action,
        "repository": entry.repository,
        "tags": [str(one) for one in entry.tags],
        "digest": entry.digest,
        "outcome": entry.outcome,
        "message": entry.message,
        "bytes": entry.bytes,
        "job_id": entry.job_id,
    }


def sync_status(state: dict) -> dict:
    run: SyncRun | None = state["run"]
    return {
        "last_reconciled_at": state["registry"].last_reconciled_at,
        "checked_since": state["checked_since"],
        "reconcile_queued": state["queued"],
        "latest_run": None
        if run is None
        else {
            "kind": run.kind,
            "status": run.status,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "repositories_total": run.repositories_total,
            "repositories_done": run.repositories_done,
            "manifests_fetched": run.manifests_fetched,
            "errors": [
                {"repository": str(error.get("repository", "")), "error": str(error.get("error", ""))}
                for error in run.errors
                if isinstance(error, dict)
            ],
        },
    }


# --- Acting -------------------------------------------------------------------------------------------------------


def api_url(name: str, *args) -> str:
    return reverse(f"api-v1:{name}", args=args)


def delete_plan(plan: Plan) -> dict:
    with translation.override("en"):
        return {
            "tag_count": plan.tag_count,
            "bytes": plan.bytes,
            "deleted": [
                {"digest": step.digest, "tags": step.tags, "children": step.children, "bytes": step.bytes}
                for step in plan.manifest_steps
            ],
            "untagged": [
                {"tag": step.tags[0], "digest": step.digest, "reason": step.reason} for step in plan.untag_steps
            ],
            "moved": [
                {"tag": choice.tag, "chosen_digest": choice.digest, "digest_now": now} for choice, now in plan.moved
            ],
            "gone": [choice.tag for choice in plan.gone],
        }


def delete_job(job: DeleteJob, plan: Plan | None = None, refusal: str = "") -> dict:
    """A job; a draft with its plan (and why the registry would refuse now), any other with each tag's outcome."""
    with translation.override("en"):
        results = [] if job.status == DeleteJob.DRAFT else jobs.job_results(job)
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "repository": job.repository,
        "requested_by": job.requested_by,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "bytes_estimate": job.bytes_estimate,
        "error": job.error,
        "plan": delete_plan(plan) if plan is not None else None,
        "registry_refusal": refusal,
        "confirm_url": api_url("delete_confirm", job.pk) if job.status == DeleteJob.DRAFT else None,
        "results": results,
    }


def job_ref(job: DeleteJob | None) -> dict | None:
    return None if job is None else {"id": job.pk, "status": job.status, "url": api_url("delete_job_detail", job.pk)}


def retention_policy(row: dict) -> dict:
    """One of retention.policy_rows."""
    policy: RetentionPolicy = row["policy"]
    return {
        "id": policy.pk,
        "repositories": policy.repositories,
        "keep_newest": policy.keep_newest,
        "newest_by": policy.newest_by,
        "keep_days": policy.keep_days,
        "keep_regex": policy.keep_regex,
        "protect_regex": policy.protect_regex,
        "schedule": policy.schedule,
        "rules": english(retention.description(policy)),
        "matching_repositories": row["matching"],
        "created_by": policy.created_by,
        "created_at": policy.created_at,
        "last_run_at": policy.last_run_at,
        "latest_run": job_ref(row["job"]),
    }


def retention_preview(preview: retention.Preview) -> dict:
    with translation.override("en"):
        return {
            "tag_count": preview.tag_count,
            "bytes": preview.bytes,
            "unknown_pushed": preview.unknown_pushed,
            "synced_at": preview.synced_at,
            "repositories": [
                {
                    "name": repository.name,
                    "synced_at": repository.synced_at,
                    "going": [
                        {
                            "tag": going.tag.name,
                            "digest": going.tag.digest,
                            "untag_only": going.untag_only,
                            "reason": going.reason,
                        }
                        for going in repository.going
                    ],
                    "kept": repository.kept,
                    "bytes": repository.bytes,
                }
                for repository in preview.repositories
            ],
        }


def gc_run(run: GcRun) -> dict:
    collectable = collection.collectable(run)
    return {
        "id": run.pk,
        "dry_run": run.dry_run,
        "delete_untagged": run.delete_untagged,
        "status": run.status,
        "requested_by": run.requested_by,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "preview_id": run.preview_id,
        "exit_code": run.exit_code,
        "blobs_marked": run.blobs_marked,
        "blobs_eligible": run.blobs_eligible,
        "manifests_eligible": run.manifests_eligible,
        "bytes_estimate": run.bytes_estimate,
        "bytes_freed": run.bytes_freed,
        "error": run.error,
        "collectable": collectable,
        "collect_url": api_url("gc_collect", run.pk) if collectable else None,
        "log_url": api_url("gc_run_log", run.pk),
    }
