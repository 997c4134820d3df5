"""The KV service (kv.proto): client calls to the node's coordinator, node-to-node calls to its store.

Translation only; failures end the call as dcli_server.api.errors says (a DcliError as its gRPC
status with the `dcli-error` trailing metadata, anything else INTERNAL and one log line).
"""
from __future__ import annotations

import asyncio
import logging


from dcli.v1 import kv_pb2 as pb
from dcli.v1 import kv_pb2_grpc as pb_grpc
from dcli.wire.kv_keys import DEFAULT_KEYSPACE, InvalidKeyError, validate_key, validate_keyspace
from dcli_server.api import kv_codec as codec
from dcli_server.api.errors import guarded, guarded_stream
from dcli_server.kv import rebalance
from dcli_server.kv.membership import KeyspaceConfig
from dcli_server.kv.node import KVNode
from dcli_server.kv.ring import KeyRange
from dcli_server.kv.repair import local_hashes, local_tree
from dcli_server.kv.versions import VectorClock, VersionDecodeError

log = logging.getLogger("dcli.server")
CHUNK_ENTRIES = 256


def _context(request) -> VectorClock | None:
    """Absent: supersede what the coordinator holds; empty: supersede nothing."""
    if not request.HasField("context"):
        return None
    if not request.context:
        return VectorClock()
    try:
        return VectorClock.decode(request.context)
    except (VersionDecodeError, UnicodeDecodeError) as e:
        raise InvalidKeyError(message=f"Invalid context: {e} (pass back the context a get returned)") from None


def _keyspace(name: str) -> str:
    return validate_keyspace(name or DEFAULT_KEYSPACE)


