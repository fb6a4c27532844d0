"""Reasons the dashboard writes down, read in the reader's language: each kind is written by the dashboard's own
code (a worker's in English, a rule change in its writer's language), then read on its page in Spanish, with its
parameters; the registry's own words inside stay as they came; rows written before reasons were stored show their
text as it was; the CSV stays in English."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from accounts import roles
from catalog import sync
from cleanup import run as delete_run
from cleanup import tasks as cleanup_tasks
from cleanup.models import AuditEntry, DeleteJob, RetentionPolicy
from cleanup.plan import Choice, Plan, Step, plan_repository
from garbage_collection import collection, exclusion
from garbage_collection.models import GcRun
from registry import bridge
from registry.client import LEFT_ON_PLACEHOLDER, NotFound, ReadOnly, RegistryError

DIGEST = "sha256:" + "a" * 64
MOVED_TO = "sha256:" + "b" * 64
SPANISH = {"HTTP_ACCEPT_LANGUAGE": "es"}


class TroubledRegistry:
    """The registry client's seam, for what a real registry can't easily be made to do on cue: refuse every delete
    as read-only, fail a tag's removal half way, say where a tag points now, take uploads when it should not."""

    def __init__(self, tags: dict[str, str] | None = None) -> None:
        self.tags = tags or {}

    def map(self, function, items):
        return [function(item) for item in items]

    def tag_delete_mode(self):
        raise ReadOnly("405 read-only")

    def delete_manifest(self, repository, digest):
        raise ReadOnly("405 read-only")

    def remove_tag(self, repository, tag, mode, digest=None):
        """As the client's throwaway removal fails when the placeholder's delete is refused and the tag can't be put
        back either."""
        error = RegistryError(f"The registry refused DELETE of {repository}'s placeholder: DENIED")
        error.note, error.note_params = LEFT_ON_PLACEHOLDER, {"placeholder": MOVED_TO}
        raise error

    def accepts_uploads(self, repository):
        return True

    def resolve(self, repository, tag):
        if tag not in self.tags:
            raise NotFound(f"{repository}:{tag} is not there.")
        return self.tags[tag]


def finished_job(**fields) -> DeleteJob:
    fields = {"status": DeleteJob.DONE, "selection": [["team/app", "old", DIGEST]], "total": 1, **fields}
    return DeleteJob.objects.create(registry=sync.current_registry(), kind=DeleteJob.TAGS, requested_by="t", **fields)


def page(client, name: str, *args) -> str:
    return client.get(reverse(name, args=args), **SPANISH).content.decode()


def test_a_jobs_outcomes_written_in_english_read_in_spanish_on_the_job_page_and_the_audit_log(client_for, db):
    job = finished_job(selection=[["team/app", "gone", DIGEST], ["team/app", "moved", DIGEST]], total=2)
    work = Plan([], [(Choice("team/app", "moved", DIGEST), MOVED_TO)], [Choice("team/app", "gone", DIGEST)], 0)
    with translation.override("en"):
        delete_run.record_untouched(job, work)
    browser = client_for(roles.MAINTAINER)
    for shown in [page(browser, "browser-delete-job", job.pk), page(browser, "browser-audit")]:
        assert "Ya no estaba en el registro." in shown
        assert f"Sin tocar: la etiqueta ahora apunta a {MOVED_TO[:19]}, no a la imagen elegida." in shown
        assert "Already gone" not in shown and "Left alone" not in shown


def test_a_refused_delete_and_the_steps_it_stopped_read_in_spanish(client_for, db, monkeypatch):
    """The dashboard's sentence for a read-only registry, alone and inside "Not attempted: …"."""
    monkeypatch.setattr(delete_run, "CHUNK", 1)  # the second step comes after the refusal
    job = finished_job(selection=[["team/app", "one", DIGEST], ["team/app", "two", MOVED_TO]], total=2)
    steps = [
        Step(AuditEntry.DELETE_MANIFEST, "team/app", digest, [tag])
        for tag, digest in [("one", DIGEST), ("two", MOVED_TO)]
    ]
    with translation.override("en"):
        delete_run.perform_all(job, TroubledRegistry(), steps, "native")
    read_only = "El registro está en modo de mantenimiento (solo lectura): no se puede eliminar nada hasta que termine."
    shown = page(client_for(roles.MAINTAINER), "browser-delete-job", job.pk)
    assert shown.count(read_only) == 2 and f"No se intentó: {read_only}" in shown
    assert "nothing can be deleted" not in shown


