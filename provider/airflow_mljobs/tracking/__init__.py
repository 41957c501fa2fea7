"""MLflow as the job record: one run per job, its tags, status, logs and artifacts. All MLflow I/O is here."""

from .database import StoreError, ensure_store
from .pending import replay_all, replay_pending
from .record import JobRecord, Tracker, open_tracker
from .store import TrackingConfig, resolve_tracking

__all__ = ["JobRecord", "StoreError", "Tracker", "TrackingConfig", "ensure_store", "open_tracker", "replay_all",
           "replay_pending", "resolve_tracking"]
