"""`dcli lb` against real processes: a server, backends that register themselves
(lb_backend.py), and a real `dcli lb start` on port 0. Each test has its own registry root and
service, so tests do not see each other's backends."""
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
from collections import Counter
from pathlib import Path

import pytest

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
        p = Proc(args, self.tmp / "lb.log", env=dict(os.environ, DCLI_SERVER=self.server.address))
        self.procs.append(p)
        line = p.expect(lambda s: True, "at all")
        assert line.startswith("dcli lb listening on 127.0.0.1:"), line
        assert f"({mode}, {strategy}, service {self.service}), admin 127.0.0.1:" in line
        return Balancer(p, line.split()[4], self)

    def name_of(self, address: str) -> str:
        return {a: n for n, a in self.address.items()}[address]

    def close(self) -> None:
        for p in self.procs:
            p.kill()


class Balancer:
    def __init__(self, proc: Proc, address: str, rig: Rig):
        self.proc, self.address, self.rig = proc, address, rig

    def sees(self, *names: str) -> str:
        """Wait until the balancer's backends are exactly `names` (as it prints them)."""
        wanted = sorted(self.rig.address[n] for n in names)

        def match(line: str) -> bool:
            if not line.startswith(f"backends of {self.rig.service}: "):
                return False
            listed = [w for w in line.split(": ", 1)[1].split() if w.startswith("127.0.0.1:")]
            return sorted(listed) == wanted
        return self.proc.expect(match, f"listing backends {names}")

    def get(self, path: str = "/", method: str = "GET", body: bytes | None = None) -> tuple[int, dict | str]:
        host, port = self.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
        try:
            conn.request(method, path, body=body)
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


@pytest.fixture
def rig(server, root_path, tmp_path):
    r = Rig(server, root_path, tmp_path)
    yield r
    r.close()
    for log in sorted(tmp_path.glob("*.log")):       # shown by pytest when the test failed
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


def test_round_robin_is_exact(rig):
    rig.backends("a", "b", "c")
    lb = rig.lb("round-robin")
    order = [lb.backend_of() for _ in range(9)]
    assert sorted(order[:3]) == ["a", "b", "c"]
    assert order == order[:3] * 3


def test_weighted_round_robin_follows_the_weights_in_tcp(rig):
    rig.backends(("heavy", {"meta": ["weight=3"]}), "light", mode="tcp")
    lb = rig.lb("weighted-round-robin", "tcp")
    assert Counter(lb.ask() for _ in range(8)) == {"heavy": 6, "light": 2}


def test_ip_hash_keeps_a_client_on_one_backend(rig):
    rig.backends("a", "b", "c")
    lb = rig.lb("ip-hash")
    chosen = {lb.backend_of() for _ in range(12)}          # a new connection each time
    assert len(chosen) == 1
    served = {name: row["requests"] for name, row in lb.stats_json().items()}
    assert sorted(served.values()) == [0, 0, 12]


def test_least_connections_sends_new_clients_to_the_idle_backend(rig):
    rig.backends("a", "b", mode="tcp")
    lb = rig.lb("least-connections", "tcp")
    host, port = lb.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as held:
        held.sendall(b"hold\n")
        busy = held.recv(4096).decode().split()[0]           # this connection stays open
        others = [lb.ask() for _ in range(6)]
        assert busy in ("a", "b")
        assert others == [{"a": "b", "b": "a"}[busy]] * 6      # round robin would alternate


def test_response_time_prefers_the_faster_backend(rig):
    rig.backends(("slow", {"delay": 0.2}), "fast")
    lb = rig.lb("response-time", "http", "--health-path", "/health")
    share = Counter(lb.backend_of() for _ in range(20))
    assert share["fast"] >= 15, share
    rows = lb.stats_json()
    assert rows["slow"]["ewma_ms"] > rows["fast"]["ewma_ms"]


def test_agent_routes_to_the_least_loaded_and_follows_published_load(rig):
    rig.backends(("a", {"meta": ["cpu=0.80", "mem=0.30"]}), ("b", {"meta": ["cpu=0.20", "mem=0.10"]}),
                 ("c", {"meta": ["cpu=0.50", "mem=0.90"]}))
    lb = rig.lb("agent")
    assert [lb.backend_of() for _ in range(6)] == ["b"] * 6
    rig.proc["b"].send("meta cpu=0.95 mem=0.10")             # b gets busy (what --agent publishes)
    rig.proc["b"].expect(lambda s: s.startswith("backend b meta"), "meta updated")
    lb.proc.expect(lambda s: f"{rig.address['b']} (load 0.95)" in s, "with b's new load")
    assert [lb.backend_of() for _ in range(6)] == ["a"] * 6


