"""Options and output helpers shared by every `mljobs` command."""

from __future__ import annotations

import json
import sys

import click

from ..spec import Problem, SpecError
from ..spec.dump import dump_yaml

file_option = click.option(
    "-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="The YAML file."
)
set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a value before validation: inputs.lr=0.1, resources.docker_args[0]=--ipc=host, "
    "search_space.kernel.values='[\"rbf\",\"linear\"]'. Repeatable.",
)
output_option = click.option(
    "-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
    help="Output format.",
)


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


def emit(data, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(dump_yaml(data), nl=False)


def fail_spec(error: SpecError) -> None:
    """A user's mistake: every problem with its place, then exit 2 (as click does for usage errors)."""
    print_problems(error.problems)
    count = len(error.errors)
    click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was run.", err=True)
    sys.exit(2)
