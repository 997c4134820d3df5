"""The rig for `dcli lb`'s integration tests: a real `dcli lb start` process and real backends
(lb_backend.py) that register themselves, under the test's own registry root and service, so
tests do not see each other's backends.

    rig.backends("a", "b")                  # two http backends, registered
    lb = rig.lb("round-robin", "http")      # a balancer in front of them, on a free port
    lb.backend_of("/")                      # 'a'
"""
from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from tests.conftest import ROOT, run_cli

WAIT_S = 30
BACKEND = Path(__file__).with_name("lb_backend.py")
CLI = "from dcli.cli.main import main; main()"


class Proc:
    """A child process whose stdout lines a thread puts on a queue (a full pipe never blocks it)."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None):
        self.log = log
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(log, "wb"), cwd=ROOT, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, predicate, what: str) -> str:
        """The next line that satisfies predicate (lines before it are kept in `seen`)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {what} within {WAIT_S}s; saw {self.seen}\n{self.stderr()}")
            if line is None:
                raise AssertionError(f"exited ({self.proc.wait()}) before a line {what}; saw {self.seen}\n"
                                     f"{self.stderr()}")
            self.seen.append(line)
            if predicate(line):
                return line

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT_S)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT_S)


class Rig:
    """Backends and balancers for one test, on the module's server, under the test's own root."""

    def __init__(self, server, root: str, tmp: Path):
        self.server, self.root, self.tmp = server, root, tmp
        self.service = f"svc-{uuid.uuid4().hex[:8]}"
        self.procs: list[Proc] = []
        self.address: dict[str, str] = {}         # backend name -> address
        self.proc: dict[str, Proc] = {}

    def backends(self, *specs, mode: str = "http") -> None:
        """specs: name or (name, {"meta": [...], "delay": s}); all start at once."""
        started = []
        for spec in specs:
            name, opts = (spec, {}) if isinstance(spec, str) else spec
            args = [sys.executable, str(BACKEND), name, "--mode", mode, "--server", self.server.address,
                    "--service", self.service, "--root", self.root, "--delay", str(opts.get("delay", 0))]
            if opts.get("meta"):
                args += ["--meta", *opts["meta"]]
            p = Proc(args, self.tmp / f"backend-{name}.log")
            self.procs.append(p)
            self.proc[name] = p
            started.append((name, p))
        for name, p in started:       # in order: registration order is the strategies' order
            line = p.expect(lambda s: " listening on " in s, "listening")
            self.address[name] = line.rsplit(" ", 1)[1]
            p.expect(lambda s: " registered as " in s, "registered")

    def lb(self, strategy: str, mode: str = "http", *extra: str) -> Balancer:
        args = [sys.executable, "-c", CLI, "lb", "start", "--listen", "127.0.0.1:0", "--service", self.service,
                "--root", self.root, "--strategy", strategy, "--mode", mode, *extra]
        log = self.tmp / f"lb-{sum(1 for q in self.procs if q.log.name.startswith('lb'))}.log"
        p = Proc(args, log, env=dict(os.environ, DCLI_SERVER=self.server.address))
        self.procs.append(p)
        line = p.expect(lambda s: True, "at all")
        assert line.startswith("dcli lb listening on 127.0.0.1:"), line
        assert f"({mode}, {strategy}, service {self.service}), admin 127.0.0.1:" in line
        return Balancer(p, line.split()[4], self, admin=line.rsplit(" ", 1)[1])

    def name_of(self, address: str) -> str:
        return {a: n for n, a in self.address.items()}[address]

    def close(self) -> None:
        for p in self.procs:
            p.kill()


class Balancer:
    def __init__(self, proc: Proc, address: str, rig: Rig, admin: str):
        self.proc, self.address, self.rig, self.admin = proc, address, rig, admin

    def sees(self, *names: str) -> str:
        """Wait until the balancer's backends are exactly `names` (as it prints them)."""
        wanted = sorted(self.rig.address[n] for n in names)

        def match(line: str) -> bool:
            if not line.startswith(f"backends of {self.rig.service}: "):
                return False
            listed = [w for w in line.split(": ", 1)[1].split() if w.startswith("127.0.0.1:")]
            return sorted(listed) == wanted
        return self.proc.expect(match, f"listing backends {names}")

    def get(self, path: str = "/", method: str = "GET", body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict | str]:
        host, port = self.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            data = reply.read().decode()
            return reply.status, (json.loads(data) if reply.status == 200 else data)
        finally:
            conn.close()

    def backend_of(self, path: str = "/", method: str = "GET") -> str:
        status, doc = self.get(path, method, b"x" if method == "POST" else None)
        assert status == 200, doc
        return doc["backend"]

    def ask(self, line: str = "hello") -> str:
        """tcp: one connection, one line; the backend's name (its answer is 'NAME CONN LINE')."""
        host, port = self.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=WAIT_S) as s:
            s.sendall(line.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        name, _conn, echoed = answer.decode().rstrip("\n").split(" ", 2)
        assert echoed == line
        return name

    def stats(self, *args: str) -> subprocess.CompletedProcess:
        return run_cli(*args, "lb", "stats", self.rig.service, server=self.rig.server)

    def stats_json(self) -> dict[str, dict]:
        r = self.stats("-w", "json")
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
        return {self.rig.name_of(row["address"]): row for row in rows}


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak so far) of a process, in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


PATTERN = bytes(range(256)) * 4096          # 1 MiB that is not all one byte


def upload(address: str, size_mib: int, chunked: bool = False) -> tuple[int, dict | str, str]:
    """POST a body of size_mib MiB, produced and sent one MiB at a time (the test never holds
    it whole), with Content-Length or chunked: (status, answer, the body's sha256)."""
    import hashlib

    digest = hashlib.sha256()

    def body():
        for _ in range(size_mib):
            digest.update(PATTERN)
            yield PATTERN
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
    try:
        headers = {} if chunked else {"Content-Length": str(size_mib * len(PATTERN))}
        conn.request("POST", "/upload", body=body(), headers=headers, encode_chunked=chunked)
        reply = conn.getresponse()
        data = reply.read().decode()
        return reply.status, (json.loads(data) if reply.status == 200 else data), digest.hexdigest()
    finally:
        conn.close()
