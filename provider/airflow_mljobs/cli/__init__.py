"""`mljobs`: the command line front door, in the shape of `az ml job` and `az ml compute`."""

from __future__ import annotations

import click

from ..loading import skip_teardown_at_exit
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
    # a Ctrl-C that lands inside a read of the SQLite store makes SQLAlchemy's pool log the cursor it could not
    # close, with a traceback; the command says what the interrupt did
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    skip_teardown_at_exit()  # placed first, so it runs after the exit handlers of all a command loads


main.add_command(job)
main.add_command(compute)
main.add_command(environment)
main.add_command(tracking_server)
