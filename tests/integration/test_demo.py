"""`dcli demo ... --script`: the seed's sequences with real worker processes."""
from __future__ import annotations

import pytest

from tests.conftest import run_cli


def states(out: str) -> list[dict]:
    """Each printed state: {node: (znode, role, watches, notified)} plus the registry line."""
    found = []
    for block in out.strip().split("\n\n"):
        lines = block.splitlines()
        rows = {}
        registry = None
        for line in lines[2:]:
            if line.startswith("registry "):
                registry = line.split(": ", 1)[1].split()
            else:
                node, znode, role, watches, notified = line.split()
                rows[node] = (znode, role, watches, int(notified))
        found.append({"caption": lines[0], "rows": rows, "order": list(rows), "registry": registry})
    return found


@pytest.mark.slow
def test_election_demo_reproduces_the_seeds_sequence(server):
    r = run_cli("demo", "election", "--nodes", "4", "--script", server=server, timeout=180)
    assert r.returncode == 0, r.stderr
    s1, s2, s3, s4 = states(r.stdout.decode())
    z = {n: s1["rows"][n][0] for n in s1["rows"]}
    assert s1["order"] == ["node-1", "node-2", "node-3", "node-4"]
    assert [s1["rows"][n][1:3] for n in s1["order"]] == [("LEADER", "-"), ("follower", z["node-1"]),
                                                         ("follower", z["node-2"]), ("follower", z["node-3"])]
    # the leader dies: node-2 leads; it alone was notified
    assert s2["rows"]["node-2"][1] == "LEADER" and s2["rows"]["node-1"][1] == "dead"
    assert [s2["rows"][n][3] for n in ("node-2", "node-3", "node-4")] == [1, 0, 0]
    # the old leader rejoins at the end, watching the last node
    znode1, role1, watches1, _ = s3["rows"]["node-1"]
    assert s3["order"][-1] == "node-1" and role1 == "follower" and watches1 == z["node-4"]
    assert znode1 > z["node-4"]
    # a node in the middle dies: its successor closes the gap, nobody else is told
    dead = [n for n, row in s4["rows"].items() if row[1] == "dead"]
    assert dead == ["node-4"]
    assert s4["rows"]["node-1"][2] == z["node-3"] and s4["rows"]["node-1"][3] == 1
    assert s4["rows"]["node-2"][1] == "LEADER" and s4["rows"]["node-3"][3] == 0
    assert run_cli("zk", "ls", "/", server=server).stdout.decode().count("demo-") == 0


@pytest.mark.slow
def test_registry_demo_reproduces_the_seeds_sequence(server):
    r = run_cli("demo", "registry", "--nodes", "4", "--script", server=server, timeout=180)
    assert r.returncode == 0, r.stderr
    s1, s2, s3, s4, s5 = states(r.stdout.decode())
    assert s1["registry"] == ["127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"]   # not the leader
    assert s2["registry"] == ["127.0.0.1:8082", "127.0.0.1:8084"]                     # a worker died
    assert s3["registry"] == ["127.0.0.1:8082"]                                       # another died
    assert s4["registry"] == ["127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"]   # all rejoined
    assert s5["rows"]["node-2"][1] == "LEADER"                                        # the leader died:
    assert s5["registry"] == ["127.0.0.1:8083", "127.0.0.1:8084"]                     # node-2 deregistered


def test_demo_bad_input(server):
    r = run_cli("demo", "election", "--nodes", "1", "--script", server=server)
    assert r.returncode == 2 and "--nodes" in r.stderr.decode()
