"""Nodes talk to each other on their peer port only: the client port serves no peer method, and
the peer listener survives garbage (a bounded fuzz) while the cluster goes on taking writes."""
from __future__ import annotations

import asyncio
import random
import socket
import struct

import grpc
import pytest

from dcli.client import CoordClient

# what used to be served on the client port for other nodes
PEER_METHODS = ["/dcli.v1.Cluster/Raft", "/dcli.v1.Cluster/Forward", "/dcli.v1.Broker/OffsetForLeaderEpoch",
                *(f"/dcli.v1.KV/{m}" for m in ("Ping", "Membership", "ReplicaApply", "ReplicaRead", "ReplicaScan",
                                               "MerkleTrees", "RangeHashes", "StreamRange", "PullRanges"))]
FUZZ_CONNECTIONS = 150
KV_FUZZ_PER_METHOD = 30
BURSTS, BURST_WRITES = 3, 20_000
WAIT_S = 60


@pytest.fixture
def cluster(local_cluster):
    return local_cluster(3)


@pytest.mark.parametrize("method", PEER_METHODS)
def test_the_client_port_serves_no_peer_method(cluster, method):
    with grpc.insecure_channel(cluster.address(1)) as channel:
        with pytest.raises(grpc.RpcError) as e:
            channel.unary_unary(method)(b"\x08\x01", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_client_port_takes_no_fetch_as_a_replica(cluster):
    """A follower's fetch moves the leader's idea of that follower's log (and so the high
    watermark): only the peer port, which knows which node asks, may take one."""
    from dcli.v1 import broker_pb2 as pb
    from dcli.v1 import broker_pb2_grpc as pb_grpc

    with grpc.insecure_channel(cluster.address(1)) as channel:
        with pytest.raises(grpc.RpcError) as e:
            pb_grpc.BrokerStub(channel).Fetch(pb.FetchRequest(replica_id=2, max_wait_ms=0), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only a broker fetches as a replica" in e.value.details()


def test_each_node_has_its_own_peer_port(cluster):
    nodes = [cluster.manager.node(i) for i in cluster.ids]
    addresses = {n.address for n in nodes} | {n.peer_address for n in nodes}
    assert len(addresses) == 2 * len(nodes)
    for n in nodes:       # the peer port takes connections (and is not the gRPC API)
        with socket.create_connection(("127.0.0.1", n.peer_port), timeout=5):
            pass


def _garbage(rng: random.Random) -> bytes:
    """Random bytes, or frame headers with lies in them (huge lengths, unknown kinds)."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:       # a header claiming a payload of up to 4 GiB
        return struct.pack(">IBHQ", rng.randrange(1 << 32), rng.randrange(256), rng.randrange(1 << 16),
                           rng.randrange(1 << 64)) + rng.randbytes(rng.randrange(40))
    if kind == 2:       # a plausible HELLO with a wrong body
        body = rng.randbytes(rng.randrange(60))
        return struct.pack(">IBHQ", len(body), 1, 0, 0) + body
    return b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_garbage_on_the_peer_port_harms_nothing(cluster):
    rng = random.Random(20261207)
    target = cluster.manager.node(1)
    for _ in range(FUZZ_CONNECTIONS):
        try:
            with socket.create_connection(("127.0.0.1", target.peer_port), timeout=5) as s:
                s.sendall(_garbage(rng))
                s.settimeout(0.2)
                try:
                    s.recv(4096)        # whatever it answers, if anything; then it closes
                except OSError:
                    pass
        except OSError:
            pass                        # refused or reset: the listener may shed a flood
    with CoordClient(cluster.servers) as zk:          # the cluster still works, through every node
        for i in cluster.ids:
            with CoordClient(cluster.address(i)) as one:
                one.create(f"/after-fuzz-{i}", b"ok")
        assert sorted(c for c in zk.get_children("/") if c.startswith("after-fuzz")) == \
            [f"after-fuzz-{i}" for i in cluster.ids]
    states = cluster.status_all(timeout=5)
    assert all(s.state == "up" for s in states) and len({s.leader_id for s in states}) == 1


def test_a_burst_of_pipelined_writes_through_a_follower_keeps_the_leader(cluster):
    """Thousands of forwarded creates in flight: each is answered, and the leader stays the leader
    (forwarded frames run a frame per turn of the leader's loop; run back to back in its
    connection's reader they once held the loop long enough for an election)."""
    states = cluster.status_all(timeout=5)
    leader = next(s for s in states if s.role == "leader")
    follower = next(s for s in states if s.role == "follower")
    with CoordClient(cluster.address(follower.id), timeout=30) as zk:
        for burst in range(BURSTS):
            zk.create(f"/burst{burst}", b"")
            futures = [zk.create_async(f"/burst{burst}/n{i:05d}", b"x" * 16) for i in range(BURST_WRITES)]
            failed = []
            for f in futures:
                try:
                    f.result(timeout=WAIT_S)
                except Exception as e:        # noqa: BLE001 - counted, the test says which
                    failed.append(e)
            assert failed == [], f"burst {burst}: {len(failed)} failed, the first: {failed[0]!r}"
            assert len(zk.get_children(f"/burst{burst}")) == BURST_WRITES
    after = cluster.status(leader.id, timeout=5)
    assert (after.role, after.term) == ("leader", leader.term)


def _bad_kv_requests(rng: random.Random) -> list[tuple[int, bytes]]:
    """(method, payload): random bytes for every KV method, and well-formed messages that lie
    (siblings that do not decode, a document that is not a ring, a page past the spans)."""
    from dcli.v1 import kv_pb2 as pb
    from dcli_server.listeners import peer_methods as m

    methods = [m.KV_PING, m.KV_MEMBERSHIP, m.KV_STATUS, m.KV_APPLY, m.KV_READ, m.KV_SCAN, m.KV_MERKLE,
               m.KV_HASHES, m.KV_RANGE_PAGE, m.KV_PULL, m.KV_PUT, m.KV_DELETE]
    out = [(method, rng.randbytes(rng.randrange(1, 200))) for method in methods for _ in range(KV_FUZZ_PER_METHOD)]
    lies = [(m.KV_APPLY, pb.ReplicaApplyRequest(keyspace="default", entries=[pb.KVEntry(key=b"k", siblings=b"\xff" * 9)])),
            (m.KV_MEMBERSHIP, pb.MembershipRequest(document='{"nodes": 1}')),
            (m.KV_MEMBERSHIP, pb.MembershipRequest(document="not json")),
            (m.KV_RANGE_PAGE, pb.RangePageRequest(keyspace="default", span=7)),
            (m.KV_MERKLE, pb.SpansRequest(keyspace="default", spans=[pb.KVSpan(start=1, end=2)], depth=60)),
            (m.KV_SCAN, pb.ScanRequest(keyspace="default", limit=-5)),
            (m.KV_READ, pb.ReplicaReadRequest(keyspace="../x", keys=[b"k"])),
            (m.KV_PUT, pb.PutRequest(keyspace="default", key=b"k", value=b"v", context=b"\xff\x00")),
            (m.KV_PULL, pb.PullRangesRequest(epoch=12345))]
    return out + [(method, msg.SerializeToString()) for method, msg in lies]


def test_bad_kv_requests_on_the_peer_port_get_error_answers(tmp_path):
    """A node's KV calls come only on the peer port: requests that do not decode, or decode to
    nonsense, are answered with an error (never a traceback), and the node goes on serving."""
    from dcli.client.kv import KVClient
    from dcli.cluster.manager import free_ports
    from dcli.v1 import kv_pb2 as pb
    from dcli.v1 import peer_pb2 as ppb
    from dcli_server.listeners.peer_connection import PeerError
    from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
    from dcli_server.listeners.peer_methods import KV_PING
    from dcli_server.listeners.peer_transport import PeerTransport
    from tests.conftest import ServerProcess

    client_port, peer_port = free_ports(2)
    node = ServerProcess(tmp_path / "node-5", "--node-id", "5", "--peers", f"5=127.0.0.1:{client_port}/{peer_port}",
                         port=client_port).start()
    try:
        async def exchange() -> tuple[dict, ppb.KVPeerReply]:
            caller = PeerTransport(ClusterSecretHandshake(1))      # the lower id dials
            caller.add_peer(5, f"127.0.0.1:{peer_port}")
            outcomes = {"error": 0, "answered": 0}
            try:
                for method, payload in _bad_kv_requests(random.Random(20261207)):
                    try:
                        reply = ppb.KVPeerReply.FromString(await caller.request(5, method, payload, timeout=10))
                    except PeerError:
                        outcomes["error"] += 1
                    else:
                        assert reply.WhichOneof("kind") in ("answer", "error")
                        outcomes["answered"] += 1
                ping = pb.KVPingRequest(epoch=0, digest="", **{"from": "1"})
                good = ppb.KVPeerReply.FromString(await caller.request(5, KV_PING, ping.SerializeToString(), timeout=10))
            finally:
                await caller.close()
            return outcomes, good

        outcomes, good = asyncio.run(exchange())
        assert outcomes["error"] > 0, outcomes
        assert pb.KVPingResponse.FromString(good.answer).node == "5"
        with KVClient(node.address, timeout=10) as kv:
            assert kv.put("after-kv-fuzz", "ok").quorum.acks == 1
        log = node.log()
        assert "Traceback" not in log
        assert "a bad kv" in log
    finally:
        node.kill()
