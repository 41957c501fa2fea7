"""Where a person sees a run: its page in the MLflow UI that serves the store.

A tracking server serves its UI at its own address; the embedded store has one only while the workspace's
tracking server runs. Credentials in a tracking URI never go into a link.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .store import TrackingConfig


def run_page(config: TrackingConfig, experiment_id: str, run_id: str) -> str | None:
    """The run's page (the address MLflow's own client prints after a run), or None when no UI serves the store."""
    ui = ui_address(config)
    return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}" if ui else None


def ui_address(config: TrackingConfig) -> str | None:
    if config.embedded:
        from .server import server_status

        state = server_status(config.home)
        return state["url"] if state else None
    parts = urlsplit(config.tracking_uri)
    if parts.scheme not in ("http", "https"):
        return None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
