"""KVClient: the Dynamo-style key-value store (put, get, delete, scan, the ring).

Any node of the cluster coordinates any key; give several addresses and reads move on to the
next one when a node is down. Every result says which quorum it met: `result.quorum` has N, R,
W and what each replica did.

    from dcli.client import KVClient

    with KVClient("127.0.0.1:7181") as kv:
        kv.put("user/42", "alice", w=2)
        got = kv.get("user/42", r=2)
        print(got.value, got.quorum.r, got.quorum.n, [o.node for o in got.quorum.replicas])
        if got.conflict:                      # concurrent writes: every sibling is kept
            kv.put("user/42", merge(got.values), context=got.context)   # supersedes them all

Keys and values are bytes (str is encoded as UTF-8). A put without `context` supersedes what
the coordinating replica holds; with the `context` of a read it supersedes exactly what that read
returned; `context=b""` supersedes nothing (a write concurrent with everything, for tests).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import grpc

from dcli.client.rpc import error_from_rpc
from dcli.client.session import CHANNEL_OPTIONS, parse_servers
from dcli.client.tls import open_channel
from dcli.wire.peers import parse_member
from dcli.v1 import kv_pb2 as pb
from dcli.v1 import kv_pb2_grpc as pb_grpc
from dcli.wire import errors
from dcli.wire.kv_keys import DEFAULT_KEYSPACE, validate_key, validate_value


def as_bytes(data: bytes | str, what: str = "key") -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


@dataclass
class ReplicaOutcome:
    node: str
    address: str
    outcome: str
    stand_in: str = ""
    detail: str = ""


@dataclass
class Quorum:
    n: int
    r: int
    w: int
    consistency: str
    preference: list[str]
    replicas: list[ReplicaOutcome]
    coordinator: str
    epoch: int
    acks: int

    @classmethod
    def from_pb(cls, q: pb.Quorum) -> Quorum:
        return cls(q.n, q.r, q.w, q.consistency, list(q.preference),
                   [ReplicaOutcome(o.node, o.address, o.outcome, o.stand_in, o.detail) for o in q.replicas],
                   q.coordinator, q.epoch, q.acks)


@dataclass
class Version:
    node: str
    counter: int
    tombstone: bool
    value: bytes | None

    @property
    def dot(self) -> str:
        return f"{self.node}:{self.counter}"

    @classmethod
    def from_pb(cls, v: pb.VersionInfo) -> Version:
        return cls(v.node, v.counter, v.tombstone, None if v.tombstone else v.value)


@dataclass
class WriteResult:
    key: bytes
    version: Version
    context: bytes
    siblings: int
    quorum: Quorum


@dataclass
class GetResult:
    key: bytes
    found: bool
    versions: list[Version]
    context: bytes
    quorum: Quorum

    @property
    def values(self) -> list[bytes]:
        return [v.value for v in self.versions if not v.tombstone]

    @property
    def value(self) -> bytes | None:
        """The value, or None when not found; with siblings, the first (see `conflict`)."""
        return self.values[0] if self.values else None

    @property
    def conflict(self) -> bool:
        return len(self.values) > 1


@dataclass
class ScanResult:
    entries: list[tuple[bytes, list[Version]]]
    truncated: bool
    asked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class KVClient:
    def __init__(self, servers: str | list[str] = "127.0.0.1:7181", keyspace: str = DEFAULT_KEYSPACE,
                 timeout: float = 10.0):
        self.servers = parse_servers(servers)
        self.keyspace = keyspace
        self.timeout = timeout
        self._channels: dict[str, grpc.Channel] = {}

    def __enter__(self) -> KVClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()

    def _stub(self, server: str) -> pb_grpc.KVStub:
        ch = self._channels.get(server)
        if ch is None:
            ch = self._channels[server] = open_channel(server, CHANNEL_OPTIONS)
        return pb_grpc.KVStub(ch)

    @staticmethod
    def _quorum_arg(name: str, value: int | None) -> int:
        if value is not None and value < 1:
            raise errors.InvalidQuorumError(message=f"Invalid quorum: {name}={value} is impossible (at least 1)")
        return value or 0

    def _call(self, method: str, request, *, failover: bool, timeout: float | None = None):
        last: errors.DcliError | None = None
        for server in (self.servers if failover else self.servers[:1]):
            try:
                return getattr(self._stub(server), method)(request, timeout=timeout or self.timeout)
            except grpc.RpcError as e:
                last = error_from_rpc(e, server)
                if not isinstance(last, errors.UnavailableError):
                    raise last from None
        raise last  # type: ignore[misc]

    # -- data ------------------------------------------------------------------------------------

    def put(self, key: bytes | str, value: bytes | str, *, w: int | None = None,
            context: bytes | None = None, keyspace: str | None = None) -> WriteResult:
        key, value = validate_key(as_bytes(key)), validate_value(as_bytes(value, "value"))
        req = pb.PutRequest(keyspace=keyspace or self.keyspace, key=key, value=value,
                           w=self._quorum_arg("W", w))
        if context is not None:
            req.context = context
        return self._write(key, self._call("Put", req, failover=False))

    def delete(self, key: bytes | str, *, w: int | None = None, context: bytes | None = None,
               keyspace: str | None = None) -> WriteResult:
        key = validate_key(as_bytes(key))
        req = pb.KVDeleteRequest(keyspace=keyspace or self.keyspace, key=key, w=self._quorum_arg("W", w))
        if context is not None:
            req.context = context
        return self._write(key, self._call("Delete", req, failover=False))

    @staticmethod
    def _write(key: bytes, r: pb.WriteResponse) -> WriteResult:
        return WriteResult(key, Version.from_pb(r.version), r.context, r.siblings, Quorum.from_pb(r.quorum))

    def get(self, key: bytes | str, *, r: int | None = None, keyspace: str | None = None) -> GetResult:
        key = validate_key(as_bytes(key))
        reply = self._call("Get", pb.GetRequest(keyspace=keyspace or self.keyspace, key=key,
                                                 r=self._quorum_arg("R", r)),
                           failover=True)
        return GetResult(key, reply.found, [Version.from_pb(v) for v in reply.versions], reply.context,
                         Quorum.from_pb(reply.quorum))

    def scan(self, prefix: bytes | str | None = None, *, start: bytes | str = b"",
             end: bytes | str | None = None, limit: int = 1000, include_tombstones: bool = False,
             keyspace: str | None = None) -> ScanResult:
        req = pb.ScanRequest(keyspace=keyspace or self.keyspace, start=as_bytes(start), limit=limit,
                             include_tombstones=include_tombstones)
        if prefix is not None:
            req.prefix = as_bytes(prefix)
        if end is not None:
            req.end = as_bytes(end)
        reply = self._call("Scan", req, failover=True)
        return ScanResult([(e.key, [Version.from_pb(v) for v in e.versions]) for e in reply.entries],
                          reply.truncated, list(reply.asked), list(reply.missing))

    # -- the ring ----------------------------------------------------------------------------------

    def ring(self, keyspace: str = "") -> pb.RingResponse:
        return self._call("Ring", pb.RingRequest(keyspace=keyspace), failover=True)

    def status(self) -> pb.NodeStats:
        return self._call("Status", pb.KVStatusRequest(), failover=False)

    def create_keyspace(self, name: str, *, n: int = 0, r: int = 0, w: int = 0, consistency: str = "strict",
                        sharding: str = "hash", splits: list[bytes | str] = ()) -> pb.RingResponse:
        return self._call("CreateKeyspace", pb.CreateKeyspaceRequest(
            name=name, n=n, r=r, w=w, consistency=consistency, sharding=sharding,
            splits=[as_bytes(s) for s in splits]), failover=False)

    def rebalance(self, *, add: dict[str, str] | None = None, remove: list[str] = (),
                  weights: dict[str, float] | None = None, dry_run: bool = False,
                  timeout: float = 3600.0) -> Iterator[pb.RebalanceProgress]:
        """Change membership; yields progress until every moved range has arrived.
        `add` maps a node id to its addresses, `CLIENT[/PEER]` (weight 1, or from `weights`); a
        peer address left out is the one in the server's `--peers`, else the client port + 1000."""
        weights = dict(weights or {})
        adds = []
        for i, text in (add or {}).items():
            member = parse_member(text, "address of the node to add")
            adds.append(pb.NodeChange(id=i, address=member.client, weight=weights.pop(i, 0.0),
                                      peer=member.peer if "/" in text else ""))
        req = pb.RebalanceRequest(add=adds, remove=list(remove), weights=weights, dry_run=dry_run)
        server = self.servers[0]
        try:
            yield from self._stub(server).Rebalance(req, timeout=timeout)
        except grpc.RpcError as e:
            raise error_from_rpc(e, server) from None
