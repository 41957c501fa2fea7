"""MLflow as the job record: one run per job, its tags, status, logs and artifacts. All MLflow I/O is here."""

from .record import JobRecord, Tracker, open_tracker
from .store import TrackingConfig, resolve_tracking

__all__ = ["JobRecord", "Tracker", "TrackingConfig", "open_tracker", "resolve_tracking"]
