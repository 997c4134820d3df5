"""The peer listener: node-to-node exchanges on a port of their own.

One PeerTransport (frames over TCP, one connection per pair of nodes, peer_transport.py) carries
Raft's messages, forwarded requests with their answers, the brokers' replication (a follower's
fetches and OffsetForLeaderEpoch, elections handed to the controller) and the key-value store's
calls (peer_kv.py). Each kind has a method number (peer_methods.py); payloads are decoded here, and one that does not decode is dropped (or
answered with an error) with one rate-limited log line: the connection and the node go on. A
follower fetches as the node the handshake said it is, whatever its request claims. The client
port serves none of this. Who may connect: peer_tls.py (mutual TLS), peer_handshake.py (the
cluster id and secret), peer_identity.py (which cluster this node is of).

    peers = PeerListener(node_id=1, listen="127.0.0.1:8181", cluster_id=wire_id(cid), secret=s, tls=tls)
    host, port = await peers.start()
    node = CoordNode(config, transport=peers.raft, channel=peers)
    peers.attach(node)                       # from now on, what arrives goes to the node
    peers.attach_broker(broker)              # and to the broker: broker=Broker(..., peers=peers.brokers)
    peers.attach_kv(kv)                      # and to the KV node: kv=KVNode(..., FramesKVTransport(peers.transport))
    ...
    await peers.close()
"""
from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from dcli.v1 import broker_pb2 as bpb
from dcli.v1 import peer_pb2 as ppb
from dcli.wire.addresses import join_host_port, split_host_port
from dcli_server.api.broker_service import elect_leaders, fetch, offset_for_leader_epoch
from dcli_server.broker.peers import PeerUnreachable as BrokerUnreachable
from dcli_server.listeners.peer_connection import PeerError, PeerUnreachable
from dcli_server.listeners.peer_kv import KVPeerService
from dcli_server.listeners.peer_methods import (BROKER_ELECT, BROKER_EPOCH_END, BROKER_FETCH, FORWARD,
                                                FORWARD_REPLIES, RAFT)
from dcli_server.listeners.ratelimit import RateLimitedLog
from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
from dcli_server.listeners.peer_tls import PeerTLS
from dcli_server.listeners.peer_transport import PeerTransport

log = logging.getLogger("dcli.server.peer")
limited = RateLimitedLog(log)



class RaftOverFrames:
    """The replica's RaftTransport (cluster/transport.py) on the peer transport."""

    def __init__(self, transport: PeerTransport):
        self._transport = transport

    def add_peer(self, node_id: int, peer_address: str) -> None:
        self._transport.add_peer(node_id, peer_address, user="raft")

    def remove_peer(self, node_id: int) -> None:
        self._transport.remove_peer(node_id, user="raft")       # the KV store's peers stay

    def send(self, to: int, message: bytes) -> None:
        self._transport.post(to, RAFT, message)     # dropped when down or full: Raft resends

    def reachable(self, node_id: int) -> bool:
        return self._transport.reachable(node_id)


class FramesBrokerLink:
    """A broker's calls to broker `broker_id` (BrokerLink, broker/peers.py) on the peer transport."""

    def __init__(self, transport: PeerTransport, broker_id: int):
        self._transport = transport
        self.broker_id = broker_id

    async def _call(self, method: int, request, answer, timeout: float):
        try:
            payload = await self._transport.request(self.broker_id, method, request.SerializeToString(), timeout)
            return answer.FromString(payload)
        except (PeerUnreachable, PeerError, DecodeError) as e:
            raise BrokerUnreachable(f"broker {self.broker_id}: {str(e) or type(e).__name__}") from None

    async def fetch(self, request, timeout: float):
        return await self._call(BROKER_FETCH, request, bpb.FetchResponse, timeout)

    async def offset_for_leader_epoch(self, request, timeout: float):
        return await self._call(BROKER_EPOCH_END, request, bpb.OffsetForLeaderEpochResponse, timeout)

    async def elect_leaders(self, request, timeout: float):
        return await self._call(BROKER_ELECT, request, bpb.ElectLeadersResponse, timeout)

    async def close(self) -> None:
        pass                    # the connection is the transport's, shared by everything


class FramesBrokerPeers:
    def __init__(self, transport: PeerTransport):
        self._transport = transport

    def link(self, broker_id: int) -> FramesBrokerLink:
        return FramesBrokerLink(self._transport, broker_id)