class KVService(pb_grpc.KVServicer):
    def __init__(self, node: KVNode):
        self.node = node

    # -- clients ---------------------------------------------------------------------------------

    @guarded
    async def Put(self, request: pb.PutRequest, context) -> pb.WriteResponse:
        result = await self.node.coordinator.write(_keyspace(request.keyspace), request.key, request.value,
                                                   _context(request), request.w or None, request.forwarded)
        return codec.write_to_pb(result)

    @guarded
    async def Delete(self, request: pb.KVDeleteRequest, context) -> pb.WriteResponse:
        result = await self.node.coordinator.write(_keyspace(request.keyspace), request.key, None,
                                                   _context(request), request.w or None, request.forwarded)
        return codec.write_to_pb(result)

    @guarded
    async def Get(self, request: pb.GetRequest, context) -> pb.GetResponse:
        result = await self.node.coordinator.read(_keyspace(request.keyspace), request.key, request.r or None)
        return pb.GetResponse(found=result.found, versions=[codec.version_to_pb(v) for v in result.versions],
                              context=result.context.encode(), quorum=codec.quorum_to_pb(result.quorum))

    @guarded
    async def Scan(self, request: pb.ScanRequest, context) -> pb.ScanResponse:
        result = await self.node.coordinator.scan(
            _keyspace(request.keyspace), prefix=request.prefix if request.HasField("prefix") else None,
            start=request.start, end=request.end if request.HasField("end") else None,
            limit=request.limit or 1000, include_tombstones=request.include_tombstones)
        return pb.ScanResponse(
            entries=[pb.ScanEntry(key=k, versions=[codec.version_to_pb(v) for v in vs]) for k, vs in result.entries],
            truncated=result.truncated, asked=result.asked, missing=result.missing)

    @guarded
    async def Ring(self, request: pb.RingRequest, context) -> pb.RingResponse:
        return self._ring(await self.node.ring_view(request.keyspace))

    @staticmethod
    def _ring(view: dict) -> pb.RingResponse:
        keyspaces = []
        for ks in view["keyspaces"]:
            shards = []
            for s in ks["shards"]:
                shard = pb.KeyShard(start=s["start"], replicas=s["replicas"])
                if s["end"] is not None:
                    shard.end = s["end"]
                shards.append(shard)
            keyspaces.append(pb.KeyspaceInfo(name=ks["name"], n=ks["n"], r=ks["r"], w=ks["w"],
                                             consistency=ks["consistency"], sharding=ks["sharding"],
                                             shards=shards))
        return pb.RingResponse(epoch=view["epoch"], vnodes=view["vnodes"],
                               nodes=[pb.RingNode(**n) for n in view["nodes"]], keyspaces=keyspaces,
                               answered_by=view["answered_by"], moving=view["moving"], document=view["document"])

    @guarded
    async def Status(self, request, context) -> pb.NodeStats:
        return pb.NodeStats(**await asyncio.to_thread(self.node.stats))

    @guarded
    async def CreateKeyspace(self, request: pb.CreateKeyspaceRequest, context) -> pb.RingResponse:
        config = KeyspaceConfig(request.name, request.n, request.r, request.w, request.consistency or "strict",
                                request.sharding or "hash", tuple(request.splits))
        await self.node.create_keyspace(config)
        return self._ring(await self.node.ring_view(request.name))

    @guarded_stream
    async def Rebalance(self, request: pb.RebalanceRequest, context):
        add = {c.id: (c.address, c.weight or 1.0) for c in request.add}
        async for p in rebalance.rebalance(self.node, add, list(request.remove), dict(request.weights),
                                           request.dry_run):
            yield codec.progress_to_pb(p)

    # -- node to node ------------------------------------------------------------------------------

    @guarded
    async def Ping(self, request: pb.KVPingRequest, context) -> pb.KVPingResponse:
        epoch, digest = self.node.on_ping(getattr(request, "from"), request.epoch, request.digest)
        self.node.peers.mark_up(getattr(request, "from"))
        return pb.KVPingResponse(node=self.node.me, epoch=epoch, digest=digest)

    @guarded
    async def Membership(self, request: pb.MembershipRequest, context) -> pb.MembershipResponse:
        return pb.MembershipResponse(document=self.node.on_membership(request.document))

    @guarded
    async def ReplicaApply(self, request: pb.ReplicaApplyRequest, context) -> pb.ReplicaApplyResponse:
        keyspace = validate_keyspace(request.keyspace)
        entries = codec.entries_from_pb(request.entries)
        store = self.node.store
        if request.hint_for:
            await asyncio.to_thread(store.add_hints, request.hint_for, keyspace, entries)
        else:
            await self.node.group_commit.apply(keyspace, entries)
        return pb.ReplicaApplyResponse(epoch=self.node.document.epoch)

    @guarded
    async def ReplicaRead(self, request: pb.ReplicaReadRequest, context) -> pb.ReplicaReadResponse:
        keyspace = validate_keyspace(request.keyspace)
        keys = [validate_key(k) for k in request.keys]
        store = self.node.store
        found = await asyncio.to_thread(lambda: [(k, store.get(keyspace, k)) for k in keys])
        return pb.ReplicaReadResponse(entries=codec.entries_to_pb(found), epoch=self.node.document.epoch)

    @guarded
    async def ReplicaScan(self, request: pb.ScanRequest, context) -> pb.ReplicaScanResponse:
        limit = request.limit or 1000
        found = await asyncio.to_thread(self.node.store.scan, validate_keyspace(request.keyspace),
                                        start=request.start, end=request.end if request.HasField("end") else None,
                                        limit=limit, include_tombstones=True)
        return pb.ReplicaScanResponse(entries=codec.entries_to_pb(found), truncated=len(found) >= limit)

    @guarded
    async def MerkleTrees(self, request: pb.SpansRequest, context) -> pb.MerkleTreesResponse:
        keyspace = validate_keyspace(request.keyspace)
        spans = [codec.span_from_pb(s) for s in request.spans]
        store, depth = self.node.store, request.depth or 10
        trees = await asyncio.to_thread(lambda: [local_tree(store, keyspace, s, depth).encode() for s in spans])
        return pb.MerkleTreesResponse(trees=trees)

    @guarded
    async def RangeHashes(self, request: pb.SpansRequest, context) -> pb.RangeHashesResponse:
        keyspace = validate_keyspace(request.keyspace)
        spans = [codec.span_from_pb(s) for s in request.spans]
        found = await asyncio.to_thread(local_hashes, self.node.store, keyspace, spans)
        return pb.RangeHashesResponse(hashes=[pb.KeyHash(key=k, vhash=h) for k, h in found])

    @guarded_stream
    async def StreamRange(self, request: pb.SpansRequest, context):
        keyspace = validate_keyspace(request.keyspace)
        store = self.node.store
        for span in (codec.span_from_pb(s) for s in request.spans):
            source = store.entries_in_keys(keyspace, span) if isinstance(span, KeyRange) else store.entries(keyspace, span)

            def page(it=source):
                out = []
                for entry in it:
                    out.append(entry)
                    if len(out) == CHUNK_ENTRIES:
                        break
                return out
            while True:
                chunk = await asyncio.to_thread(page)
                if not chunk:
                    break
                yield pb.EntryChunk(entries=codec.entries_to_pb(chunk))

    @guarded_stream
    async def PullRanges(self, request: pb.PullRangesRequest, context):
        async for p in rebalance.pull(self.node, request.epoch):
            yield codec.progress_to_pb(p)
