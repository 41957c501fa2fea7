"""What of a job's folders is uploaded: regular files, and links to regular files inside the job folder.

Anything else a job leaves (a FIFO or socket, a link to nothing, to a folder, or out of the job folder) is left
out and reported: reading a FIFO never ends, a link to `..` copies without end, and a link out of the job folder
would upload what the job was never given. A job's end is recorded whatever its folders hold.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path


@contextlib.contextmanager
def uploadable(folder: Path, job_dir: Path, skipped: list[str]):
    """Yields `folder` itself when all of it may be uploaded, else a temporary copy of what may be; `skipped`
    gets a line for each entry left out."""
    kept, left_out = _survey(folder, job_dir.resolve())
    if not left_out:
        yield folder
        return
    skipped.extend(f"{path.relative_to(job_dir)}: {why}" for path, why in left_out)
    with tempfile.TemporaryDirectory(prefix=".upload-", dir=job_dir) as scratch:
        for path, source in kept:
            target = Path(scratch) / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        yield Path(scratch)


def _survey(folder: Path, root: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(each file to upload with the file it reads, each entry left out with why), without following links."""
    kept, left_out = [], []
    if not folder.is_dir() or folder.is_symlink():
        return kept, left_out
    for parent, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(parent) / name
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if stat.S_ISREG(mode):
                kept.append((path, path))
                continue
            why = _link_problem(path, root) if stat.S_ISLNK(mode) else "not a regular file (a FIFO, socket or device)"
            if why is None:
                kept.append((path, path.resolve()))
            else:
                left_out.append((path, why))
    return kept, left_out


def _link_problem(link: Path, root: Path) -> str | None:
    target = link.resolve()
    if not target.exists():
        return "a link to nothing"
    if not target.is_relative_to(root):
        return "a link out of the job folder"
    if not target.is_file():
        return "a link to a folder or a special file"
    return None


def has_files(folder: Path) -> bool:
    """Whether `folder` holds a regular file anywhere below it (links are not followed)."""
    return folder.is_dir() and any(files for _, _, files in os.walk(folder))
