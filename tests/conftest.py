"""Shared test helpers: write a YAML file and load it, and the repository's folders."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

# No test reaches past loopback: MLflow's usage reports are off in this process and in every process, server and
# container the tests start (the engine passes these opt-outs into containers).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

# Tests press Ctrl-C in the processes they start (SIGINT). A shell that runs the suite in the background hands
# it SIGINT ignored, which every child would inherit through exec, so that Ctrl-C did nothing: Python's own
# handler is put back here, and children start with the signal's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Property-based test budgets: `ci` by default; HYPOTHESIS_PROFILE=stress for a long hunt.
settings.register_profile("ci", max_examples=300)
settings.register_profile("stress", max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def write_yaml(tmp_path):
    """Write dedented YAML text to a file in a fresh folder and return its path."""

    def write(text: str, name: str = "job.yml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write
