"""The KV service (kv.proto): client calls to the node's coordinator. The calls between nodes are
not here: they travel on the peer listener (listeners/peer_kv.py), and no client can claim to be
a node (a write a client sends is always coordinated as a client's).

Translation only; failures end the call as dcli_server.api.errors says (a DcliError as its gRPC
status with the `dcli-error` trailing metadata, anything else INTERNAL and one log line).
"""
from __future__ import annotations

import asyncio
import logging


from dcli.v1 import kv_pb2 as pb
from dcli.v1 import kv_pb2_grpc as pb_grpc
from dcli.wire.kv_keys import DEFAULT_KEYSPACE, InvalidKeyError, validate_keyspace
from dcli_server.api import kv_codec as codec
from dcli_server.api.errors import guarded, guarded_stream
from dcli_server.kv import rebalance
from dcli_server.kv.membership import KeyspaceConfig
from dcli_server.kv.node import KVNode
from dcli_server.kv.versions import VectorClock, VersionDecodeError

log = logging.getLogger("dcli.server")


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
                                                   _context(request), request.w or None)
        return codec.write_to_pb(result)

    @guarded
    async def Delete(self, request: pb.KVDeleteRequest, context) -> pb.WriteResponse:
        result = await self.node.coordinator.write(_keyspace(request.keyspace), request.key, None,
                                                   _context(request), request.w or None)
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
        add = {c.id: (c.address, c.weight or 1.0, c.peer) for c in request.add}
        async for p in rebalance.rebalance(self.node, add, list(request.remove), dict(request.weights),
                                           request.dry_run):
            yield codec.progress_to_pb(p)
