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
HANDSHAKE_WAIT_S = 3


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



async def _post_as(cluster, node_id: int, to: int, payload: bytes, secret: bytes | None) -> bool:
    """Dial node `to`'s peer port as node `node_id` with `secret` and post one Raft message;
    whether the handshake went through."""
    from dcli_server.listeners.peer import RAFT
    from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
    from dcli_server.listeners.peer_transport import PeerTransport

    from dcli_server.listeners.peer_identity import wire_id

    # the cluster's id is no secret: knowing it alone lets no one in
    transport = PeerTransport(ClusterSecretHandshake(node_id, wire_id(cluster.manager.cluster_id), secret=secret))
    transport.add_peer(to, cluster.manager.node(to).peer_address)
    try:
        # a handshake takes milliseconds on loopback; one that fails is retried by the transport
        # and never connects: a few seconds tell the two apart
        if not await transport.wait_connected(to, HANDSHAKE_WAIT_S):
            return False
        return transport.post(to, RAFT, payload)
    finally:
        await transport.close()


def _forged_heartbeat(cluster, claimed: int) -> tuple[bytes, int]:
    from dcli_server.consensus.messages import Message, MessageType, encode

    cluster.wait_for(lambda: cluster.status(3).term > 0, WAIT_S, message="node 3 to have a term")
    term = cluster.status(3).term
    return encode(Message(MessageType.HEARTBEAT, from_=claimed, to=3, term=term + 100, commit=0)), term


def test_a_peer_without_the_cluster_secret_is_refused(cluster):
    """`dcli cluster up` gives the nodes a secret; a process that does not know it (or knows
    another) fails the handshake, and what it sends never reaches Raft."""
    import asyncio

    forged, term = _forged_heartbeat(cluster, claimed=1)
    for secret in (None, b"not the secret of this cluster"):
        assert asyncio.run(_post_as(cluster, 1, 3, forged, secret)) is False
    node3_log = cluster.manager.directory / "node-3.log"
    cluster.wait_for(lambda: "peer listener: refused" in node3_log.read_text(errors="replace"), WAIT_S,
                     message="node 3 to log the refused handshake")
    assert cluster.status(3).term < term + 100
    with CoordClient(cluster.address(3)) as zk:
        zk.create("/after-refusal", b"")


def test_a_raft_message_claiming_another_sender_is_refused(cluster):
    """Whoever the handshake proved is calling is who the message is from: a node that knows the
    secret but claims to be another node (a forged heartbeat with a far higher term) is dropped
    with a log line, and the node's term does not move."""
    import asyncio

    forged, term = _forged_heartbeat(cluster, claimed=2)
    secret = (cluster.manager.directory / "cluster.secret").read_bytes().strip()
    assert asyncio.run(_post_as(cluster, 1, 3, forged, secret)) is True
    node3_log = cluster.manager.directory / "node-3.log"
    cluster.wait_for(lambda: "claims to be from node 2" in node3_log.read_text(errors="replace"), WAIT_S,
                     message="node 3 to log the forged message")
    assert cluster.status(3).term < term + 100
    with CoordClient(cluster.address(3)) as zk:                 # and it goes on serving
        zk.create("/after-forgery", b"")


RETIRED_KV_MEMBERSHIP = 21     # peer_methods.py: never reused


def _bad_kv_requests(rng: random.Random) -> list[tuple[int, bytes]]:
    """(method, payload): random bytes for every KV method and for the retired number 21 (the
    ring document's push and pull, gone since the ring lives in the tree), and well-formed
    messages that lie (siblings that do not decode, a page past the spans)."""
    from dcli.v1 import kv_pb2 as pb
    from dcli_server.listeners import peer_methods as m

    methods = [m.KV_PING, RETIRED_KV_MEMBERSHIP, m.KV_STATUS, m.KV_APPLY, m.KV_READ, m.KV_SCAN, m.KV_MERKLE,
               m.KV_HASHES, m.KV_RANGE_PAGE, m.KV_PULL, m.KV_PUT, m.KV_DELETE]
    out = [(method, rng.randbytes(rng.randrange(1, 200))) for method in methods for _ in range(KV_FUZZ_PER_METHOD)]
    lies = [(m.KV_APPLY, pb.ReplicaApplyRequest(keyspace="default", entries=[pb.KVEntry(key=b"k", siblings=b"\xff" * 9)])),
            (RETIRED_KV_MEMBERSHIP, b'{"epoch": 9, "nodes": {}}'),
            (m.KV_RANGE_PAGE, pb.RangePageRequest(keyspace="default", span=7)),
            (m.KV_MERKLE, pb.SpansRequest(keyspace="default", spans=[pb.KVSpan(start=1, end=2)], depth=60)),
            (m.KV_SCAN, pb.ScanRequest(keyspace="default", limit=-5)),
            (m.KV_READ, pb.ReplicaReadRequest(keyspace="../x", keys=[b"k"])),
            (m.KV_PUT, pb.PutRequest(keyspace="default", key=b"k", value=b"v", context=b"\xff\x00")),
            (m.KV_PULL, pb.PullRangesRequest(epoch=12345))]
    return out + [(method, msg if isinstance(msg, bytes) else msg.SerializeToString()) for method, msg in lies]


def test_bad_kv_requests_on_the_peer_port_get_error_answers(tmp_path):
    """A node's KV calls come only on the peer port: requests that do not decode, or decode to
    nonsense, are answered with an error (never a traceback), and the node goes on serving."""
    from dcli.client.kv import KVClient
    from dcli.cluster.manager import free_ports
    from dcli.v1 import kv_pb2 as pb
    from dcli.v1 import peer_pb2 as ppb
    from dcli_server.listeners.peer_connection import PeerError
    from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
    from dcli_server.listeners.peer_identity import stored, wire_id
    from dcli_server.listeners.peer_methods import KV_PING
    from dcli_server.listeners.peer_transport import PeerTransport
    from tests.conftest import ServerProcess

    client_port, peer_port = free_ports(2)
    node = ServerProcess(tmp_path / "node-5", "--node-id", "5", "--peers", f"5=127.0.0.1:{client_port}/{peer_port}",
                         port=client_port).start()
    try:
        async def exchange() -> tuple[dict, ppb.KVPeerReply]:
            cluster_id = wire_id(stored(tmp_path / "node-5"))     # derived from its --peers, and kept
            caller = PeerTransport(ClusterSecretHandshake(1, cluster_id))      # the lower id dials
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
                with pytest.raises(PeerError):              # no node serves the retired method
                    await caller.request(5, RETIRED_KV_MEMBERSHIP, b"", timeout=10)
                ping = pb.KVPingRequest(epoch=0, **{"from": "1"})
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
