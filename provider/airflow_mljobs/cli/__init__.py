"""`mljobs`: the command line front door, in the shape of `az ml job` and `az ml compute`."""

from __future__ import annotations

import click

from .compute import compute
from .environment import environment
from .job import job
from .tracking_server import tracking_server


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="airflow-provider-mljobs")
def main() -> None:
    """Run Azure ML CLI 2.0 job YAML on local processes, Docker and Kubernetes, with MLflow as the record."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # store set-up chatter is not the user's concern
    _exit_without_final_collection()


def _exit_without_final_collection() -> None:
    """A command that opened the store has MLflow, pandas and SQLAlchemy loaded, and the interpreter's last
    garbage collection over them takes ~0.3-0.5 s of a 2 s command. Nothing in them needs finalizing (files
    are flushed and the store's writes committed), so their objects are frozen out of that collection.
    Registered as the command starts, the freeze runs after the exit handlers of all it loads later (exit
    handlers run last registered, first run); it stops no handler, it only spares the collection."""
    import atexit
    import gc

    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


main.add_command(job)
main.add_command(compute)
main.add_command(environment)
main.add_command(tracking_server)
