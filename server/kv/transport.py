"""What a KV node needs from the network, and what its requests return.

The domain code talks to other nodes only through `Transport` (implemented on the peer
listener's frames in `server/listeners/peer_kv.py`), so it imports no network code and tests
could drive it in-process. Nodes are named by their KV node id (the ring document's key); the
node keeps the transport told of every member's peer address (`set_members`). A call that
cannot reach its node raises `PeerUnreachable` (the caller marks the node down and goes on); an
error the remote node answered with (a quorum it could not reach, say) is the DcliError itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, Mapping, Protocol, Sequence

from dcli_server.kv.merkle import MerkleTree
from dcli_server.kv.versions import VectorClock, Version

Entry = tuple[bytes, tuple[Version, ...]]


class PeerUnreachable(Exception):
    """The node did not answer in time (down, partitioned, or too slow)."""


@dataclass
class ReplicaOutcome:
    node: str
    address: str
    outcome: str            # see kv.proto's ReplicaOutcome
    stand_in: str = ""
    detail: str = ""


@dataclass
class QuorumInfo:
    """The seed's arithmetic for one request: N, R, W and who answered."""

    n: int
    r: int
    w: int
    consistency: str
    preference: list[str]
    replicas: list[ReplicaOutcome] = field(default_factory=list)
    coordinator: str = ""
    epoch: int = 0
    acks: int = 0


@dataclass
class WriteResult:
    version: Version
    context: VectorClock
    siblings: int
    quorum: QuorumInfo


@dataclass
class ReadResult:
    versions: tuple[Version, ...]
    context: VectorClock
    quorum: QuorumInfo

    @property
    def found(self) -> bool:
        return any(not v.is_tombstone for v in self.versions)


@dataclass
class ScanResult:
    entries: list[Entry]
    truncated: bool
    asked: list[str]
    missing: list[str]


@dataclass
class Progress:
    """How far a membership change has got (one node's streaming, or the whole change)."""

    epoch: int
    phase: str
    ranges_total: int = 0
    ranges_done: int = 0
    keys_moved: int = 0
    message: str = ""
    node: str = ""
    moves: list = field(default_factory=list)


class Transport(Protocol):
    def set_members(self, peers: Mapping[str, str]) -> None:
        """The ring's other members (node id -> peer address) this node talks to from now on."""

    async def ping(self, node: str, me: str, epoch: int) -> int:
        """A heartbeat (failure detection); the epoch of the ring `node` holds."""

    async def status(self, node: str) -> dict: ...

    async def apply(self, node: str, keyspace: str, entries: Sequence[Entry], *, hint_for: str = "",
                    me: str = "", epoch: int = 0) -> int: ...

    async def read(self, node: str, keyspace: str, keys: Sequence[bytes],
                   epoch: int = 0) -> list[tuple[Version, ...]]: ...

    async def scan(self, node: str, keyspace: str, start: bytes, end: bytes | None,
                   limit: int) -> tuple[list[Entry], bool]: ...

    async def merkle_trees(self, node: str, keyspace: str, spans: Sequence, depth: int) -> list[MerkleTree]: ...

    async def range_hashes(self, node: str, keyspace: str, spans: Sequence) -> list[tuple[bytes, bytes]]: ...

    def stream_range(self, node: str, keyspace: str, spans: Sequence) -> AsyncIterator[list[Entry]]:
        """Every entry of `spans` on `node`, a page at a time."""

    def pull_ranges(self, node: str, epoch: int) -> AsyncIterator[Progress]:
        """Have `node` pull the ranges it gains in the move of `epoch`; its progress until it ends."""

    async def forward_write(self, node: str, keyspace: str, key: bytes, value: bytes | None,
                            context: VectorClock | None, w: int | None) -> WriteResult: ...
