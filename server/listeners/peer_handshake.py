"""The first frames on a peer connection: who is on the other end, and may it talk to us.

A `Handshake` runs once per connection before any other frame, over frames of kind HELLO that
may carry at most `HANDSHAKE_MAX_PAYLOAD` bytes. The dialling side calls `dial` (it knows which
node it meant to reach), the accepting side `accept`; both return the other node's id or raise
`HandshakeError`, after which the connection is closed.

`ClusterSecretHandshake` is the hook point for peer authentication. It exchanges node ids and the
cluster id (a digest of it: peer_identity.wire_id), and with a shared secret does a mutual
HMAC-SHA256 challenge-response (each side proves it knows the secret by MACing the other side's fresh nonce). Nothing here hides or
protects the frames that follow: that is TLS's part, which runs before this handshake when the
peer listener has certificates (peer_tls.py); with both, both apply.

    hs = ClusterSecretHandshake(node_id=1, cluster_id=7, secret=b"...")
    peer_id = await hs.dial(stream, expect=2)      # the dialling node
    peer_id = await hs.accept(stream)              # the listening node
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Protocol

from dcli_server.listeners.peer_frames import Frame, Kind
from dcli_server.listeners.peer_stream import FrameStream

VERSION = 1
_HELLO = struct.Struct(">BIQ16s")           # version, node id, cluster id, nonce
_MAC_SIZE = 32


class HandshakeError(Exception):
    """The other side is not a node of this cluster, or did not prove it."""


class Handshake(Protocol):
    node_id: int

    async def dial(self, stream: FrameStream, expect: int) -> int: ...

    async def accept(self, stream: FrameStream) -> int: ...


async def _hello(stream: FrameStream) -> bytes:
    frame = await stream.read()
    if frame.kind != Kind.HELLO:
        raise HandshakeError(f"expected a handshake frame, got kind {frame.kind}")
    return frame.payload


def _send(stream: FrameStream, payload: bytes) -> None:
    stream.write(Frame(Kind.HELLO, 0, 0, payload))


class ClusterSecretHandshake:
    """Node id and cluster id, and with a secret, proof of it both ways (three HELLO frames)."""

    def __init__(self, node_id: int, cluster_id: int = 0, secret: bytes | None = None):
        if not 0 < node_id < 1 << 32:
            raise ValueError(f"node id {node_id} is out of range")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self._secret = secret

    def _mac(self, label: bytes, *parts: bytes) -> bytes:
        if self._secret is None:
            return b""
        return hmac.new(self._secret, label + b"".join(parts), hashlib.sha256).digest()

    def _parse(self, payload: bytes, with_mac: bool) -> tuple[int, bytes, bytes]:
        size = _HELLO.size + (_MAC_SIZE if with_mac and self._secret is not None else 0)
        if len(payload) != size:
            raise HandshakeError(f"handshake frame of {len(payload)} bytes, expected {size}")
        version, node_id, cluster_id, nonce = _HELLO.unpack_from(payload)
        if version != VERSION:
            raise HandshakeError(f"peer protocol version {version}, this node speaks {VERSION}")
        if cluster_id != self.cluster_id:
            raise HandshakeError(f"node {node_id} is of another cluster (cluster id digest {cluster_id:016x}, "
                                 f"this cluster's is {self.cluster_id:016x}): a node of another cluster, or "
                                 "one started with another --cluster-id")
        if node_id == 0:
            raise HandshakeError("node id 0")
        return node_id, nonce, payload[_HELLO.size:]

    def _check(self, expected: bytes, got: bytes, node_id: int) -> None:
        if not hmac.compare_digest(expected, got):
            raise HandshakeError(f"node {node_id} did not prove the cluster secret")

    async def dial(self, stream: FrameStream, expect: int) -> int:
        mine = os.urandom(16)
        _send(stream, _HELLO.pack(VERSION, self.node_id, self.cluster_id, mine))
        await stream.drain()
        peer, theirs, mac = self._parse(await _hello(stream), with_mac=True)
        if expect and peer != expect:
            raise HandshakeError(f"expected node {expect} at {stream.peername}, found node {peer}")
        ids = struct.pack(">II", self.node_id, peer)
        self._check(self._mac(b"dcli-peer-accept", mine, theirs, ids), mac, peer)
        _send(stream, self._mac(b"dcli-peer-dial", theirs, mine, ids))
        await stream.drain()
        return peer

    async def accept(self, stream: FrameStream) -> int:
        peer, theirs, _ = self._parse(await _hello(stream), with_mac=False)
        if peer == self.node_id:
            raise HandshakeError(f"a connection from this node's own id {peer}")
        mine = os.urandom(16)
        ids = struct.pack(">II", peer, self.node_id)
        _send(stream, _HELLO.pack(VERSION, self.node_id, self.cluster_id, mine)
              + self._mac(b"dcli-peer-accept", theirs, mine, ids))
        await stream.drain()
        proof = await _hello(stream)
        self._check(self._mac(b"dcli-peer-dial", mine, theirs, ids), proof, peer)
        return peer
