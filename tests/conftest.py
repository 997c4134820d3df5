"""Fixtures that start real servers: a node process on a free 127.0.0.1 port, with its own data dir.

`server` is one node for the test module (tests use their own root paths under it);
`fresh_server` is one node for one test. Both can be killed (SIGKILL) and restarted on the same
data dir and port. When a test fails, the server's log is printed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest_plugins = ["tests.cluster_fixture"]     # local_cluster: N node processes

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
# every server a test starts serves ZooKeeper's protocol on a free port unless it is told
# otherwise: the default, 2181, would let only one of them start at a time
os.environ.setdefault("DCLI_ZK_LISTEN", "127.0.0.1:0")


class ServerProcess:
    """One real `dcli server start` process."""

    def __init__(self, data_dir: Path, *extra: str, port: int = 0):
        self.data_dir = data_dir
        self.extra = list(extra)
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.address = ""
        self.zk_address = ""        # kept across restarts, as the client port is

    def start(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcli_server", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir),
             *(["--zk-listen", self.zk_address] if self.zk_address else []), *self.extra],
            stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
        line = _readline(self.proc, START_TIMEOUT_S)
        if not line.startswith("dcli server listening on "):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.log()}")
        self.address = line.split()[4].rstrip(",")
        self.port = int(self.address.rsplit(":", 1)[1])
        words = line.split()
        self.zk_address = words[7].rstrip(",") if words[5:7] == ["zookeeper", "on"] else ""
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=30)
        return self.proc.returncode if self.proc else 0

    def restart(self) -> ServerProcess:
        self.kill()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line of proc, or '' if it does not come within timeout (no sleeping)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return ""
    return proc.stdout.readline().decode(errors="replace").strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data", "--container-check-interval-ms", "200",
                        "--group-initial-rebalance-delay-ms", "0").start()
    yield srv
    srv.kill()


@pytest.fixture
def fresh_server(tmp_path):
    srv = ServerProcess(tmp_path / "data", "--container-check-interval-ms", "200",
                        "--group-initial-rebalance-delay-ms", "0").start()
    yield srv
    srv.kill()


@pytest.fixture
def root_path():
    """A fresh path for one test on a shared server (kazoo's habit)."""
    return f"/t-{uuid.uuid4().hex[:10]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for name in ("server", "fresh_server"):
            srv = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(srv, ServerProcess):
                rep.sections.append((f"{name} log", srv.log()))


def run_cli(*args: str, server: ServerProcess | None = None, input: bytes | None = None,
            timeout: float = 60, entry: str = "dcli", env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes and streams as a user sees them)."""
    e = dict(os.environ, **(env or {}))
    if server is not None:
        e["DCLI_SERVER"] = server.address
    module = "dcli.cli.main" if entry == "dcli" else "dcli.cli.zkcli"
    code = f"from {module} import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], input=input, capture_output=True,
                          timeout=timeout, env=e, cwd=ROOT)


def read_records(address: str, topic: str, partitions: int) -> list:
    """Every record of `topic` from offset 0, read with the real Consumer (assigned partitions)
    until a poll comes back empty."""
    from dcli.client import Consumer

    with Consumer(address, auto_offset_reset="earliest") as c:
        c.assign([(topic, p) for p in range(partitions)])
        out = []
        while True:
            got = c.poll(300)
            if not got:
                return out
            out.extend(got)
