"""Where keys live: a consistent-hash ring with virtual nodes, or key-range shards.

Hash mode (the default, as in Dynamo and Cassandra): a key's token is the first 8 bytes of
blake2b over the key, an integer in [0, 2**64). Never Python's `hash()`, which is salted per
process: every node and every client must place a key identically. Each physical node owns
`round(vnodes * weight)` virtual nodes at tokens `blake2b("<node>#<i>")`, so a node with twice
the capacity gets twice the arcs, and raising a weight adds vnodes without moving the old ones.
A vnode at token t owns the arc (previous token, t]; a key belongs to the first vnode at or
after its token, walking clockwise. The preference list of a key is the owners of the vnodes
from there on, skipping physical nodes already listed, until N distinct nodes are found.

Range mode (per keyspace, for ordered scans): the key space is cut at split keys into shards
[start, end), each with an explicit replica list. A scan asks only the shards its range
overlaps, where hash mode must ask every node.

Membership changes are pure functions from the old layout to the new one: `moves` lists the
ranges whose replica set changes, `transfers` says who streams each of them to whom. Only the
arcs next to the added or removed vnodes change hands.

    >>> ring = HashRing({"n1": 1, "n2": 1, "n3": 2}, vnodes=64)
    >>> len(ring.preference_list(b"user/42", 3))
    3
    >>> bigger = ring.with_node("n4")
    >>> all(m.gained <= {"n4"} for m in moves(ring, bigger, replication=1))
    True
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Mapping, Sequence

from dcli.wire.kv_keys import prefix_end

RING_SIZE = 1 << 64
DEFAULT_VNODES = 128


class Partitioning(Enum):
    HASH = "hash"
    RANGE = "range"


def token(key: bytes) -> int:
    """The ring position of a key: blake2b truncated to 8 bytes, big-endian."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def vnode_token(node: str, index: int) -> int:
    return token(f"{node}#{index}".encode())


@dataclass(frozen=True)
class TokenRange:
    """The arc (start, end] of the ring, wrapping past 2**64 - 1 to 0 when start >= end;
    start == end is the whole ring."""

    start: int
    end: int

    def contains(self, t: int) -> bool:
        if self.start < self.end:
            return self.start < t <= self.end
        if self.start > self.end:
            return t > self.start or t <= self.end
        return True

    @property
    def width(self) -> int:
        return (self.end - self.start) % RING_SIZE or RING_SIZE

    def offset(self, t: int) -> int:
        """How far past the start `t` lies, 0 for the first token inside."""
        return (t - self.start - 1) % RING_SIZE

    def __repr__(self) -> str:
        return f"TokenRange({self.start:#018x}, {self.end:#018x}]"


FULL_RING = TokenRange(0, 0)


@dataclass(frozen=True)
class KeyRange:
    """Keys k with start <= k < end; end None is unbounded."""

    start: bytes = b""
    end: bytes | None = None

    def contains(self, key: bytes) -> bool:
        return self.start <= key and (self.end is None or key < self.end)

    def overlaps(self, start: bytes, end: bytes | None) -> bool:
        return (end is None or self.start < end) and (self.end is None or start < self.end)

    @classmethod
    def for_prefix(cls, prefix: bytes) -> KeyRange:
        return cls(prefix, prefix_end(prefix))


@dataclass(frozen=True)
class RangeMove:
    """A range whose replica set changes: `before` and `after` in preference order."""

    range: TokenRange | KeyRange
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def gained(self) -> frozenset[str]:
        return frozenset(self.after) - frozenset(self.before)

    @property
    def lost(self) -> frozenset[str]:
        return frozenset(self.before) - frozenset(self.after)


@dataclass(frozen=True)
class Transfer:
    """Stream `range` from `source` to `target` (source None: no old replica has it)."""

    range: TokenRange | KeyRange
    source: str | None
    target: str


