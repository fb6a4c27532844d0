"""A running job's sign of life: stamped while it runs, whatever it waits for; silence for a minute means its worker
is gone, and then it blocks nothing."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from catalog import heartbeat, sync
from catalog import tasks as catalog_tasks
from catalog.models import SyncRun


@pytest.mark.django_db(transaction=True)  # the stamps come from a thread of their own, with its own connection
def test_a_job_waiting_on_one_long_step_keeps_stamping(monkeypatch):
    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.05)
    run = SyncRun.objects.create(registry=sync.current_registry(), kind=SyncRun.FULL)
    stamps = set()
    with heartbeat.heartbeat(run):
        for _ in range(8):
            time.sleep(0.05)
            stamps.add(SyncRun.objects.get(pk=run.pk).heartbeat_at)
    assert len(stamps) >= 3
    assert not SyncRun.objects.filter(heartbeat.silent(), pk=run.pk).exists()


@pytest.mark.django_db
def test_silence_for_a_minute_or_an_old_run_never_stamped_means_its_worker_is_gone():
    registry, now = sync.current_registry(), timezone.now()

    def run(**fields):
        return SyncRun.objects.create(registry=registry, kind=SyncRun.FULL, **fields).pk

    alive = run(heartbeat_at=now - timedelta(seconds=30))
    silent = run(heartbeat_at=now - timedelta(seconds=61))
    old_unstamped = run(started_at=now - timedelta(hours=7))
    new_unstamped = run(started_at=now - timedelta(hours=1))
    found = set(SyncRun.objects.filter(heartbeat.silent(now)).values_list("pk", flat=True))
    assert found == {silent, old_unstamped} and not {alive, new_unstamped} & found


@pytest.mark.django_db
def test_a_reconcile_whose_worker_died_does_not_stop_the_scheduler_from_queuing_the_next(settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    registry = sync.current_registry()
    killed = SyncRun.objects.create(registry=registry, kind=SyncRun.FULL, heartbeat_at=timezone.now())
    assert catalog_tasks.start_reconcile() is False  # its worker may still be at it
    SyncRun.objects.filter(pk=killed.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert catalog_tasks.start_reconcile() is True
    killed.refresh_from_db()
    assert killed.status == SyncRun.FAILED


@pytest.mark.django_db
def test_the_scheduler_reads_the_lists_every_interval_and_starts_the_sweep_at_most_once_an_interval(settings):
    """The tags lists never wait behind a sweep that is still asking about every tag."""
    from django.tasks import default_task_backend

    from catalog.management.commands.sync_registry import Command

    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}}
    registry = sync.current_registry()

    def queued_after_a_tick() -> list[bool]:
        default_task_backend.clear()
        Command().tick(interval=600)
        return [result.kwargs["verify"] for result in default_task_backend.results]

    assert queued_after_a_tick() == [False, True]  # the lists, then the sweep
    sweep = SyncRun.objects.create(registry=registry, kind=SyncRun.FULL, heartbeat_at=timezone.now())
    assert queued_after_a_tick() == [False]  # the sweep is running: the lists still go
    SyncRun.objects.filter(pk=sweep.pk).update(status=SyncRun.DONE, started_at=timezone.now() - timedelta(seconds=30))
    assert queued_after_a_tick() == [False]  # it began within the interval
    SyncRun.objects.filter(pk=sweep.pk).update(started_at=timezone.now() - timedelta(seconds=601))
    assert queued_after_a_tick() == [False, True]
    SyncRun.objects.create(registry=registry, kind=SyncRun.LISTS, heartbeat_at=timezone.now())
    assert queued_after_a_tick() == [True]  # a lists reconcile still running is not started twice


@pytest.mark.django_db(transaction=True)
def test_a_job_run_inside_a_transaction_ends_without_waiting_on_its_own_row_lock(monkeypatch):
    """Tasks that run at once run inside the request's transaction, which holds the row's lock: a stamping thread
    with its own connection waited on it (PostgreSQL: for ever) while the job waited for that thread."""
    monkeypatch.setattr(heartbeat, "HEARTBEAT_SECONDS", 0.05)
    run = SyncRun.objects.create(registry=sync.current_registry(), kind=SyncRun.FULL)
    finished = threading.Event()

    def job() -> None:
        try:
            with transaction.atomic():
                SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.RUNNING)
                with heartbeat.heartbeat(run):
                    time.sleep(0.3)
            finished.set()
        finally:
            connections.close_all()

    threading.Thread(target=job, daemon=True).start()
    assert finished.wait(5)