def test_what_else_happened_to_a_refused_removal_reads_in_spanish_after_the_registrys_words(client_for, db):
    job = finished_job()
    step = Step(AuditEntry.REMOVE_TAG, "team/app", DIGEST, ["old"])
    with translation.override("en"):
        delete_run.perform_all(job, TroubledRegistry({"old": DIGEST}), [step], "throwaway")
    shown = page(client_for(roles.MAINTAINER), "browser-delete-job", job.pk)
    refused = escape("The registry refused DELETE of team/app's placeholder: DENIED")
    assert f"{refused} La etiqueta apunta ahora a una imagen provisional vacía ({MOVED_TO}): vuelva a subirla." in shown


def test_why_a_tag_was_only_removed_reads_in_spanish(client_for, db):
    """The plan's reason (other tags keep the image), written to the entry of a removal that went through."""

    class Obliging(TroubledRegistry):
        def remove_tag(self, repository, tag, mode, digest=None):
            return None

    job = finished_job()
    steps = plan_repository("team/app", current={"old": DIGEST, "stable": DIGEST}, chosen={"old": DIGEST})
    with translation.override("en"):
        delete_run.perform_all(job, Obliging({"old": DIGEST}), steps, "native")
    shown = page(client_for(roles.MAINTAINER), "browser-delete-job", job.pk)
    assert "Otras etiquetas conservan esta imagen: stable." in shown and "Other tags keep" not in shown


def test_a_job_that_failed_says_why_in_spanish(client_for, db):
    refused = finished_job(status=DeleteJob.RUNNING, selection=[])
    stuck = finished_job(status=DeleteJob.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=2))
    with translation.override("en"):
        delete_run.carry_out(refused, TroubledRegistry(), None, [])
        delete_run.end_abandoned(sync.current_registry())
    browser = client_for(roles.MAINTAINER)
    assert "El registro está en modo de mantenimiento (solo lectura)" in page(browser, "browser-delete-job", refused.pk)
    shown = page(browser, "browser-delete-job", stuck.pk)
    assert shown.count("Abandonada: el proceso que la ejecutaba se detuvo.") == 2  # the job's error, and its tag's
    assert "Abandoned" not in shown


def test_a_job_held_back_by_a_collection_says_so_in_spanish(client_for, db, monkeypatch):
    monkeypatch.setattr(exclusion, "DELETE_WAIT_FOR_GC_SECONDS", 0.1)
    registry = sync.current_registry()
    alive = {"started_at": timezone.now(), "heartbeat_at": timezone.now()}
    GcRun.objects.create(registry=registry, requested_by="t", dry_run=False, status=GcRun.RUNNING, **alive)
    job = finished_job(status=DeleteJob.QUEUED)
    with translation.override("en"):
        cleanup_tasks.run_delete_job.call(job.pk)
    shown = page(client_for(roles.MAINTAINER), "browser-delete-job", job.pk)
    assert "La recolección de basura seguía en curso al cabo de una hora." in shown


def test_a_read_back_outcome_translates_around_the_registrys_own_words(client_for, db):
    """Composite: the dashboard's sentence (with where the tag points now), then what the entry said before: the
    registry's error when the answer was lost, kept as it came."""
    job = finished_job()
    lost = "Cannot connect to http://registry:5000: connection reset"
    unknown = {"job": job, "digest": DIGEST, "outcome": AuditEntry.UNKNOWN, "message": lost, "message_reason": lost}
    AuditEntry.objects.create(user="t", action=AuditEntry.REMOVE_TAG, repository="team/app", tags=["old"], **unknown)
    with translation.override("en"):
        delete_run.read_back_unknown(job, TroubledRegistry({"old": MOVED_TO}))
    entry = AuditEntry.objects.get(job=job)
    assert entry.message.startswith("Not removed: the registry stopped answering half way") and lost in entry.message
    shown = page(client_for(roles.MAINTAINER), "browser-audit")
    assert (
        f"No quitada: el registro dejó de responder a mitad, y la etiqueta apunta ahora a {MOVED_TO}. {lost}" in shown
    )


def test_a_collections_error_notes_and_audit_entry_read_in_spanish(client_for, db, settings):
    """A real run with no bridge: the storage can't be measured (a note around the bridge's words), and the
    registry still takes uploads (the run's error, and its audit entry)."""
    settings.GC_BRIDGE = "none"
    gc = GcRun.objects.create(registry=sync.current_registry(), requested_by="t", dry_run=False, status=GcRun.RUNNING)
    with translation.override("en"):
        collection.carry_out(gc, TroubledRegistry())
    unmeasured = (
        "GC_BRIDGE=none: the dashboard cannot measure the registry's storage; set GC_BRIDGE to docker or local."
    )
    assert f"# Storage size not measured: {unmeasured}" in gc.log  # the downloaded log stays as written
    browser = client_for(roles.ADMIN)
    shown = page(browser, "browser-gc-run", gc.pk)
    assert escape(f"# No se midió el tamaño del almacenamiento: {unmeasured}") in shown
    assert "El registro acepta subidas: ponlo antes en solo lectura" in shown
    assert "Storage size not measured" not in shown and "The registry accepts uploads" not in shown
    assert "El registro acepta subidas: ponlo antes en solo lectura" in page(browser, "browser-audit")


