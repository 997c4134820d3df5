"""The key-value store on 3 real node processes: quorums with a node down, read repair, hinted
handoff, anti-entropy, range sharding, eventual keyspaces."""
from __future__ import annotations

import time
import uuid

import pytest

from dcli.wire import errors
from dcli_server.kv.versions import VectorClock, Version
from tests.cluster_fixture import KV_SERVER_ARGS, Cluster, ClusterFactory
from tests.waiting import eventually


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    factory = ClusterFactory(tmp_path_factory.mktemp("kv3"))
    try:
        c = factory(3, server_args=KV_SERVER_ARGS)
        for i in c.ids:
            c.wait_kv_up(i)
        yield c
    finally:
        factory.close()


@pytest.fixture
def prefix():
    return f"t{uuid.uuid4().hex[:8]}/"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    c = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
    if rep.when == "call" and rep.failed and isinstance(c, Cluster):
        rep.sections.append(("cluster logs", c.logs()))


def local(cluster: Cluster, node: int, keys: list[bytes], keyspace: str = "default"):
    """What one node's own store holds for `keys` (the replica, not a quorum read)."""
    with cluster.kv_store(node) as store:
        return [store.get(keyspace, k) for k in keys]


def values(versions) -> list[bytes]:
    return sorted(v.value for v in versions if v.value is not None)


def all_up(cluster: Cluster) -> bool:
    for i in cluster.running():
        cluster.wait_kv_up(i)
    return True


def test_reads_after_acknowledged_writes_survive_any_one_node_killed(cluster, prefix):
    for victim in (1, 2, 3):
        cluster.kill(victim)
        alive = [i for i in (1, 2, 3) if i != victim]
        with cluster.kv(alive[0]) as writer, cluster.kv(alive[1]) as reader:
            for i in range(15):
                key = f"{prefix}{i}"
                acked = writer.put(key, f"{victim}-{i}", w=2)
                assert acked.quorum.acks >= 2 and acked.quorum.w == 2 and acked.quorum.n == 3
                got = reader.get(key, r=2)
                assert got.value == f"{victim}-{i}".encode(), got
                answered = [o.node for o in got.quorum.replicas if o.outcome in ("current", "stale", "repaired")]
                assert str(victim) not in answered and len(answered) >= 2
        cluster.restart(victim)
        eventually(lambda: all_up(cluster), timeout=60, what="every node up again")


def test_strict_refuses_weak_quorums_and_eventual_keyspaces_take_them(cluster, prefix):
    with cluster.kv(1) as kv:
        with pytest.raises(errors.InvalidQuorumError, match="R=2 \\+ W=1 = 3 is not more than N=3"):
            kv.put(prefix + "k", "v", w=1)
        name = "ev" + uuid.uuid4().hex[:6]
        kv.create_keyspace(name, consistency="eventual")
        written = kv.put(prefix + "k", "v", keyspace=name)
        assert (written.quorum.w, written.quorum.n, written.quorum.consistency) == (1, 3, "eventual")
        assert kv.get(prefix + "k", keyspace=name, r=1).quorum.r == 1
        eventually(lambda: all(values(local(cluster, i, [(prefix + "k").encode()], name)[0]) == [b"v"]
                             for i in (1, 2, 3)), timeout=60, what="asynchronous replication to all three")


def test_read_repair_brings_stale_replicas_to_the_newest_version(cluster, prefix):
    key = (prefix + "rr").encode()
    with cluster.kv(2) as kv:
        first = kv.put(key, "old", w=3)
        assert first.quorum.acks == 3
        # node 1 alone learns of a newer version (as if the others had missed a write)
        newer = Version("9", 1, VectorClock.decode(kv.get(key, r=3).context), b"new")
    with cluster.kv_store(1) as store:
        store.apply("default", key, (newer,), int(time.time() * 1000))
    assert [values(local(cluster, i, [key])[0]) for i in (1, 2, 3)] == [[b"new"], [b"old"], [b"old"]]
    with cluster.kv(2) as kv:
        got = kv.get(key, r=3)
    assert got.values == [b"new"]
    outcomes = {o.node: o.outcome for o in got.quorum.replicas}
    assert outcomes == {"1": "current", "2": "repaired", "3": "repaired"}
    assert [values(local(cluster, i, [key])[0]) for i in (1, 2, 3)] == [[b"new"]] * 3


def test_hinted_handoff_delivers_to_a_node_after_it_restarts(cluster, prefix):
    keys = [f"{prefix}h{i}".encode() for i in range(20)]
    cluster.kill(3)
    with cluster.kv(1) as kv:
        for k in keys:
            result = kv.put(k, b"while-3-was-down", w=2)
            assert result.quorum.acks == 2
            assert {o.node: o.outcome for o in result.quorum.replicas}["3"] in ("hinted", "pending")
        # the coordinator keeps the hints (3 nodes, N=3: no node outside the key's replicas)
        eventually(lambda: sum(n.hints for n in kv.ring().nodes if n.up) >= len(keys), timeout=60, what="hints kept")
    cluster.restart(3)
    eventually(lambda: all(values(v) == [b"while-3-was-down"] for v in local(cluster, 3, keys)),
             timeout=60, what="node 3 to receive its hints")
    with cluster.kv(3) as kv:
        eventually(lambda: all(n.hints == 0 for n in kv.ring().nodes), timeout=60, what="hints to be dropped once delivered")


