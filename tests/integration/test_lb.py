"""`dcli lb` against real processes: a server, backends that register themselves
(lb_backend.py), and a real `dcli lb start` on port 0. Each test has its own registry root and
service, so tests do not see each other's backends."""
from __future__ import annotations

import socket
from collections import Counter

import pytest

from tests.conftest import run_cli
from tests.integration.lb_rig import WAIT_S, Rig

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
             (["--health-path", "health"], "invalid --health-path"),
             (["--trusted-proxy", "10.0.0.0/33"], "invalid --trusted-proxy '10.0.0.0/33'"),
             (["--client-max-body-size", "5x"], "invalid --client-max-body-size '5x'"),
             (["--max-header-size", "0"], "--max-header-size must be positive"),
             (["--max-connections", "0"], "--max-connections must be positive"),
             (["--idle-timeout", "-1"], "--idle-timeout must not be negative")]
    for extra, message in cases:
        args = ["lb", "start", "--listen", "127.0.0.1:0", "--service", "s", *extra]
        r = run_cli(*args, server=server)
        err = r.stderr.decode()
        assert r.returncode == 2 and message in err and err.count("\n") == 1, (extra, err)
