"""File-system steps every store shares: a file replaced atomically and durably, numbered files in
a folder, fsync of a folder."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable


class DamagedFileError(Exception):
    """A node's own file cannot be read back as written; starting would act on a guess."""


def write_atomically(path: Path, data: bytes | str | Iterable[bytes], *, durable: bool = True) -> None:
    """Replace `path` with `data` so that a crash at any moment leaves the old file or the new one,
    whole: the bytes go to `path.tmp`, which is fsync'd, renamed over `path`, and then the folder
    is fsync'd so the rename itself survives a power loss. `durable=False` skips both fsyncs
    (the file is still never seen half-written by a reader). A failed write leaves no temp file."""
    if isinstance(data, str):
        data = data.encode()
    chunks = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a folder's entries (a new, renamed or deleted file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def numbered_files(directory: Path, name: re.Pattern) -> list[tuple[int, Path]]:
    """(number, path) of the files whose whole name matches `name` (one group: the number), in order."""
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        m = name.fullmatch(entry.name)
        if m:
            found.append((int(m.group(1)), entry))
    return sorted(found)