def test_range_sharded_scans_ask_only_the_owning_shards(cluster, prefix):
    name = "rg" + uuid.uuid4().hex[:6]
    with cluster.kv(1) as kv:
        ring = kv.create_keyspace(name, n=1, sharding="range", splits=["h", "p"])
        shards = next(k for k in ring.keyspaces if k.name == name).shards
        owners = {s.start: list(s.replicas) for s in shards}
        assert len({tuple(v) for v in owners.values()}) == 3
        for word in ("apple", "banana", "kiwi", "mango", "zebra"):
            kv.put(word, word.upper(), keyspace=name)
        low = kv.scan(start="a", end="c", keyspace=name)
        assert [k for k, _ in low.entries] == [b"apple", b"banana"] and low.asked == owners[b""]
        mid = kv.scan(prefix="k", keyspace=name)
        assert [k for k, _ in mid.entries] == [b"kiwi"] and mid.asked == owners[b"h"]
        every = kv.scan(keyspace=name)
        assert len(every.entries) == 5 and sorted(every.asked) == ["1", "2", "3"]


def test_a_write_to_a_node_that_holds_no_replica_is_forwarded_and_no_client_can_claim_forwarding(cluster):
    """N=1: a put to node 1 for a key another node holds is coordinated by that node (forwarded
    on the peer port), also when the request carries what was once the `forwarded` flag (field
    6), which made the node it reached coordinate."""
    import grpc

    from dcli.v1 import kv_pb2 as pb

    name = "fw" + uuid.uuid4().hex[:6]
    with cluster.kv(1) as kv:
        kv.create_keyspace(name, n=1, sharding="range", splits=["h", "p"])
        shards = next(k for k in kv.ring(name).keyspaces if k.name == name).shards
        # three shards on three nodes: one or two of them are another node's
        first = {b"": "a", b"h": "k", b"p": "z"}
        letter, owner = next((first[s.start], s.replicas[0]) for s in shards if s.replicas[0] != "1")
        assert kv.put(letter + "-put", "x", keyspace=name).quorum.coordinator == owner
    raw = pb.PutRequest(keyspace=name, key=f"{letter}-claimed".encode(), value=b"x").SerializeToString() + b"\x30\x01"
    with grpc.insecure_channel(cluster.address(1)) as ch:
        put = ch.unary_unary("/dcli.v1.KV/Put", request_serializer=None,
                             response_deserializer=pb.WriteResponse.FromString)
        answer = put(raw, timeout=15)
    assert answer.quorum.coordinator == owner and [o.node for o in answer.quorum.replicas] == [owner]


def test_the_ring_shows_nodes_down_and_back(cluster):
    with cluster.kv(1) as kv:
        ring = kv.ring()
        assert [n.id for n in ring.nodes] == ["1", "2", "3"] and all(n.up for n in ring.nodes)
        assert abs(sum(n.share for n in ring.nodes) - 1.0) < 1e-9
        assert all(abs(n.effective - 1.0) < 1e-9 for n in ring.nodes)     # N=3 on 3 nodes: all hold all
    cluster.kill(2)
    try:
        with cluster.kv(1) as kv:
            assert [n.up for n in kv.ring().nodes] == [True, False, True]
    finally:
        cluster.restart(2)
    eventually(lambda: all_up(cluster), timeout=60, what="node 2 up again")


def test_anti_entropy_repairs_a_replica_that_missed_writes(local_cluster, prefix):
    """Node 3 misses writes while down; the node keeping their hints goes down before it comes
    back, so no hint and no read reaches it: only the Merkle exchange with node 2 can."""
    args = list(KV_SERVER_ARGS)
    args[args.index("--kv-anti-entropy-ms") + 1] = "300"
    c = local_cluster(3, server_args=args)
    for i in c.ids:
        c.wait_kv_up(i)
    keys = [f"{prefix}ae{i}".encode() for i in range(40)]
    c.kill(3)
    with c.kv(1) as kv:
        for k in keys:
            assert kv.put(k, b"missed", w=2).quorum.acks == 2
        eventually(lambda: [n.hints for n in kv.ring().nodes][0] == len(keys), timeout=60, what="node 1 to keep the hints")
    c.kill(1)
    assert all(values(v) == [b"missed"] for v in local(c, 2, keys))
    c.restart(3)
    eventually(lambda: all(values(v) == [b"missed"] for v in local(c, 3, keys)), timeout=90,
             what="anti-entropy to copy the missed writes to node 3")
