"""The data-directory lock across real processes, including a holder killed with SIGKILL."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from dcli_server.storage.lock import DataDirLock, DataDirLockedError

HOLDER = """
import sys
from pathlib import Path
from dcli_server.storage.lock import DataDirLock

lock = DataDirLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin or kills us
"""


def read_line(fd, timeout):
    """One line from a pipe (it may arrive in pieces), or what came before EOF or the deadline."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf


def start_holder(directory):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    line = read_line(proc.stdout.fileno(), timeout=60)
    if line != b"locked\n":
        proc.kill()
        proc.wait(timeout=60)
        pytest.fail(f"lock holder did not start: {line!r}")
    return proc


def stop(proc):
    proc.kill()
    proc.wait(timeout=60)
    proc.stdin.close()
    proc.stdout.close()


def test_acquire_release_and_pid_file(tmp_path):
    directory = tmp_path / "node-1" / "data"
    lock = DataDirLock(directory)
    lock.acquire()
    assert (directory / "LOCK").read_text().strip() == str(os.getpid())
    lock.release()
    with DataDirLock(directory) as again:
        assert again.held
    assert not again.held


def test_second_lock_in_the_same_process_fails(tmp_path):
    with DataDirLock(tmp_path):
        with pytest.raises(DataDirLockedError, match=f"pid {os.getpid()}"):
            DataDirLock(tmp_path).acquire()


def test_other_process_holds_the_lock(tmp_path):
    proc = start_holder(tmp_path)
    try:
        with pytest.raises(DataDirLockedError) as info:
            DataDirLock(tmp_path).acquire()
        assert str(info.value) == (
            f"data directory {tmp_path} is in use by another dcli server (pid {proc.pid})"
        )
        assert info.value.pid == proc.pid
    finally:
        stop(proc)


def test_sigkilled_holder_never_blocks_the_next_start(tmp_path):
    proc = start_holder(tmp_path)
    try:
        with pytest.raises(DataDirLockedError):
            DataDirLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        lock = DataDirLock(tmp_path)
        lock.acquire()
        assert (tmp_path / "LOCK").read_text().strip() == str(os.getpid())
        lock.release()
    finally:
        stop(proc)


def test_released_lock_can_be_taken_by_another_process(tmp_path):
    with DataDirLock(tmp_path):
        pass
    proc = start_holder(tmp_path)
    stop(proc)
