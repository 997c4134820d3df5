"""`dcli cluster`, driven as a user drives it: the real CLI in subprocesses, real node processes.

Nothing here depends on what Raft makes of the nodes (roles and terms change when it lands);
the tests look at processes, ids, addresses and up/down.
"""
from __future__ import annotations

import json
import socket

import pytest

from dcli.cluster import LocalCluster
from dcli.cluster.process import run_state
from tests.conftest import run_cli

ROLES = {"leader", "follower", "candidate", "pre-candidate"}


@pytest.fixture
def cluster_dir(tmp_path):
    """A directory for the test's cluster; whatever runs in it at the end is stopped (by the
    pids cluster.json records: the nodes are not this process's children)."""
    directory = tmp_path / "cluster"
    yield directory
    if (directory / "cluster.json").exists():
        LocalCluster(directory).down(grace=0)


def cli(directory, *args: str):
    return run_cli(*args, env={"DCLI_CLUSTER_DIR": str(directory)})


def ok(directory, *args: str) -> str:
    r = cli(directory, *args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout.decode()


def fails(directory, code: int, *args: str) -> str:
    """The command fails with exit code `code` and one line on stderr, no traceback."""
    r = cli(directory, *args)
    err = r.stderr.decode()
    assert r.returncode == code, (args, r.returncode, r.stdout, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def statuses(directory) -> dict[int, dict]:
    lines = ok(directory, "cluster", "status", "-w", "json").splitlines()
    return {d["node"]: d for d in map(json.loads, lines)}


def recorded(directory) -> dict[int, dict]:
    return {n["id"]: n for n in json.loads((directory / "cluster.json").read_text())["nodes"]}


def gone(pid: int) -> bool:
    return run_state(pid) in ("", "Z", "X")      # no process, or one that is dead but not yet reaped


def test_up_status_kill_start_pause_restart_logs_down(cluster_dir):
    out = ok(cluster_dir, "cluster", "up", "--nodes", "3", "--base-port", "0")
    nodes = recorded(cluster_dir)
    addresses = [nodes[i]["address"] for i in (1, 2, 3)]
    assert sorted(nodes) == [1, 2, 3]
    assert all(a.startswith("127.0.0.1:") for a in addresses) and len(set(addresses)) == 3
    assert f"export DCLI_SERVER={','.join(addresses)}" in out
    assert ok(cluster_dir, "cluster", "env") == f"export DCLI_SERVER={','.join(addresses)}\n"

    st = statuses(cluster_dir)
    assert ok(cluster_dir, "-w", "json", "cluster", "status").splitlines()[0].startswith('{"node": 1, ')
    assert sorted(st) == [1, 2, 3]
    for i in (1, 2, 3):
        assert (st[i]["address"], st[i]["state"], st[i]["pid"]) == (addresses[i - 1], "up", nodes[i]["pid"])
        assert st[i]["role"] in ROLES
    table = ok(cluster_dir, "cluster", "status").splitlines()
    assert table[0].split() == ["NODE", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "LAST_ZXID",
                                "SESSIONS", "ZNODES", "CONTROLLER", "STATE"]
    rows = {int(line.split()[0]): line.split() for line in table[1:4]}
    assert {i: (r[1], r[-1]) for i, r in rows.items()} == {i: (addresses[i - 1], "up") for i in (1, 2, 3)}
    zk = ",".join(n["zk_address"] for n in sorted(nodes.values(), key=lambda n: n["id"]))
    assert table[4:] == [f"ZooKeeper protocol: {zk}"]

    # kill: the process is gone, the others are untouched
    assert ok(cluster_dir, "cluster", "kill", "2") == "node 2 killed (SIGKILL)\n"
    assert gone(nodes[2]["pid"])
    st = statuses(cluster_dir)
    assert {i: s["state"] for i, s in st.items()} == {1: "up", 2: "down", 3: "up"}
    assert st[2]["role"] == "" and st[2]["pid"] is None
    assert "down" in ok(cluster_dir, "cluster", "status").splitlines()[2].split()

    # start it again, on its address
    assert ok(cluster_dir, "cluster", "start", "2").startswith(f"node 2 started on {addresses[1]} (pid ")
    assert {i: s["state"] for i, s in statuses(cluster_dir).items()} == {1: "up", 2: "up", 3: "up"}

    # pause / resume: the process is frozen, not gone
    ok(cluster_dir, "cluster", "pause", "3")
    assert run_state(nodes[3]["pid"]) == "T"
    assert {i: s["state"] for i, s in statuses(cluster_dir).items()} == {1: "up", 2: "up", 3: "paused"}
    assert ok(cluster_dir, "cluster", "resume", "3") == "node 3 resumed (SIGCONT)\n"
    assert {i: s["state"] for i, s in statuses(cluster_dir).items()} == {1: "up", 2: "up", 3: "up"}

    # restart: a new process on the same address
    ok(cluster_dir, "cluster", "restart", "1")
    assert gone(nodes[1]["pid"])
    after = recorded(cluster_dir)
    assert after[1]["pid"] != nodes[1]["pid"] and after[1]["address"] == addresses[0]
    assert statuses(cluster_dir)[1]["state"] == "up"

    # logs: both starts of node 1, each marked
    log = ok(cluster_dir, "cluster", "logs", "1")
    assert log.count("--- dcli cluster: starting node 1") == 2
    assert log.count(f"dcli server listening on {addresses[0]}") == 2
    assert len(ok(cluster_dir, "cluster", "logs", "1", "-n", "1").splitlines()) == 1
    assert ok(cluster_dir, "cluster", "logs", "1", "--path") == f"{cluster_dir / 'node-1.log'}\n"

    # down: every process gone, the data kept
    running = recorded(cluster_dir)
    assert ok(cluster_dir, "cluster", "down").startswith("stopped node 1, 2, 3; data kept in ")
    assert all(gone(n["pid"]) for n in running.values())
    assert {s["state"] for s in statuses(cluster_dir).values()} == {"down"}
    assert (cluster_dir / "node-1").is_dir()
    ok(cluster_dir, "cluster", "down", "--purge")
    assert not cluster_dir.exists()


def test_down_keeps_the_data_and_up_brings_the_same_cluster_back(cluster_dir):
    from dcli.client import CoordClient

    ok(cluster_dir, "cluster", "up", "--nodes", "1", "--base-port", "0")
    address = recorded(cluster_dir)[1]["address"]
    with CoordClient(address, timeout=10.0) as zk:
        zk.create("/kept", b"yes")
    ok(cluster_dir, "cluster", "down")
    ok(cluster_dir, "cluster", "up")
    assert recorded(cluster_dir)[1]["address"] == address
    with CoordClient(address, timeout=10.0) as zk:
        assert zk.get("/kept")[0] == b"yes"


def test_errors_are_one_line_with_their_exit_code(cluster_dir):
    assert "no cluster in" in fails(cluster_dir, 3, "cluster", "status")
    fails(cluster_dir, 3, "cluster", "kill", "1")
    fails(cluster_dir, 3, "cluster", "down")
    assert not cluster_dir.exists()             # looking made nothing

    ok(cluster_dir, "cluster", "up", "--nodes", "1", "--base-port", "0")
    assert "already running" in fails(cluster_dir, 4, "cluster", "up", "--nodes", "1", "--base-port", "0")
    assert "already running" in fails(cluster_dir, 4, "cluster", "start", "1")
    assert "no node 7" in fails(cluster_dir, 3, "cluster", "kill", "7")
    fails(cluster_dir, 3, "cluster", "logs", "7")
    fails(cluster_dir, 2, "cluster", "kill", "abc")
    ok(cluster_dir, "cluster", "kill", "1")
    assert "not running" in fails(cluster_dir, 4, "cluster", "kill", "1")
    assert "not running" in fails(cluster_dir, 4, "cluster", "pause", "1")
    assert "has 1 nodes, not 3" in fails(cluster_dir, 4, "cluster", "up", "--nodes", "3")


def test_a_taken_port_is_named_and_nothing_is_left_running(cluster_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = fails(cluster_dir, 5, "cluster", "up", "--nodes", "1", "--base-port", str(port))
    assert f"port {port} is in use" in err
    assert not (cluster_dir / "cluster.json").exists()


def test_even_sizes_warn_as_the_server_does(cluster_dir):
    r = cli(cluster_dir, "cluster", "up", "--nodes", "2", "--base-port", "0")
    assert r.returncode == 0, r.stderr
    assert "WARNING: a cluster of 2 nodes tolerates no more failures than one of 1" in r.stderr.decode()


def test_logs_follow_prints_what_is_added_until_ctrl_c(cluster_dir):
    import os
    import selectors
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    ok(cluster_dir, "cluster", "up", "--nodes", "1", "--base-port", "0")
    follow = subprocess.Popen([sys.executable, "-c", "from dcli.cli.main import main; main()",
                               "cluster", "logs", "1", "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=ROOT, env=dict(os.environ, DCLI_CLUSTER_DIR=str(cluster_dir)))
    sel = selectors.DefaultSelector()
    sel.register(follow.stdout, selectors.EVENT_READ)

    pending = [b""]

    def line() -> str:
        """The next line, waiting at most 30 s for it (read from the fd: no buffer hides lines)."""
        while b"\n" not in pending[0]:
            assert sel.select(30), "no line from logs -f"
            chunk = os.read(follow.stdout.fileno(), 4096)
            assert chunk, "logs -f ended"
            pending[0] += chunk
        first, pending[0] = pending[0].split(b"\n", 1)
        return first.decode()

    try:
        assert line().startswith("--- dcli cluster: starting node 1")
        assert line().startswith("dcli server listening on ")
        ok(cluster_dir, "cluster", "restart", "1")
        assert line().startswith("--- dcli cluster: starting node 1")       # printed as it is written
        assert line().startswith("dcli server listening on ")
        follow.send_signal(signal.SIGINT)
        assert follow.wait(30) == 130
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
