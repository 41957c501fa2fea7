"""Read what log files hold beyond a resume token: whole lines, a new token after each chunk, flat memory.

Reading stops at the last newline, so a line written in two parts is never split; with `final` (the job
has ended) a last unterminated line is given its newline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import LogChunk

READ_SIZE = 1 << 20


def read_available(files: dict[int, Path], since: dict, *, final: bool, prefix: bool) -> Iterator[LogChunk]:
    offsets = {str(rank): int(since.get(str(rank), 0)) for rank in files}
    for rank, path in files.items():
        for text in _read_new(path, offsets, str(rank), final=final):
            if prefix:
                text = "".join(f"[rank {rank}] {line}\n" for line in text.splitlines())
            yield LogChunk(text, dict(offsets))


def _read_new(path: Path, offsets: dict, key: str, *, final: bool) -> Iterator[str]:
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        handle.seek(offsets[key])
        while data := handle.read(READ_SIZE):
            cut = data.rfind(b"\n") + 1
            if cut == 0 and not final and len(data) < READ_SIZE:
                return  # half a line: wait for the rest
            cut = cut or len(data)
            offsets[key] += cut
            text = data[:cut].decode("utf-8", errors="replace")
            yield text if text.endswith("\n") else text + "\n"
            handle.seek(offsets[key])
