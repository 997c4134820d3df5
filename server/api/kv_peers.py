"""The KV node's Transport over gRPC: one channel per peer address, a deadline on every call.

A call that fails for want of the peer (UNAVAILABLE, a deadline, a cancelled stream) raises
PeerUnreachable, which the domain counts as the node being down; an error the peer answered
with comes back as the project's own error class (`dcli-error` trailing metadata).
"""
from __future__ import annotations

import grpc

from dcli.v1 import kv_pb2 as pb
from dcli.v1 import kv_pb2_grpc as pb_grpc
from dcli.wire import errors
from dcli_server.api import kv_codec as codec
from dcli_server.kv.merkle import MerkleTree
from dcli_server.kv.transport import PeerUnreachable
from dcli_server.kv.versions import decode_siblings

# gRPC channels to other nodes' client ports (until these calls move to the peer listener)
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
]
_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                grpc.StatusCode.UNKNOWN}
STREAM_TIMEOUT_S = 3600.0
# a node that comes back must be noticed within about a heartbeat: gRPC's default reconnect
# backoff grows to two minutes, during which every call fails at once with the old error
# (the Raft transport's options: 50-500 ms), and HTTP/2 pings notice a dead peer or a
# black-holed link even while nothing is sent
PEER_CHANNEL_OPTIONS = [*CHANNEL_OPTIONS, ("grpc.keepalive_time_ms", 10_000), ("grpc.keepalive_timeout_ms", 5_000),
                        ("grpc.keepalive_permit_without_calls", 0)]


class GrpcTransport:
    def __init__(self, timeout_ms: int = 2000):
        self.timeout = timeout_ms / 1000
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, address: str) -> pb_grpc.KVStub:
        if not address:
            raise PeerUnreachable("no address known")
        ch = self._channels.get(address)
        if ch is None:
            ch = self._channels[address] = grpc.aio.insecure_channel(address, options=PEER_CHANNEL_OPTIONS)
        return pb_grpc.KVStub(ch)

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()

    @staticmethod
    def _failed(e: grpc.RpcError, address: str) -> Exception:
        """The peer's own error when it named one, PeerUnreachable when no answer came."""
        tag = next((v for k, v in (e.trailing_metadata() or ()) if k == "dcli-error"), None)
        if tag is not None:
            return errors.from_tag(tag, e.details() or "")
        if e.code() in _UNREACHABLE:
            details = e.details() or ""
            if "refused" in details.lower():
                why = "connection refused"
            elif e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                why = "no answer in time"
            else:
                why = e.code().name.lower().replace("_", " ")
            return PeerUnreachable(f"{address} {why}")
        return errors.SystemError_("", f"{address}: {e.code().name}: {e.details()}")

    async def _unary(self, address: str, method: str, request, timeout: float | None = None):
        try:
            return await getattr(self._stub(address), method)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise self._failed(e, address) from None

    # -- Transport -------------------------------------------------------------------------------

    async def ping(self, address, me, epoch, digest):
        r = await self._unary(address, "Ping", pb.KVPingRequest(**{"from": me}, epoch=epoch, digest=digest))
        return r.epoch, r.digest

    async def membership(self, address, document):
        return (await self._unary(address, "Membership", pb.MembershipRequest(document=document))).document

    async def status(self, address):
        r = await self._unary(address, "Status", pb.KVStatusRequest())
        return {"node": r.node, "epoch": r.epoch, "keys": dict(r.keys), "hints": r.hints,
                "load_bytes": r.load_bytes}

    async def apply(self, address, keyspace, entries, *, hint_for="", me="", epoch=0):
        r = await self._unary(address, "ReplicaApply", pb.ReplicaApplyRequest(
            keyspace=keyspace, entries=codec.entries_to_pb(entries), hint_for=hint_for,
            **{"from": me}, epoch=epoch))
        return r.epoch

    async def read(self, address, keyspace, keys, epoch=0):
        r = await self._unary(address, "ReplicaRead", pb.ReplicaReadRequest(keyspace=keyspace, keys=list(keys),
                                                                            epoch=epoch))
        return [decode_siblings(e.siblings) for e in r.entries]

    async def scan(self, address, keyspace, start, end, limit):
        req = pb.ScanRequest(keyspace=keyspace, start=start, limit=limit, include_tombstones=True)
        if end is not None:
            req.end = end
        r = await self._unary(address, "ReplicaScan", req)
        return codec.entries_from_pb(r.entries), r.truncated

    async def merkle_trees(self, address, keyspace, spans, depth):
        r = await self._unary(address, "MerkleTrees", pb.SpansRequest(
            keyspace=keyspace, spans=[codec.span_to_pb(s) for s in spans], depth=depth), timeout=self.timeout * 10)
        return [MerkleTree.decode(t) for t in r.trees]

    async def range_hashes(self, address, keyspace, spans):
        r = await self._unary(address, "RangeHashes", pb.SpansRequest(
            keyspace=keyspace, spans=[codec.span_to_pb(s) for s in spans]), timeout=self.timeout * 10)
        return [(h.key, h.vhash) for h in r.hashes]

    async def stream_range(self, address, keyspace, spans):
        call = self._stub(address).StreamRange(
            pb.SpansRequest(keyspace=keyspace, spans=[codec.span_to_pb(s) for s in spans]),
            timeout=STREAM_TIMEOUT_S)
        try:
            async for chunk in call:
                yield codec.entries_from_pb(chunk.entries)
        except grpc.RpcError as e:
            raise self._failed(e, address) from None

    async def pull_ranges(self, address, epoch):
        call = self._stub(address).PullRanges(pb.PullRangesRequest(epoch=epoch), timeout=STREAM_TIMEOUT_S)
        try:
            async for p in call:
                yield codec.progress_from_pb(p)
        except grpc.RpcError as e:
            raise self._failed(e, address) from None

    async def forward_write(self, address, keyspace, key, value, context, w):
        ctx = {} if context is None else {"context": context.encode()}
        if value is None:
            req = pb.KVDeleteRequest(keyspace=keyspace, key=key, w=w or 0, forwarded=True, **ctx)
            method = "Delete"
        else:
            req = pb.PutRequest(keyspace=keyspace, key=key, value=value, w=w or 0, forwarded=True, **ctx)
            method = "Put"
        return codec.write_from_pb(await self._unary(address, method, req, timeout=self.timeout * 3))
