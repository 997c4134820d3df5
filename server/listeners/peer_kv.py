"""The key-value store's node-to-node calls on the peer transport, both ends.

`FramesKVTransport` is the KV node's Transport (kv/transport.py): each call is one request to
the node named by its KV node id, with kv.proto's messages as payloads and the method numbers
KV_* of peer_methods.py. `KVPeerService` answers those requests from this node's KVNode.

Every answer is a KVPeerReply (peer.proto): the response's bytes, or the DcliError the node
raised (its tag and line), which the caller raises as the same class. A call that gets no answer
(not connected, too slow, the connection lost) is the domain's PeerUnreachable. A request that
does not decode is answered with an error and one rate-limited log line; the connection goes on.

There are no streams on the frames: a moved range comes a page at a time (KV_RANGE_PAGE, each
request saying where the last page ended), and a new owner's pull is started and then polled
(KV_PULL) until it reports its end.

    kv_peers = FramesKVTransport(peers.transport, timeout_ms=2000)
    node = KVNode(data_dir, config, kv_peers)
    KVPeerService(node).register(peers.transport)
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Mapping

from google.protobuf.message import DecodeError

from dcli.v1 import kv_pb2 as pb
from dcli.v1 import peer_pb2 as ppb
from dcli.wire import errors
from dcli.wire.kv_keys import validate_key, validate_keyspace
from dcli_server.api import kv_codec as codec
from dcli_server.kv import rebalance
from dcli_server.kv.merkle import MAX_DEPTH, MerkleTree
from dcli_server.kv.repair import local_hashes, local_tree
from dcli_server.kv.ring import RING_SIZE, TokenRange, token
from dcli_server.kv.transport import PeerUnreachable
from dcli_server.kv.versions import VectorClock, VersionDecodeError, decode_siblings
from dcli_server.listeners import peer_connection as conn
from dcli_server.listeners.peer_methods import (
    KV_APPLY, KV_DELETE, KV_HASHES, KV_MERKLE, KV_PING, KV_PULL, KV_PUT, KV_RANGE_PAGE, KV_READ,
    KV_SCAN, KV_STATUS)
from dcli_server.listeners.ratelimit import RateLimitedLog

log = logging.getLogger("dcli.server.peer")
limited = RateLimitedLog(log)

USER = "kv"                     # the KV store's registrations on the shared PeerTransport
POLL_S = 0.2                    # how often a pull is polled
PULL_DEADLINE_S = 3600.0        # the longest a pull is waited for
MAX_PAGES = 1 << 24             # a range ends long before this many pages (a bound, not a plan)


def _node_id(node: str) -> int:
    if not node.isdigit():
        raise PeerUnreachable(f"node {node}: not a node id the peer listener can reach")
    return int(node)


class FramesKVTransport:
    """The KV Transport on the peer listener's frames. `transport` None: this node has no peer
    listener, and every other node is unreachable (a node alone needs none)."""

    def __init__(self, transport, timeout_ms: int = 2000):
        self._transport = transport
        self.timeout = timeout_ms / 1000
        self._members: dict[int, str] = {}

    def set_members(self, peers: Mapping[str, str]) -> None:
        if self._transport is None:
            return
        wanted = {}
        for node, address in peers.items():
            if node.isdigit() and address:
                wanted[int(node)] = address
            else:
                limited.warning(f"kv-member:{node}", "kv: no peer address known for node %s", node)
        for gone in set(self._members) - set(wanted):
            self._transport.remove_peer(gone, user=USER)
            del self._members[gone]
        for node_id, address in wanted.items():
            if self._members.get(node_id) != address:
                try:
                    self._transport.add_peer(node_id, address, user=USER)
                except errors.DcliError as e:       # a peer address that does not parse
                    limited.warning(f"kv-member:{node_id}", "kv: node %d: %s", node_id, e)
                    continue
                self._members[node_id] = address

    async def close(self) -> None:
        for node_id in list(self._members):
            self._transport.remove_peer(node_id, user=USER)
        self._members.clear()

    async def _call(self, node: str, method: int, request, answer, timeout: float | None = None):
        if self._transport is None:
            raise PeerUnreachable("this node has no peer listener (start it with --peer-listen)")
        node_id = _node_id(node)
        try:
            raw = await self._transport.request(node_id, method, request.SerializeToString(),
                                                timeout or self.timeout)
        except (conn.PeerUnreachable, conn.PeerBusy) as e:     # the caller names the node itself
            raise PeerUnreachable(str(e).removeprefix(f"node {node_id}: ") or "no answer") from None
        except conn.PeerError as e:         # it could not take the request (a bug, an older build)
            raise errors.SystemError_("", f"node {node}: {e}") from None
        try:
            reply = ppb.KVPeerReply.FromString(raw)
            if reply.WhichOneof("kind") == "error":
                raise errors.from_tag(reply.error.tag, reply.error.message)
            return answer.FromString(reply.answer)
        except DecodeError:
            raise errors.SystemError_("", f"node {node}: an answer that does not decode") from None

    # -- Transport -------------------------------------------------------------------------------

    async def ping(self, node, me, epoch):
        r = await self._call(node, KV_PING, pb.KVPingRequest(**{"from": me}, epoch=epoch), pb.KVPingResponse)
        return r.epoch

    async def status(self, node):
        r = await self._call(node, KV_STATUS, pb.KVStatusRequest(), pb.NodeStats)
        return {"node": r.node, "epoch": r.epoch, "keys": dict(r.keys), "hints": r.hints, "load_bytes": r.load_bytes}

    async def apply(self, node, keyspace, entries, *, hint_for="", me="", epoch=0):
        r = await self._call(node, KV_APPLY, pb.ReplicaApplyRequest(
            keyspace=keyspace, entries=codec.entries_to_pb(entries), hint_for=hint_for, **{"from": me}, epoch=epoch),
            pb.ReplicaApplyResponse)
        return r.epoch

    async def read(self, node, keyspace, keys, epoch=0):
        r = await self._call(node, KV_READ, pb.ReplicaReadRequest(keyspace=keyspace, keys=list(keys), epoch=epoch),
                             pb.ReplicaReadResponse)
        return [decode_siblings(e.siblings) for e in r.entries]

    async def scan(self, node, keyspace, start, end, limit):
        req = pb.ScanRequest(keyspace=keyspace, start=start, limit=limit, include_tombstones=True)
        if end is not None:
            req.end = end
        r = await self._call(node, KV_SCAN, req, pb.ReplicaScanResponse)
        return codec.entries_from_pb(r.entries), r.truncated

    async def merkle_trees(self, node, keyspace, spans, depth):
        r = await self._call(node, KV_MERKLE, pb.SpansRequest(
            keyspace=keyspace, spans=[codec.span_to_pb(s) for s in spans], depth=depth), pb.MerkleTreesResponse,
            timeout=self.timeout * 10)
        return [MerkleTree.decode(t) for t in r.trees]

    async def range_hashes(self, node, keyspace, spans):
        r = await self._call(node, KV_HASHES, pb.SpansRequest(
            keyspace=keyspace, spans=[codec.span_to_pb(s) for s in spans]), pb.RangeHashesResponse,
            timeout=self.timeout * 10)
        return [(h.key, h.vhash) for h in r.hashes]

    async def stream_range(self, node, keyspace, spans):
        req = pb.RangePageRequest(keyspace=keyspace, spans=[codec.span_to_pb(s) for s in spans])
        for _ in range(MAX_PAGES):
            page = await self._call(node, KV_RANGE_PAGE, req, pb.RangePage, timeout=self.timeout * 5)
            if page.entries:
                yield codec.entries_from_pb(page.entries)
            if page.done:
                return
            if _position(page, spans) <= _position(req, spans):
                raise errors.SystemError_("", f"node {node}: a page of {keyspace} that does not move on")
            req.span = page.span
            req.ClearField("after")
            if page.HasField("after"):
                req.after = page.after
        raise errors.SystemError_("", f"node {node}: {keyspace} did not end after {MAX_PAGES} pages")

    async def pull_ranges(self, node, epoch):
        deadline = time.monotonic() + PULL_DEADLINE_S
        req = pb.PullRangesRequest(epoch=epoch, start=True)
        last = None
        while True:
            status = await self._call(node, KV_PULL, req, pb.PullRangesStatus)
            req.start = False
            progress = codec.progress_from_pb(status.progress)
            if status.progress.ByteSize() and status.progress != last:
                last = status.progress
                yield progress
            if status.finished:
                if status.error_tag:
                    raise errors.from_tag(status.error_tag, status.error)
                return
            if time.monotonic() > deadline:
                raise PeerUnreachable(f"node {node}: its pull of epoch {epoch} did not end in {PULL_DEADLINE_S:g} s")
            await asyncio.sleep(POLL_S)

    async def forward_write(self, node, keyspace, key, value, context, w):
        ctx = {} if context is None else {"context": context.encode()}
        if value is None:
            method, req = KV_DELETE, pb.KVDeleteRequest(keyspace=keyspace, key=key, w=w or 0, **ctx)
        else:
            method, req = KV_PUT, pb.PutRequest(keyspace=keyspace, key=key, value=value, w=w or 0, **ctx)
        return codec.write_from_pb(await self._call(node, method, req, pb.WriteResponse, timeout=self.timeout * 3))


class KVPeerService:
    """Answers the other KV nodes' calls from `node` (a KVNode)."""

    def __init__(self, node):
        self.node = node
        self.pulls = rebalance.Pulls(node)

    def register(self, transport) -> None:
        table = {
            KV_PING: (pb.KVPingRequest, self.ping),
            KV_STATUS: (pb.KVStatusRequest, self.status), KV_APPLY: (pb.ReplicaApplyRequest, self.apply),
            KV_READ: (pb.ReplicaReadRequest, self.read), KV_SCAN: (pb.ScanRequest, self.scan),
            KV_MERKLE: (pb.SpansRequest, self.merkle_trees), KV_HASHES: (pb.SpansRequest, self.range_hashes),
            KV_RANGE_PAGE: (pb.RangePageRequest, self.range_page), KV_PULL: (pb.PullRangesRequest, self.pull),
            KV_PUT: (pb.PutRequest, self.put), KV_DELETE: (pb.KVDeleteRequest, self.delete),
        }
        for method, (request_type, handler) in table.items():
            transport.handle_request(method, self._answering(request_type, handler))

    @staticmethod
    def _answering(request_type, handler):
        what = request_type.DESCRIPTOR.name

        async def answer(peer: int, payload: bytes) -> bytes:
            try:
                request = request_type.FromString(payload)
                response = await handler(peer, request)
            except errors.DcliError as e:
                reply = ppb.KVPeerReply(error=ppb.KVPeerError(tag=errors.error_tag(e), message=str(e)))
                return reply.SerializeToString()
            except (DecodeError, VersionDecodeError, ValueError, UnicodeDecodeError) as e:
                limited.warning(f"kv:{what}:{peer}", "a bad kv %s from node %d: %s", what, peer, e)
                raise ValueError(f"malformed {what}") from None
            return ppb.KVPeerReply(answer=response.SerializeToString()).SerializeToString()
        return answer

    # -- the handlers: (peer, request) -> response ------------------------------------------------

    async def ping(self, peer, request):
        self.node.peers.mark_up(getattr(request, "from"))
        return pb.KVPingResponse(node=self.node.me, epoch=self.node.document.epoch)

    async def status(self, peer, request):
        return pb.NodeStats(**await asyncio.to_thread(self.node.stats))

    async def apply(self, peer, request):
        keyspace = validate_keyspace(request.keyspace)
        entries = codec.entries_from_pb(request.entries)
        for key, _ in entries:
            validate_key(key)
        if request.hint_for:
            await asyncio.to_thread(self.node.store.add_hints, request.hint_for, keyspace, entries)
        else:
            await self.node.group_commit.apply(keyspace, entries)
        return pb.ReplicaApplyResponse(epoch=self.node.document.epoch)

    async def read(self, peer, request):
        keyspace = validate_keyspace(request.keyspace)
        keys = [validate_key(k) for k in request.keys]
        store = self.node.store
        found = await asyncio.to_thread(lambda: [(k, store.get(keyspace, k)) for k in keys])
        return pb.ReplicaReadResponse(entries=codec.entries_to_pb(found), epoch=self.node.document.epoch)

    async def scan(self, peer, request):
        limit = request.limit or 1000
        if not 1 <= limit <= 100_000:
            raise ValueError(f"scan limit {limit}")
        found = await asyncio.to_thread(self.node.store.scan, validate_keyspace(request.keyspace),
                                        start=request.start, end=request.end if request.HasField("end") else None,
                                        limit=limit, include_tombstones=True)
        return pb.ReplicaScanResponse(entries=codec.entries_to_pb(found), truncated=len(found) >= limit)

    async def merkle_trees(self, peer, request):
        keyspace = validate_keyspace(request.keyspace)
        spans = [codec.span_from_pb(s) for s in request.spans]
        depth = request.depth or 10
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"merkle depth {depth}")
        store = self.node.store
        trees = await asyncio.to_thread(lambda: [local_tree(store, keyspace, s, depth).encode() for s in spans])
        return pb.MerkleTreesResponse(trees=trees)

    async def range_hashes(self, peer, request):
        keyspace = validate_keyspace(request.keyspace)
        spans = [codec.span_from_pb(s) for s in request.spans]
        found = await asyncio.to_thread(local_hashes, self.node.store, keyspace, spans)
        return pb.RangeHashesResponse(hashes=[pb.KeyHash(key=k, vhash=h) for k, h in found])

    async def range_page(self, peer, request):
        keyspace = validate_keyspace(request.keyspace)
        spans = [codec.span_from_pb(s) for s in request.spans]
        if not 0 <= request.span <= len(spans):
            raise ValueError(f"span {request.span} of {len(spans)}")
        after = request.after if request.HasField("after") else None
        page = await asyncio.to_thread(rebalance.read_page, self.node.store, keyspace, spans, request.span, after)
        out = pb.RangePage(entries=codec.entries_to_pb(page.entries), done=page.done, span=page.span)
        if page.after is not None:
            out.after = page.after
        return out

    async def pull(self, peer, request):
        state = self.pulls.start(request.epoch) if request.start else self.pulls.state(request.epoch)
        out = pb.PullRangesStatus(progress=codec.progress_to_pb(state.latest), finished=state.finished)
        if state.finished and state.error is not None:
            out.error_tag, out.error = errors.error_tag(state.error), str(state.error)
        return out

    async def put(self, peer, request):
        result = await self.node.coordinator.write(validate_keyspace(request.keyspace or "default"), request.key,
                                                   request.value, _context(request), request.w or None, True)
        return codec.write_to_pb(result)

    async def delete(self, peer, request):
        result = await self.node.coordinator.write(validate_keyspace(request.keyspace or "default"), request.key,
                                                   None, _context(request), request.w or None, True)
        return codec.write_to_pb(result)


def _position(message, spans) -> tuple[int, int, int, bytes]:
    """Where a page request starts or a page ends, in the order the source reads: span by span;
    in a key range by key, in a token range by the key's token from the span's start (the whole
    ring: from token 0), then by key."""
    if not message.HasField("after"):
        return message.span, 0, 0, b""
    span = spans[message.span] if message.span < len(spans) else None
    if isinstance(span, TokenRange):
        t = token(message.after)
        return message.span, 1, t if span.start == span.end else (t - span.start - 1) % RING_SIZE, message.after
    return message.span, 1, 0, message.after


def _context(request) -> VectorClock | None:
    if not request.HasField("context"):
        return None
    return VectorClock.decode(request.context) if request.context else VectorClock()