class PeerListener:
    def __init__(self, node_id: int, listen: str, *, cluster_id: int = 0, secret: bytes | None = None,
                 tls: PeerTLS | None = None):
        self.listen = listen
        self.transport = PeerTransport(ClusterSecretHandshake(node_id, cluster_id, secret), on_state=self._on_state,
                                       tls=tls)
        self.raft = RaftOverFrames(self.transport)
        self.brokers = FramesBrokerPeers(self.transport)
        self._node = None
        self._broker = None
        self.address = ""                       # host:port once bound

    async def start(self) -> tuple[str, int]:
        """Bind the port; (host, port). OSError if it is taken."""
        host, port = split_host_port(self.listen, "--peer-listen", allow_zero=True)
        port = await self.transport.listen(host, port)
        self.address = join_host_port(host, port)
        return host, port

    def attach(self, node) -> None:
        """Hand what arrives to `node` (a CoordNode) from now on."""
        self._node = node
        t = self.transport
        t.handle_message(RAFT, self._raft)
        t.handle_message(FORWARD, self._forward)
        t.handle_message(FORWARD_REPLIES, self._replies)

    def attach_broker(self, broker) -> None:
        """Serve the other brokers' replication calls from `broker` (a Broker)."""
        self._broker = broker
        t = self.transport
        t.handle_request(BROKER_FETCH, self._fetch)
        t.handle_request(BROKER_EPOCH_END, self._epoch_end)
        t.handle_request(BROKER_ELECT, self._elect)

    def attach_kv(self, kv) -> None:
        """Serve the other KV nodes' calls from `kv` (a KVNode)."""
        KVPeerService(kv).register(self.transport)

    async def close(self) -> None:
        await self.transport.close()

    # -- what arrives -------------------------------------------------------------------------

    def _raft(self, peer: int, payload: bytes) -> None:
        try:
            self._node.replica.step(payload, sender=peer)
        except ValueError as e:             # a message that does not decode, or not from `peer`
            limited.warning(f"raft:{peer}", "dropping a bad raft message from node %d: %s", peer, e)

    def _forward(self, peer: int, payload: bytes) -> None:
        try:
            frame = ppb.ForwardFrame.FromString(payload)
        except DecodeError as e:
            limited.warning(f"forward:{peer}", "dropping a bad forward frame from node %d: %s", peer, e)
            return
        self._node.forwarding.on_frame(peer, frame)

    def _replies(self, peer: int, payload: bytes) -> None:
        try:
            replies = ppb.ForwardReplies.FromString(payload)
        except DecodeError as e:
            limited.warning(f"replies:{peer}", "dropping bad forward replies from node %d: %s", peer, e)
            return
        self._node.forward_channel.on_replies(peer, replies)

    async def _fetch(self, peer: int, payload: bytes) -> bytes:
        request = _decode(bpb.FetchRequest, payload, "fetch", peer)
        return (await fetch(self._broker, request, replica_id=peer)).SerializeToString()

    async def _epoch_end(self, peer: int, payload: bytes) -> bytes:
        request = _decode(bpb.OffsetForLeaderEpochRequest, payload, "epoch end", peer)
        return (await offset_for_leader_epoch(self._broker, request)).SerializeToString()

    async def _elect(self, peer: int, payload: bytes) -> bytes:
        request = _decode(bpb.ElectLeadersRequest, payload, "election", peer)
        return (await elect_leaders(self._broker, request, forwarded=True)).SerializeToString()

    def _on_state(self, peer: int, up: bool) -> None:
        if not up and self._node is not None:
            self._node.on_peer_down(peer)

    # -- PeerChannel (cluster/forward.py) -----------------------------------------------------

    async def wait_connected(self, node_id: int, timeout: float) -> bool:
        return await self.transport.wait_connected(node_id, timeout)

    async def send_forward(self, to: int, frame: ppb.ForwardFrame) -> None:
        await self.transport.send(to, FORWARD, frame.SerializeToString())

    async def send_replies(self, to: int, replies: ppb.ForwardReplies) -> None:
        await self.transport.send(to, FORWARD_REPLIES, replies.SerializeToString())


def _decode(message_type, payload: bytes, what: str, peer: int):
    """A request's payload, or ValueError (the caller gets an error answer) with one log line."""
    try:
        return message_type.FromString(payload)
    except DecodeError as e:
        limited.warning(f"{what}:{peer}", "a bad %s request from node %d: %s", what, peer, e)
        raise ValueError(f"malformed {what} request") from None