class HashRing:
    """An immutable consistent-hash ring; changes return a new ring.

        >>> ring = HashRing({"a": 1, "b": 2}, vnodes=8)
        >>> ring.vnode_count("a"), ring.vnode_count("b")
        (8, 16)
    """

    def __init__(self, weights: Mapping[str, float] | Iterable[str] = (), vnodes: int = DEFAULT_VNODES):
        if vnodes < 1:
            raise ValueError(f"vnodes must be at least 1, not {vnodes}")
        if not isinstance(weights, Mapping):
            weights = {node: 1 for node in weights}
        for node, weight in weights.items():
            if not node:
                raise ValueError("node ids must not be empty")
            if not weight > 0:
                raise ValueError(f"weight of {node!r} must be positive, not {weight!r}")
        self.vnodes = vnodes
        self.weights: dict[str, float] = dict(sorted(weights.items()))
        placed: dict[int, str] = {}
        for node in self.weights:       # sorted, so a (vanishingly rare) token clash is decided
            for i in range(self.vnode_count(node)):   # the same way everywhere
                placed.setdefault(vnode_token(node, i), node)
        self.tokens: list[int] = sorted(placed)
        self.owners: list[str] = [placed[t] for t in self.tokens]

    # -- membership -------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return list(self.weights)

    def vnode_count(self, node: str) -> int:
        return max(1, round(self.vnodes * self.weights[node]))

    def with_node(self, node: str, weight: float = 1) -> HashRing:
        if node in self.weights:
            raise ValueError(f"{node!r} is already on the ring")
        return HashRing({**self.weights, node: weight}, self.vnodes)

    def without_node(self, node: str) -> HashRing:
        if node not in self.weights:
            raise ValueError(f"{node!r} is not on the ring")
        return HashRing({n: w for n, w in self.weights.items() if n != node}, self.vnodes)

    def with_weight(self, node: str, weight: float) -> HashRing:
        if node not in self.weights:
            raise ValueError(f"{node!r} is not on the ring")
        return HashRing({**self.weights, node: weight}, self.vnodes)

    # -- placement --------------------------------------------------------------------------

    def _index(self, t: int) -> int:
        i = bisect.bisect_left(self.tokens, t)
        return 0 if i == len(self.tokens) else i

    def owner(self, key: bytes) -> str:
        return self.owner_of_token(token(key))

    def owner_of_token(self, t: int) -> str:
        if not self.tokens:
            raise LookupError("the ring has no nodes")
        return self.owners[self._index(t)]

    def preference_list(self, key: bytes, n: int) -> list[str]:
        """The first `n` distinct physical nodes clockwise from the key (fewer if the ring has
        fewer nodes): the key's replicas, the first one its coordinator by default."""
        return self.preference_for_token(token(key), n)

    def preference_for_token(self, t: int, n: int) -> list[str]:
        if not self.tokens or n < 1:
            return []
        wanted = min(n, len(self.weights))
        found: list[str] = []
        i = self._index(t)
        count = len(self.tokens)
        for step in range(count):
            node = self.owners[(i + step) % count]
            if node not in found:
                found.append(node)
                if len(found) == wanted:
                    break
        return found

    def ranges(self) -> list[tuple[TokenRange, str]]:
        """Every vnode's arc with its owner, clockwise from the lowest token."""
        if not self.tokens:
            return []
        return [(TokenRange(self.tokens[i - 1], t), self.owners[i])
                for i, t in enumerate(self.tokens)]

    def replica_ranges(self, n: int) -> list[tuple[TokenRange, tuple[str, ...]]]:
        """The ring cut into arcs, each with its N replicas; adjacent arcs with the same
        replicas are joined."""
        return _join_adjacent([(r, tuple(self.preference_for_token(r.end, n)))
                               for r, _ in self.ranges()])

    def ranges_of(self, node: str, n: int) -> list[TokenRange]:
        """The arcs `node` holds a replica of, for replication factor `n`: what it builds Merkle
        trees over and repairs."""
        return [r for r, replicas in self.replica_ranges(n) if node in replicas]

    def shares(self) -> dict[str, float]:
        """The fraction of the token space each node owns as first replica."""
        owned = {node: 0 for node in self.weights}
        for r, node in self.ranges():
            owned[node] += r.width
        return {node: w / RING_SIZE for node, w in owned.items()}

    def nodes_for_scan(self, start: bytes = b"", end: bytes | None = None) -> list[str]:
        """Hashing scatters neighbouring keys, so a scan must ask every node."""
        return self.nodes

    def __repr__(self) -> str:
        return f"HashRing({self.weights!r}, vnodes={self.vnodes})"


def moves(old: HashRing, new: HashRing, replication: int) -> list[RangeMove]:
    """The arcs whose replica set differs between two rings. The arcs are cut at the tokens
    of both rings, so each one has one replica list in each."""
    boundaries = sorted(set(old.tokens) | set(new.tokens))
    changed = []
    for i, end in enumerate(boundaries):
        before = tuple(old.preference_for_token(end, replication))
        after = tuple(new.preference_for_token(end, replication))
        if set(before) != set(after):
            changed.append((TokenRange(boundaries[i - 1], end), (before, after)))
    return [RangeMove(r, before, after) for r, (before, after) in _join_adjacent(changed)]


def transfers(changes: Iterable[RangeMove]) -> list[Transfer]:
    """Who streams what to whom: each node that gains a range copies it from the first old
    replica that keeps it (it stays up), else from the first old replica."""
    plan = []
    for move in changes:
        keepers = [n for n in move.before if n in move.after]
        source = keepers[0] if keepers else (move.before[0] if move.before else None)
        for target in move.after:
            if target in move.gained:
                plan.append(Transfer(move.range, source, target))
    return plan


def _join_adjacent(pieces):
    """Join neighbouring (range, label) pieces with equal labels, including across the wrap."""
    joined: list[list] = []
    for r, label in pieces:
        if joined and joined[-1][1] == label and joined[-1][0].end == r.start:
            joined[-1][0] = TokenRange(joined[-1][0].start, r.end)
        else:
            joined.append([r, label])
    if len(joined) > 1 and joined[0][1] == joined[-1][1] and joined[-1][0].end == joined[0][0].start:
        last = joined.pop()
        joined[0][0] = TokenRange(last[0].start, joined[0][0].end)
    return [(r, label) for r, label in joined]


