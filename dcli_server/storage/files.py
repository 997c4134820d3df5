"""File-system steps the log and the snapshots share: numbered files in a folder, fsync of a folder."""
from __future__ import annotations

import os
import re
from pathlib import Path


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
