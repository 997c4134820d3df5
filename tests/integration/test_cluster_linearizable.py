"""Histories of concurrent clients on a 3-node cluster, under a leader SIGKILL or SIGSTOP, are
linearizable: writes (create, set, conditional set, delete) and `sync` + `get` reads.

Plain reads are served by the node a client is connected to and may be stale (as in
ZooKeeper), so a read here is `sync` then `get`, one op spanning both calls.
"""
from __future__ import annotations

import random
import threading

import pytest

from dcli.client import CoordClient

from tests.linearizability import Recorder, check

WAIT_S = 30.0
PATHS = ["/lin/a", "/lin/b", "/lin/c"]
CLIENTS = 4
OPS_PER_CLIENT = 120


def workload(c, rec: Recorder, client: int, seed: int, started: threading.Event) -> None:
    rng = random.Random(seed)
    ids = c.ids[client % len(c.ids):] + c.ids[:client % len(c.ids)]
    with CoordClient(",".join(c.address(i) for i in ids), timeout=10.0) as zk:
        for n in range(OPS_PER_CLIENT):
            if n == OPS_PER_CLIENT // 4:
                started.set()
            path = rng.choice(PATHS)
            kind = rng.choice(["create", "set", "cas", "get", "get", "delete"])
            value = b"%d-%d" % (client, n)
            if kind == "create":
                with rec.op(client, "create", path, value) as op:
                    op.ok(zk.create(path, value))
            elif kind == "set":
                with rec.op(client, "set", path, (value, -1)) as op:
                    op.ok(zk.set(path, value))
            elif kind == "cas":
                version = rng.randrange(0, 4)
                with rec.op(client, "set", path, (value, version)) as op:
                    op.ok(zk.set(path, value, version=version))
            elif kind == "delete":
                with rec.op(client, "delete", path, -1) as op:
                    op.ok(zk.delete(path))
            else:
                with rec.op(client, "get", path) as op:
                    zk.sync(path)
                    op.ok(zk.get(path))


def run_history(c, fault) -> Recorder:
    with CoordClient(c.servers) as zk:
        zk.create("/lin", b"")
    rec = Recorder()
    started = threading.Event()
    threads = [threading.Thread(target=workload, args=(c, rec, i, 1000 + i, started)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    assert started.wait(WAIT_S)
    fault()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    return rec


def leader(c) -> int:
    return c.wait_for(lambda: next((s.id for s in c.status_all() if s.up and s.role == "leader"), None), WAIT_S)


@pytest.mark.slow
def test_linearizable_through_a_leader_sigkill(local_cluster):
    c = local_cluster(3)
    lead = leader(c)
    rec = run_history(c, lambda: c.kill(lead))
    history = rec.history()
    assert len(history) == CLIENTS * OPS_PER_CLIENT
    result = check(history, timeout=60)
    assert result.ok, result.detail


@pytest.mark.slow
def test_linearizable_through_a_paused_leader(local_cluster):
    c = local_cluster(3)
    lead = leader(c)

    def pause_then_resume():
        c.pause(lead)
        c.wait_for(lambda: any(s.up and s.role == "leader" and s.id != lead for s in c.status_all()), WAIT_S)
        c.resume(lead)

    rec = run_history(c, pause_then_resume)
    result = check(rec.history(), timeout=60)
    assert result.ok, result.detail
