"""`mljobs tracking-server start|status|stop`: the workspace's loopback server in front of the embedded store.

Container jobs need it (they cannot open the host's SQLite file); one-shot commands use it while it lives,
which spares them importing MLflow."""

from __future__ import annotations

import click


@click.group(name="tracking-server")
def tracking_server() -> None:
    """The tracking server the engine starts on demand for container jobs (embedded store only)."""


@tracking_server.command()
def start() -> None:
    """Start the server (or find it running) and print its URL: later commands record through it."""
    from ..spec import SubmitError
    from ..tracking.server import server_url
    from ..tracking.store import resolve_tracking
    from .job import _user_errors

    config = resolve_tracking()
    with _user_errors():
        if not config.embedded:
            raise SubmitError(f"MLFLOW_TRACKING_URI names the store ({config.tracking_uri}): "
                              f"the workspace's own server is for the embedded store only")
        click.echo(server_url(config))


@tracking_server.command()
def status() -> None:
    """Print the server's URL and pid, or say that none runs."""
    from ..tracking.server import server_status
    from ..tracking.store import workspace_home

    state = server_status(workspace_home())
    click.echo(f"{state['url']} (pid {state['pid']})" if state else "not running")


@tracking_server.command()
def stop() -> None:
    """Stop the server; the next container job starts it again."""
    from ..tracking.server import stop_server
    from ..tracking.store import workspace_home

    click.echo("stopped" if stop_server(workspace_home()) else "not running")
