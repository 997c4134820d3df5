"""No acknowledged write is lost: SIGKILL of every node in turn (5 nodes), and nodes joining and
leaving the ring (3 + 1) while a writer keeps writing."""
from __future__ import annotations

import threading

import pytest

from dcli.wire import errors
from tests.kv_cluster import KVCluster
from tests.waiting import eventually

pytestmark = pytest.mark.slow


class Writer(threading.Thread):
    """Writes `key-i` = `i:seq` round the keys until stopped; remembers the last acknowledged seq
    of each key. A node that does not answer makes it move to the next address."""

    def __init__(self, cluster: KVCluster, nodes: list[int], keys: int = 40):
        super().__init__(daemon=True)
        self.cluster, self.nodes, self.keys = cluster, list(nodes), keys
        self.acked: dict[str, int] = {}
        self.count = 0
        self.failures = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        from dcli.client.kv import KVClient

        seq, turn = 0, 0
        while not self.stop_event.is_set() and seq < 20_000:
            seq += 1
            key = f"key-{seq % self.keys}"
            node = self.nodes[turn % len(self.nodes)]
            try:
                with KVClient(self.cluster.address(node), timeout=10) as kv:
                    kv.put(key, f"{seq}", w=2)
                self.acked[key] = seq
                self.count += 1
            except (errors.UnavailableError, errors.QuorumNotReachedError):
                self.failures += 1
                turn += 1

    def wait_more(self, n: int, what: str) -> None:
        target = self.count + n
        eventually(lambda: self.count >= target, timeout=120, what=f"{n} more acknowledged writes {what}")

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)


def check_every_acknowledged_write(cluster: KVCluster, nodes: list[int], acked: dict[str, int]) -> None:
    assert acked
    with cluster.client(*nodes) as kv:
        for key, seq in acked.items():
            got = kv.get(key, r=2)
            newest = max((int(v) for v in got.values), default=-1)
            assert newest >= seq, (key, seq, got)


@pytest.fixture
def five(tmp_path):
    c = KVCluster(tmp_path, 5).start()
    yield c
    c.stop()


def test_sigkill_of_any_node_loses_no_acknowledged_write(five):
    writer = Writer(five, [1, 2, 3, 4, 5])
    writer.start()
    try:
        writer.wait_more(20, "before any kill")
        for victim in (1, 2, 3, 4, 5):
            five.kill(victim)
            writer.wait_more(20, f"with node {victim} killed")
            five.restart(victim)
            writer.wait_more(10, f"after node {victim} restarted")
    finally:
        writer.stop()
    for i in five.running():
        five.wait_all_up(i)
    check_every_acknowledged_write(five, [1, 2, 3, 4, 5], writer.acked)


def test_joining_and_removing_nodes_under_writes_loses_nothing(tmp_path):
    c = KVCluster(tmp_path, 3, spare=1).start()
    writer = Writer(c, [2, 3])
    try:
        writer.start()
        writer.wait_more(30, "before the join")
        c.restart(4)          # first start of the spare node: not on the ring yet
        with c.client(2) as kv:
            phases = [p.phase for p in kv.rebalance(add={"4": c.member(4)})]
            assert phases[0] == "plan" and phases[-1] == "done" and "stream" in phases
            ring = kv.ring()
            assert [n.id for n in ring.nodes] == ["1", "2", "3", "4"] and not ring.moving
        writer.wait_more(30, "after the join")
        with c.client(3) as kv:
            phases = [p.phase for p in kv.rebalance(remove=["1"])]
            assert phases[-1] == "done"
            assert [n.id for n in kv.ring().nodes] == ["2", "3", "4"]
        writer.wait_more(30, "after the removal")
    finally:
        writer.stop()
        c.kill(1)             # the removed node's copies must not be needed
    try:
        with c.client(4) as kv:
            assert kv.ring().nodes[-1].keys > 0
        check_every_acknowledged_write(c, [2, 3, 4], writer.acked)
    finally:
        c.stop()
