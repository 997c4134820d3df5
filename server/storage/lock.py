"""The data-directory lock: one server process per data directory.

It owns the file ``LOCK`` in the data directory. The lock is an ``flock`` on that file, so the
kernel drops it when the holding process dies, however it dies (SIGKILL included): a crashed
server never blocks the next start, and there is no stale-lock cleanup to get wrong. The file
holds the holder's pid, only to name it in the error.

Usage::

    with DataDirLock(data_dir):
        serve()
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "LOCK"


class DataDirLockedError(Exception):
    def __init__(self, directory: Path, pid: int | None) -> None:
        self.directory = Path(directory)
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"data directory {self.directory} is in use by another dcli server ({holder})"
        )


class DataDirLock:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Create the directory if needed and lock it, or raise DataDirLockedError."""
        if self._fd is not None:
            raise RuntimeError(f"data directory {self.directory} is already locked by us")
        self.directory.mkdir(parents=True, exist_ok=True)
        # Never unlink LOCK: a process blocked on the old inode would "win" a deleted file.
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirLockedError(self.directory, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Clear our pid while still holding the lock, so we never erase the next holder's.
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    # The holder may be between truncating and writing its pid; then we cannot name it.
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
