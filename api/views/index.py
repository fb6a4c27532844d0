"""The index through the API: its state (as the home page's card shows it), and a Refresh, which queues a full
reconcile as the home page's button does (any signed-in role: it only reads the registry)."""

from ninja import Router, Status

from api import answers, schemas
from catalog import queries, sync, tasks

router = Router(tags=["index"])


@router.get("/sync", response={200: schemas.SyncStatus, **schemas.READING_PROBLEMS})
def sync_status(request):
    """The index's state: the latest reconcile and its progress, and since when every tag's digest was checked."""
    return answers.sync_status(queries.index_state(sync.current_registry()))


@router.post("/sync", response={200: schemas.Refresh, 202: schemas.Refresh, **schemas.READING_PROBLEMS})
def sync_start(request):
    """Refresh the index: queue a full reconcile (every tag's digest asked about). 202 when queued; 200 when one is
    already running, which goes on."""
    queued = tasks.start_reconcile()
    status = answers.sync_status(queries.index_state(sync.current_registry()))
    return Status(202 if queued else 200, {"queued": queued, "status": status})
