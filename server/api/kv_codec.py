"""The KV store's messages (kv.proto) to and from the domain's values, for both sides of a call:
the client servicer (kv_service.py) and the node-to-node calls (listeners/peer_kv.py)."""
from __future__ import annotations

from dcli.v1 import kv_pb2 as pb
from dcli_server.kv.ring import KeyRange, TokenRange
from dcli_server.kv.transport import Progress, QuorumInfo, ReplicaOutcome, WriteResult
from dcli_server.kv.versions import VectorClock, Version, decode_siblings, encode_siblings


def entries_to_pb(entries) -> list[pb.KVEntry]:
    return [pb.KVEntry(key=k, siblings=encode_siblings(tuple(v))) for k, v in entries]


def entries_from_pb(entries) -> list[tuple[bytes, tuple[Version, ...]]]:
    return [(e.key, decode_siblings(e.siblings)) for e in entries]


def span_to_pb(span) -> pb.KVSpan:
    if isinstance(span, KeyRange):
        out = pb.KVSpan(by_key=True, key_start=span.start)
        if span.end is not None:
            out.key_end = span.end
        return out
    return pb.KVSpan(start=span.start, end=span.end)


def span_from_pb(span: pb.KVSpan):
    if span.by_key:
        return KeyRange(span.key_start, span.key_end if span.HasField("key_end") else None)
    return TokenRange(span.start, span.end)


def version_to_pb(v: Version, with_value: bool = True) -> pb.VersionInfo:
    return pb.VersionInfo(node=v.node, counter=v.counter, context=v.context.encode(),
                          tombstone=v.is_tombstone, value=(v.value or b"") if with_value else b"")


def version_from_pb(v: pb.VersionInfo) -> Version:
    return Version(v.node, v.counter, VectorClock.decode(v.context), None if v.tombstone else v.value)


def quorum_to_pb(q: QuorumInfo) -> pb.Quorum:
    return pb.Quorum(n=q.n, r=q.r, w=q.w, consistency=q.consistency, preference=q.preference,
                     replicas=[pb.ReplicaOutcome(node=o.node, address=o.address, outcome=o.outcome,
                                                 stand_in=o.stand_in, detail=o.detail) for o in q.replicas],
                     coordinator=q.coordinator, epoch=q.epoch, acks=q.acks)


def quorum_from_pb(q: pb.Quorum) -> QuorumInfo:
    return QuorumInfo(q.n, q.r, q.w, q.consistency, list(q.preference),
                      [ReplicaOutcome(o.node, o.address, o.outcome, o.stand_in, o.detail) for o in q.replicas],
                      q.coordinator, q.epoch, q.acks)


def write_to_pb(r: WriteResult) -> pb.WriteResponse:
    return pb.WriteResponse(version=version_to_pb(r.version, with_value=False), context=r.context.encode(),
                            siblings=r.siblings, quorum=quorum_to_pb(r.quorum))


def write_from_pb(r: pb.WriteResponse) -> WriteResult:
    return WriteResult(version_from_pb(r.version), VectorClock.decode(r.context), r.siblings,
                       quorum_from_pb(r.quorum))


def progress_to_pb(p: Progress) -> pb.RebalanceProgress:
    return pb.RebalanceProgress(epoch=p.epoch, phase=p.phase, ranges_total=p.ranges_total,
                                ranges_done=p.ranges_done, keys_moved=p.keys_moved, message=p.message,
                                node=p.node, moves=[pb.RangeMoveInfo(**m) for m in p.moves])


def progress_from_pb(p: pb.RebalanceProgress) -> Progress:
    return Progress(p.epoch, p.phase, p.ranges_total, p.ranges_done, p.keys_moved, p.message, p.node)
