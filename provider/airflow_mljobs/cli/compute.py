"""`mljobs compute ...`: validate, create (register), list, show and delete compute targets."""

from __future__ import annotations

import click

from ._options import emit, file_option, output_option, set_option
from ._validate import validate_file


@click.group()
def compute() -> None:
    """Compute targets (local, docker, kubernetes; Azure ML cluster YAML is accepted too)."""


@compute.command()
@file_option
@set_option
@output_option
def validate(path: str, overrides: tuple[str, ...], fmt: str) -> None:
    """Validate a compute YAML and print its normalised form."""
    validate_file(path, overrides, fmt, {"compute"})


@compute.command()
@file_option
@set_option
def create(path: str, overrides: tuple[str, ...]) -> None:
    """Register a compute target in the workspace; jobs name it with `compute: azureml:<name>` or `<name>`."""
    from ..compute import register
    from ..tracking.store import workspace_home
    from .job import _user_errors

    with _user_errors():
        target = register(path, workspace_home(), list(overrides))
    click.echo(target.name)


@compute.command(name="list")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
def list_(fmt: str) -> None:
    """List the built-in and registered compute targets."""
    from ..compute import registered
    from ..tracking.store import workspace_home

    targets = registered(workspace_home())
    if fmt != "table":
        emit([{"name": t.name, "type": t.type, **t.settings} for t in targets], fmt)
        return
    for target in targets:
        click.echo(f"{target.name:<24} {target.type}")


@compute.command()
@click.option("-n", "--name", required=True)
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml")
def show(name: str, fmt: str) -> None:
    """Show a compute target."""
    from ..compute import resolve
    from ..tracking.store import workspace_home
    from .job import _user_errors

    with _user_errors():
        target = resolve(name, workspace_home())
    emit({"name": target.name, "type": target.type, **target.settings}, fmt)


@compute.command()
@click.option("-n", "--name", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> None:
    """Remove a registered compute target."""
    from ..compute import unregister
    from ..tracking.store import workspace_home

    if not yes:
        click.confirm(f"Delete compute '{name}'?", abort=True)
    if not unregister(name, workspace_home()):
        raise click.UsageError(f"no registered compute named '{name}'")
    click.echo(f"deleted {name}")