def test_a_collection_nothing_finished_says_why_in_spanish(client_for, db):
    registry = sync.current_registry()
    silent = GcRun.objects.create(
        registry=registry, requested_by="t", status=GcRun.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=2)
    )
    unclaimed = GcRun.objects.create(
        registry=registry, requested_by="t", created_at=timezone.now() - timedelta(hours=2)
    )
    with translation.override("en"):
        exclusion.expire_abandoned(registry)
    browser = client_for(roles.ADMIN)
    assert "Abandonada: el proceso que la ejecutaba se detuvo. Revisa el registro" in page(
        browser, "browser-gc-run", silent.pk
    )
    assert "Ningún proceso de tareas la tomó en una hora" in page(browser, "browser-gc-run", unclaimed.pk)


def test_a_collections_time_limit_and_blobs_deleted_read_in_spanish(client_for, db, settings):
    settings.GC_TIME_LIMIT = 7
    registry = sync.current_registry()
    stopped = GcRun.objects.create(registry=registry, requested_by="t", dry_run=False, status=GcRun.RUNNING)
    done = GcRun.objects.create(registry=registry, requested_by="t", dry_run=False, status=GcRun.DONE)
    with translation.override("en"):
        collection.record(stopped, bridge.Result(None, "", timed_out=True, seconds=7.0), collection.LogWriter(stopped))
        stopped.save()
        collection.audit(stopped)
        done.blobs_eligible = 12
        collection.audit(done)
    browser = client_for(roles.ADMIN)
    assert "Detenida tras 7 segundos (GC_TIME_LIMIT)." in page(browser, "browser-gc-run", stopped.pk)
    audit = page(browser, "browser-audit")
    assert "Detenida tras 7 segundos (GC_TIME_LIMIT)." in audit and "Blobs eliminados: 12." in audit
    assert "Stopped after" not in audit and "blobs deleted" not in audit


def test_a_rule_change_reads_in_the_readers_language_whoever_wrote_it(client_for, db):
    """Written in a request, in its writer's language: an English admin's change reads Spanish to a Spanish
    reader, plurals and the schedule included, and the Spanish admin's reads English to an English one."""
    policy = {"repositories": "shop/*", "keep_newest": "3", "newest_by": "pushed", "schedule": "daily"}
    admin = client_for(roles.ADMIN)
    admin.post(reverse("browser-retention"), {**policy, "keep_regex": "^v"}, HTTP_ACCEPT_LANGUAGE="en")
    created = RetentionPolicy.objects.get()
    changed = {**policy, "keep_newest": "1", "schedule": "weekly"}
    admin.post(reverse("browser-retention-edit", args=[created.pk]), changed, **SPANISH)
    spanish = page(admin, "browser-audit")
    assert (
        f"Creación: política de retención #{created.pk}. shop/*: conservar las 3 últimas imágenes subidas; "
        "conservar las etiquetas que coincidan con ^v; programación: diaria." in spanish
    )
    assert "conservar la última imagen subida; programación: semanal. Antes: shop/*: conservar las 3" in spanish
    english = admin.get(reverse("browser-audit"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert (
        f"Changed retention policy #{created.pk}. shop/*: keep the most recently pushed image; schedule: weekly."
        in (english)
    )


def test_rows_written_before_reasons_were_stored_show_their_text_as_it_was(client_for, db):
    old = "Left alone: the tag moved to sha256:cccccccccccc meanwhile."
    job = finished_job(status=DeleteJob.FAILED, error="Abandoned: the worker running it stopped.")
    AuditEntry.objects.create(user="t", action=AuditEntry.REMOVE_TAG, tags=["old"], job=job, message=old)
    gc = GcRun.objects.create(registry=sync.current_registry(), requested_by="t", status=GcRun.FAILED, error="Exit 3.")
    browser = client_for(roles.ADMIN)
    shown = page(browser, "browser-delete-job", job.pk)
    assert old in shown and "Abandoned: the worker running it stopped." in shown
    assert old in page(browser, "browser-audit")
    assert "Exit 3." in page(browser, "browser-gc-run", gc.pk)


def test_the_csv_keeps_the_english_a_worker_wrote(client_for, db):
    job = finished_job()
    with translation.override("en"):
        delete_run.record_untouched(job, Plan([], [], [Choice("team/app", "old", DIGEST)], 0))
    csv = client_for(roles.MAINTAINER).get(reverse("browser-audit-csv"), **SPANISH).getvalue().decode()
    assert "Already gone from the registry." in csv and "Ya no estaba" not in csv
