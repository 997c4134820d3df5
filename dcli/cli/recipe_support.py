"""What the long-running recipe commands (elect, lock, registry register) share: their own
session, a path from a bare name, SIGTERM treated as Ctrl-C (so the session closes and its
ephemerals go at once), and running a child command."""
from __future__ import annotations

import os
import signal
import subprocess

import typer

from dcli.cli.common import settings
from dcli.wire import errors
from dcli.wire.paths import validate_path

SessionTimeoutOption = typer.Option(10.0, "--session-timeout", metavar="SECONDS",
                                    help="Session timeout: how long after this process dies its znodes stay.")
STOP_GRACE_S = 5.0


def recipe_path(name: str, base: str) -> str:
    """NAME as given when it is a path, else `base/NAME`."""
    path = name if name.startswith("/") else f"{base}/{name}"
    validate_path(path)
    return path


def new_client(ctx: typer.Context, session_timeout: float):
    from dcli.client import CoordClient

    if session_timeout <= 0:
        raise errors.UsageError("--session-timeout must be positive")
    s = settings(ctx)
    return CoordClient(s.resolved_server(), timeout=session_timeout, dial_timeout=s.dial_timeout).start()


def sigterm_as_interrupt() -> None:
    """SIGTERM ends the command the way Ctrl-C does: cleanly, closing its session."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:          # not the main thread (the shell's runner): Ctrl-C still works
        pass


def start_child(command: list[str], env: dict | None = None) -> subprocess.Popen:
    try:
        return subprocess.Popen(command, env=dict(os.environ, **(env or {})))
    except OSError as e:
        raise errors.UsageError(f"cannot run {command[0]}: {e.strerror}") from None


def stop_child(proc: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL if it is still there after a grace period; its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def exit_status(code: int) -> int:
    """A child's exit code as a shell reports it: killed by signal N is 128 + N."""
    return 128 - code if code < 0 else code
