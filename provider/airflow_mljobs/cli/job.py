"""`mljobs job ...`: validate (and, as the engine grows, create, stream, show, list, download, cancel)."""

from __future__ import annotations

import click

from ._options import file_option, output_option, set_option
from ._validate import validate_file


@click.group()
def job() -> None:
    """Command and sweep jobs."""


@job.command()
@file_option
@set_option
@output_option
def validate(path: str, overrides: tuple[str, ...], fmt: str) -> None:
    """Validate a job YAML of any era and print its normalised form; warnings go to stderr.

    Exit 0 when valid, 2 with every problem (file:line:column, YAML path, message, hint) when not.
    """
    validate_file(path, overrides, fmt, {"command", "sweep"})
