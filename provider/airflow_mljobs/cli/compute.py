"""`mljobs compute ...`: compute target YAML."""

from __future__ import annotations

import click

from ._options import file_option, output_option, set_option
from ._validate import validate_file


@click.group()
def compute() -> None:
    """Compute targets (amlcompute, kubernetes, docker, local, ...)."""


@compute.command()
@file_option
@set_option
@output_option
def validate(path: str, overrides: tuple[str, ...], fmt: str) -> None:
    """Validate a compute YAML and print its normalised form."""
    validate_file(path, overrides, fmt, {"compute"})
