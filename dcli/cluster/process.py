"""One node process as the manager sees it: is it still ours, is it frozen, signal it, wait for it.

A pid written into cluster.json may belong to another program by the time it is read again (the
node died and the pid was reused). So a pid is only acted on through `NodeProcess.find`, which
checks that the process's command line is `... dcli_server ... <the node's data dir> ...`; on
Linux it first opens a pidfd, so that the process checked is the process signalled and waited
for, with no window for the pid to be recycled in between.

    >>> proc = NodeProcess.find(4242, Path("/tmp/c/node-1"))
    >>> if proc:
    ...     proc.signal(signal.SIGTERM)
    ...     exited = proc.wait(10.0)
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

SERVER_MODULE = "dcli_server"


def command_line(pid: int) -> list[str] | None:
    """The process's argv, or None when there is no such (live) process."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return None
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a] or None    # a zombie's is empty
    try:        # no /proc (macOS): ps gives one string, split on spaces (data dirs with spaces: see is_ours)
        out = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.decode(errors="replace").strip()
    return [text] if out.returncode == 0 and text else None


def is_ours(pid: int, data_dir: Path) -> bool:
    """pid is a live dcli server serving data_dir."""
    argv = command_line(pid)
    if not argv:
        return False
    if len(argv) == 1:              # ps's single string
        return SERVER_MODULE in argv[0] and str(data_dir) in argv[0]
    return SERVER_MODULE in argv and str(data_dir) in argv


def run_state(pid: int) -> str:
    """The kernel's one-letter state: R/S/D running or sleeping, T stopped, Z zombie, '' gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:][:1]
    except (OSError, ValueError):
        pass
    if Path("/proc/self").exists():
        return ""
    try:
        out = subprocess.run(["ps", "-p", str(pid), "-o", "state="], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.decode().strip()[:1]


class NodeProcess:
    """A verified node process; close() when done (it may hold a pidfd)."""

    def __init__(self, pid: int, pidfd: int | None, child: subprocess.Popen | None):
        self.pid = pid
        self._pidfd = pidfd
        self._child = child

    @classmethod
    def find(cls, pid: int | None, data_dir: Path,
             child: subprocess.Popen | None = None) -> NodeProcess | None:
        """The node process `pid` if it is alive and still serves data_dir, else None."""
        if not pid:
            return None
        if child is not None and child.poll() is not None:
            return None
        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                return None
            except OSError:         # a kernel without pidfds: signal by pid after the check below
                pidfd = None
        if not is_ours(pid, data_dir) or run_state(pid) in ("Z", "X"):
            if pidfd is not None:
                os.close(pidfd)
            return None
        return cls(pid, pidfd, child)

    @property
    def paused(self) -> bool:
        return run_state(self.pid) in ("T", "t")

    def signal(self, sig: int) -> None:
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass        # it has exited meanwhile: what every caller wanted

    def wait(self, timeout: float) -> bool:
        """Wait up to timeout for the process to exit; True when it has."""
        if self._child is not None:
            try:
                self._child.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], max(timeout, 0.0))
            return bool(readable)       # a pidfd turns readable when its process exits
        return self._poll_until(lambda: run_state(self.pid) in ("", "Z", "X"), timeout)

    def wait_paused(self, paused: bool, timeout: float = 5.0) -> bool:
        """Wait for SIGSTOP/SIGCONT to take effect (the kernel does it soon, not at once)."""
        return self._poll_until(lambda: self.paused == paused, timeout)

    @staticmethod
    def _poll_until(done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