# -- range sharding -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Shard:
    range: KeyRange
    replicas: tuple[str, ...]


class KeyRangeShards:
    """Key-range shards covering every key, each with its replicas (first = preferred
    coordinator).

        >>> shards = KeyRangeShards.build([b"g", b"p"], {"a": 1, "b": 1, "c": 1}, replication=2)
        >>> [s.range.start for s in shards.shards_for_scan(b"h", b"q")]
        [b'g', b'p']
        >>> shards.preference_list(b"zebra")
        ['c', 'a']
    """

    def __init__(self, shards: Sequence[Shard]):
        if not shards:
            raise ValueError("at least one shard is needed")
        if shards[0].range.start != b"" or shards[-1].range.end is not None:
            raise ValueError("shards must cover every key, from b'' to the end")
        for left, right in zip(shards, shards[1:]):
            if left.range.end != right.range.start:
                raise ValueError(f"shards must be contiguous: {left.range} then {right.range}")
        for shard in shards:
            if not shard.replicas or len(set(shard.replicas)) != len(shard.replicas):
                raise ValueError(f"{shard.range} needs distinct replicas, not {shard.replicas}")
        self.shards: tuple[Shard, ...] = tuple(shards)
        self._starts = [s.range.start for s in self.shards]

    @classmethod
    def build(cls, splits: Sequence[bytes], weights: Mapping[str, float],
              replication: int) -> KeyRangeShards:
        """Shards cut at `splits`; first replicas spread in proportion to the weights (the node
        with the fewest shards per unit of weight takes the next one), the rest following in
        node order."""
        if list(splits) != sorted(set(splits)) or b"" in splits:
            raise ValueError("split keys must be distinct, non-empty and sorted")
        nodes = sorted(weights)
        if not nodes:
            raise ValueError("range shards need at least one node")
        n = min(replication, len(nodes))
        bounds = [b"", *splits, None]
        counts = {node: 0 for node in nodes}
        shards = []
        for start, end in zip(bounds, bounds[1:]):
            first = min(nodes, key=lambda node: (counts[node] / weights[node], node))
            counts[first] += 1
            i = nodes.index(first)
            replicas = tuple(nodes[(i + k) % len(nodes)] for k in range(n))
            shards.append(Shard(KeyRange(start, end), replicas))
        return cls(shards)

    def shard_for(self, key: bytes) -> Shard:
        return self.shards[bisect.bisect_right(self._starts, key) - 1]

    def preference_list(self, key: bytes, n: int | None = None) -> list[str]:
        replicas = list(self.shard_for(key).replicas)
        return replicas if n is None else replicas[:n]

    def shards_for_scan(self, start: bytes = b"", end: bytes | None = None) -> list[Shard]:
        """Only the shards that hold keys in [start, end)."""
        return [s for s in self.shards if s.range.overlaps(start, end)]

    def shards_for_prefix(self, prefix: bytes) -> list[Shard]:
        r = KeyRange.for_prefix(prefix)
        return self.shards_for_scan(r.start, r.end)

    def nodes_for_scan(self, start: bytes = b"", end: bytes | None = None) -> list[str]:
        found: list[str] = []
        for shard in self.shards_for_scan(start, end):
            found += [n for n in shard.replicas if n not in found]
        return found

    def split(self, at: bytes) -> KeyRangeShards:
        """The same layout with the shard holding `at` cut in two; both halves keep its
        replicas, so nothing moves."""
        shard = self.shard_for(at)
        if shard.range.start == at:
            raise ValueError(f"{at!r} is already a shard boundary")
        i = self.shards.index(shard)
        halves = [Shard(KeyRange(shard.range.start, at), shard.replicas),
                  Shard(KeyRange(at, shard.range.end), shard.replicas)]
        return KeyRangeShards([*self.shards[:i], *halves, *self.shards[i + 1:]])

    def with_replicas(self, start: bytes, replicas: Sequence[str]) -> KeyRangeShards:
        """The same layout with the shard starting at `start` given new replicas."""
        if start not in self._starts:
            raise ValueError(f"no shard starts at {start!r}")
        return KeyRangeShards([Shard(s.range, tuple(replicas)) if s.range.start == start else s
                               for s in self.shards])


def range_moves(old: KeyRangeShards, new: KeyRangeShards) -> list[RangeMove]:
    """The key ranges whose replica set differs between two shard layouts."""
    bounds = sorted({*old._starts, *new._starts})
    changed = []
    for start, end in zip(bounds, [*bounds[1:], None]):
        before, after = old.shard_for(start).replicas, new.shard_for(start).replicas
        if set(before) != set(after):
            if changed and changed[-1].range.end == start and \
                    (changed[-1].before, changed[-1].after) == (before, after):
                changed[-1] = RangeMove(KeyRange(changed[-1].range.start, end), before, after)
            else:
                changed.append(RangeMove(KeyRange(start, end), before, after))
    return changed
