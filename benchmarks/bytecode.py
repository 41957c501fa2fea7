"""Byte-compile the package before it is timed, as an installed package is.

An editable install (this checkout's `.venv`) has no bytecode of the package, and where PYTHONDONTWRITEBYTECODE
is set no import writes it: every process would compile the package's sources again (about 30 ms for a command
or a task), a cost no installed copy pays.
"""

from __future__ import annotations

import compileall
from pathlib import Path


def compile_package() -> None:
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "provider"), quiet=1)