def test_post_requests_go_to_their_own_pool(rig):
    rig.backends("r1", ("w", {"meta": ["pool=writers"]}), "r2")
    lb = rig.lb("round-robin", "http", "--route", "method=POST:writers", "--route", "path=/admin:admins")
    gets = [lb.backend_of("/orders") for _ in range(6)]
    posts = [lb.backend_of("/orders", "POST") for _ in range(4)]
    assert Counter(gets) == {"r1": 3, "r2": 3}
    assert posts == ["w"] * 4
    status, doc = lb.get("/orders", "POST", b"payload")
    assert status == 200 and doc["method"] == "POST" and doc["xff"] == "127.0.0.1"
    status, text = lb.get("/admin/x")                       # a route to a pool with no backend
    assert status == 502 and "no backend registered in pool 'admins'" in text


def test_keep_alive_connections_are_reused_and_stats_show_them(rig):
    rig.backends("a", "b")
    lb = rig.lb("round-robin", "http", "--health-interval", "0")
    docs = [lb.get(f"/n/{i}")[1] for i in range(10)]           # a new client connection each time
    connections = {(d["backend"], d["conn"]) for d in docs}
    assert len(connections) == 2                                # one per backend, for 10 requests
    rows = lb.stats_json()
    assert {n: (r["connections"], r["requests"], r["errors"], r["state"]) for n, r in rows.items()} == \
        {"a": (1, 5, 0, "up"), "b": (1, 5, 0, "up")}
    assert rows["a"]["p99_ms"] >= rows["a"]["p50_ms"] > 0

    simple = lb.stats()
    assert simple.returncode == 0, simple.stderr
    heading, header, *lines = simple.stdout.decode().splitlines()
    assert heading.startswith(f"{rig.service} {lb.address} (http, round-robin, service {rig.service}), admin ")
    assert header.split() == ["BACKEND", "STATE", "POOL", "ACTIVE", "CONNS", "REQS", "ERRORS",
                              "MEAN_MS", "P50_MS", "P99_MS"]
    assert sorted(line.split()[:7] for line in lines) == sorted(
        [rig.address[n], "up", "-", "0", "1", "5", "0"] for n in ("a", "b"))

    assert lb.proc.stop() == 0                                  # SIGTERM: a clean stop, entry gone
    gone = lb.stats()
    assert gone.returncode == 3, gone.stdout
    assert f"no load balancer is registered under /dcli/lb/{rig.service}" in gone.stderr.decode()


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_a_killed_backend_is_ejected_and_requests_keep_succeeding(rig, mode):
    rig.backends("a", "b", "c", mode=mode)
    lb = rig.lb("round-robin", mode, "--retry-after", "60")
    call = lb.backend_of if mode == "http" else lb.ask
    assert sorted(call() for _ in range(3)) == ["a", "b", "c"]      # http: each has a pooled connection
    rig.proc["b"].kill()                                            # SIGKILL: its registry entry stays
    after = [call() for _ in range(9)]
    assert "b" not in after and sorted(Counter(after).values()) == [4, 5]     # a and c in turn
    lb.proc.expect(lambda s: s.startswith(f"ejected {rig.address['b']}: "), "ejecting b")
    rows = lb.stats_json()
    assert rows["b"]["state"] == "ejected" and rows["b"]["errors"] >= 1
    assert rows["a"]["state"] == rows["c"]["state"] == "up"


def test_a_backend_that_leaves_the_registry_is_dropped_live(rig):
    rig.backends("a", "b", mode="tcp")
    lb = rig.lb("round-robin", "tcp")
    lb.sees("a", "b")
    assert sorted(lb.ask() for _ in range(2)) == ["a", "b"]
    rig.proc["b"].send("unregister")                            # b still runs, but has left
    lb.sees("a")
    assert [lb.ask() for _ in range(4)] == ["a"] * 4
    assert set(lb.stats_json()) == {"a"}
    rig.backends("c", mode="tcp")                               # and one that joins is used at once
    lb.sees("a", "c")
    assert sorted(lb.ask() for _ in range(2)) == ["a", "c"]


def test_bad_flags_are_one_line_usage_errors(server):
    cases = [(["--strategy", "fastest"], "unknown strategy 'fastest'"),
             (["--mode", "udp"], "invalid --mode 'udp'"),
             (["--route", "method=POST:w"], "--route needs --mode http"),
             (["--mode", "http", "--route", "method=POST"], "invalid --route 'method=POST'"),
             (["--listen", "nowhere"], "invalid address 'nowhere'"),
             (["--health-path", "health"], "invalid --health-path")]
    for extra, message in cases:
        args = ["lb", "start", "--listen", "127.0.0.1:0", "--service", "s", *extra]
        r = run_cli(*args, server=server)
        err = r.stderr.decode()
        assert r.returncode == 2 and message in err and err.count("\n") == 1, (extra, err)
