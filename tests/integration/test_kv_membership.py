"""No acknowledged write is lost: SIGKILL of every node in turn (5 nodes), and nodes joining and
leaving the ring (3 + 1) while a writer keeps writing. The ring lives in the tree: a change made
through one node reaches every node, one that was down too, with no exchange between KV nodes."""
from __future__ import annotations

import threading

import pytest

from dcli.wire import errors
from tests.cluster_fixture import KV_SERVER_ARGS, Cluster
from tests.waiting import eventually

pytestmark = pytest.mark.slow


class Writer(threading.Thread):
    """Writes `key-i` = `i:seq` round the keys until stopped; remembers the last acknowledged seq
    of each key. A node that does not answer makes it move to the next address."""

    def __init__(self, cluster: Cluster, nodes: list[int], keys: int = 40):
        super().__init__(daemon=True)
        self.cluster, self.nodes, self.keys = cluster, list(nodes), keys
        self.acked: dict[str, int] = {}
        self.count = 0
        self.failures = 0
        self.error: BaseException | None = None       # what ended the writer, if not stop()
        self.failed_with: dict[str, int] = {}           # the writes not acknowledged, by error
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            self.write()
        except BaseException as e:      # noqa: BLE001 - wait_more reports it
            self.error = e
            raise

    def write(self) -> None:
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
            except errors.DcliError as e:
                # not acknowledged: a node down, restarting or short of a quorum (any other
                # error is a wrong answer and ends the writer, which wait_more reports)
                if e.exit_code != errors.ExitCode.UNAVAILABLE:
                    raise
                self.failures += 1
                self.failed_with[type(e).__name__] = self.failed_with.get(type(e).__name__, 0) + 1
                turn += 1

    def wait_more(self, n: int, what: str) -> None:
        target = self.count + n

        def more() -> bool:
            if self.error is not None:
                raise AssertionError(f"the writer stopped {what}: {self.error!r}")
            return self.count >= target
        try:
            eventually(more, timeout=120, errors=(), what=f"{n} more acknowledged writes {what}")
        except pytest.fail.Exception as e:
            pytest.fail(f"{e.msg}; writes not acknowledged, by error: {self.failed_with}")

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=60)


def check_every_acknowledged_write(cluster: Cluster, nodes: list[int], acked: dict[str, int]) -> None:
    assert acked
    with cluster.kv(*nodes) as kv:
        for key, seq in acked.items():
            got = kv.get(key, r=2)
            newest = max((int(v) for v in got.values), default=-1)
            assert newest >= seq, (key, seq, got)


def started(local_cluster, nodes: int) -> Cluster:
    c = local_cluster(nodes, server_args=KV_SERVER_ARGS)
    for i in c.ids:
        c.wait_kv_up(i)
    return c


@pytest.fixture
def five(local_cluster):
    return started(local_cluster, 5)


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
        five.wait_kv_up(i)
    check_every_acknowledged_write(five, [1, 2, 3, 4, 5], writer.acked)


def test_joining_and_removing_nodes_under_writes_loses_nothing(local_cluster):
    c = started(local_cluster, 3)
    writer = Writer(c, [2, 3])
    try:
        writer.start()
        writer.wait_more(30, "before the join")
        new = c.add_node()          # a member of the coordination cluster first, not on the ring yet
        assert new == 4
        with c.kv(2) as kv:
            phases = [p.phase for p in kv.rebalance(add={"4": c.member(4)})]
            assert phases[0] == "plan" and phases[-1] == "done" and "stream" in phases
            ring = kv.ring()
            assert [n.id for n in ring.nodes] == ["1", "2", "3", "4"] and not ring.moving
        writer.wait_more(30, "after the join")
        with c.kv(3) as kv:
            phases = [p.phase for p in kv.rebalance(remove=["1"])]
            assert phases[-1] == "done"
            assert [n.id for n in kv.ring().nodes] == ["2", "3", "4"]
        writer.wait_more(30, "after the removal")
    finally:
        writer.stop()
    c.kill(1)             # the removed node's copies must not be needed
    with c.kv(4) as kv:
        assert kv.ring().nodes[-1].keys > 0
    check_every_acknowledged_write(c, [2, 3, 4], writer.acked)


def test_a_ring_change_reaches_every_node_through_the_tree(local_cluster):
    """A keyspace made through node 1 is in every node's ring; node 3, down meanwhile, reads it
    from its tree when it starts. No ring travels between KV nodes (no such peer call is left)."""
    from dcli_server.listeners import peer_methods

    assert not hasattr(peer_methods, "KV_MEMBERSHIP")
    c = started(local_cluster, 3)
    c.kill(3)
    with c.kv(1) as kv:
        epoch = kv.create_keyspace("users", n=2).epoch
        assert epoch == 1
    for i in (1, 2):
        with c.kv(i) as kv:
            c.wait_for(lambda: kv.ring().epoch == epoch, 30, message=f"node {i} to adopt epoch {epoch}")
            assert kv.ring().answered_by == str(i)
    c.restart(3)
    with c.kv(3) as kv:
        ring = kv.ring(keyspace="users")
        assert (ring.answered_by, ring.epoch) == ("3", epoch)
        assert [ks.name for ks in ring.keyspaces] == ["default", "users"]
    with c.kv(2) as kv:
        assert kv.put("k", "v", keyspace="users").quorum.n == 2
