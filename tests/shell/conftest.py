"""Helpers for driving the real shell: a subprocess for scripts, a pseudo-terminal for the REPL."""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

ENTRY = "from dcli.cli import main\nmain.main()\n"     # `dcli` from this checkout
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


def shell_env(server, tmp_path, **extra) -> dict:
    env = dict(os.environ, DCLI_SERVER=server.address, XDG_STATE_HOME=str(tmp_path / "state"),
               PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", **extra)
    return env


def run_shell(*args: str, server, input: bytes | None = None, timeout: float = 60,
              tmp_path=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, DCLI_SERVER=server.address)
    return subprocess.run([sys.executable, "-c", ENTRY, "shell", *args], input=input,
                          capture_output=True, timeout=timeout, env=env, cwd=ROOT)


def popen_shell(*args: str, server) -> subprocess.Popen:
    env = dict(os.environ, DCLI_SERVER=server.address)
    return subprocess.Popen([sys.executable, "-c", ENTRY, "shell", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)


def read_until(stream, text: bytes, timeout: float = 30) -> bytes:
    """Read a pipe until `text` has appeared (or fail at the deadline)."""
    fd, got, deadline = stream.fileno(), b"", time.monotonic() + timeout
    while text not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"timed out waiting for {text!r}; got {got!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"stream ended before {text!r}; got {got!r}")
        got += chunk
    return got


class Terminal:
    """The shell in a pseudo-terminal: type keys, wait for text on the screen (ANSI stripped)."""

    def __init__(self, server, tmp_path, *args: str):
        import pty

        env = shell_env(server, tmp_path)
        pid, fd = pty.fork()
        if pid == 0:       # the child: become the shell
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-c", ENTRY, "shell", *args], env)
        self.pid, self.fd = pid, fd
        self._set_size(40, 120)
        self.raw = b""          # everything the terminal has shown
        self.pos = 0            # how far expect() has consumed self.text

    def _set_size(self, rows, cols) -> None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.raw).decode(errors="replace")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, pattern: str, timeout: float = 30) -> str:
        """Wait until `pattern` (a regex) appears after what was last matched; returns the text
        from there up to the end of the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.text, self.pos)
            if m:
                seen = self.text[self.pos:m.end()]
                self.pos = m.end()
                return seen
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"timed out waiting for {pattern!r}; screen:\n{self.text[-3000:]}")
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"shell ended before {pattern!r}; screen:\n{self.text[-3000:]}")
            self.raw += chunk

    def wait_exit(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:                     # drain so the child never blocks writing
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.raw += os.read(self.fd, 4096)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        raise AssertionError("the shell did not exit")

    def close(self) -> None:
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


@pytest.fixture
def terminal(server, tmp_path):
    terms = []

    def start(*args):
        t = Terminal(server, tmp_path, *args)
        terms.append(t)
        return t
    yield start
    for t in terms:
        t.close()
