"""`mljobs tracking-server status|stop`: the loopback server that container jobs use with the embedded store."""

from __future__ import annotations

import click


@click.group(name="tracking-server")
def tracking_server() -> None:
    """The tracking server the engine starts on demand for container jobs (embedded store only)."""


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
