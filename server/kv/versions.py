"""Versions of a key: vector clocks with a dot per write, siblings, and read resolution.

The choice: vector clocks, as in the Dynamo paper, not last-writer-wins. A clock says what a
writer had seen, so two writes that did not see each other are *concurrent* and both kept, as
siblings, instead of one silently losing on a timestamp. A read returns every sibling together
with a context (the join of their clocks); the next write sent with that context supersedes all
of them, which is how an application resolves a conflict (Dynamo's shopping cart merge).

Each version is a *dotted* clock (Preguiça et al., "Dotted Version Vectors", as Riak uses them):
the dot `(node, counter)` names the write itself, the context is the vector clock the client
sent. Plain per-node vector clocks cannot tell "the coordinator wrote twice in a row" from "two
clients wrote concurrently through the same coordinator"; the second would overwrite the first,
which on a one-node cluster is every conflict. With the dot kept apart, version x is older than y
exactly when y's writer had seen x's dot: `x.counter <= y.context[x.node]`.

Rules for the coordinator (the later slice), so that dots stay unique and contexts honest:
  * the counter of a new dot is greater than any counter of that node the coordinator knows for
    the key (`new_version` with the local siblings; the store also keeps a per-node floor so a
    counter never repeats after tombstones are collected);
  * after a write it sends its whole resulting sibling set to the other replicas (as Riak does),
    not only the new version, so that no replica holds a dot without the siblings the dot's
    counter implies.

Tombstones are versions whose value is None: a delete is a write, with a context, and it can be
a sibling of a concurrent put (a read then shows the value, and the conflict, until resolved).

    >>> a = new_version("n1", b"red", VectorClock(), [])
    >>> b = new_version("n1", b"blue", VectorClock(), [a])     # another client, same empty context
    >>> a.compare(b), reconcile([a], [b]) == (a, b)
    (<Order.CONCURRENT: 'concurrent'>, True)
    >>> c = new_version("n2", b"purple", context_of([a, b]), [])
    >>> reconcile([a, b], [c]) == (c,)
    True
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Mapping, Sequence

# what a decoder accepts (a clock or version comes from clients and peers too): a clock names at
# most one counter per node id (1-255), counters fit a signed 64-bit integer
MAX_CLOCK_ENTRIES = 256
MAX_NODE_NAME_BYTES = 64
MAX_COUNTER = 2**63 - 1


class Order(Enum):
    BEFORE = "before"          # the left one is older: the right one has seen it
    AFTER = "after"            # the left one is newer
    EQUAL = "equal"
    CONCURRENT = "concurrent"  # neither has seen the other: both are kept as siblings


class VersionDecodeError(ValueError):
    pass


# -- varints (unsigned LEB128) keep encodings short and deterministic -------------------------

def _put_varint(out: bytearray, n: int) -> None:
    if n < 0:
        raise ValueError("varint must not be negative")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise VersionDecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise VersionDecodeError("varint over 64 bits")


def _put_bytes(out: bytearray, data: bytes) -> None:
    _put_varint(out, len(data))
    out += data


def _get_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _get_varint(data, pos)
    if pos + size > len(data):
        raise VersionDecodeError("truncated field")
    return bytes(data[pos:pos + size]), pos + size


# -- vector clocks ----------------------------------------------------------------------------

@dataclass(frozen=True)
class VectorClock:
    """An immutable map node id -> counter; missing nodes count 0. Entries are kept sorted
    with no zero counters, so equal clocks are equal objects and encode to equal bytes.

        >>> VectorClock.of({"b": 2, "a": 1}).merge(VectorClock.of({"a": 3}))
        VectorClock(a:3, b:2)
    """

    entries: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, counters: Mapping[str, int]) -> VectorClock:
        for node, n in counters.items():
            if not isinstance(node, str) or not isinstance(n, int) or n < 0:
                raise ValueError(f"bad clock entry {node!r}: {n!r}")
        return cls(tuple(sorted((node, n) for node, n in counters.items() if n)))

    def get(self, node: str) -> int:
        for name, n in self.entries:
            if name == node:
                return n
        return 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.entries)

    def merge(self, other: VectorClock) -> VectorClock:
        merged = dict(self.entries)
        for node, n in other.entries:
            if n > merged.get(node, 0):
                merged[node] = n
        return VectorClock.of(merged)

    def increment(self, node: str) -> VectorClock:
        counters = dict(self.entries)
        counters[node] = counters.get(node, 0) + 1
        return VectorClock.of(counters)

    def descends(self, other: VectorClock) -> bool:
        """True when this clock has seen everything `other` has (self >= other pointwise)."""
        mine = dict(self.entries)
        return all(mine.get(node, 0) >= n for node, n in other.entries)

    def compare(self, other: VectorClock) -> Order:
        ge, le = self.descends(other), other.descends(self)
        if ge and le:
            return Order.EQUAL
        if ge:
            return Order.AFTER
        if le:
            return Order.BEFORE
        return Order.CONCURRENT

    def encode(self) -> bytes:
        out = bytearray()
        self._encode_into(out)
        return bytes(out)

    def _encode_into(self, out: bytearray) -> None:
        _put_varint(out, len(self.entries))
        for node, n in self.entries:
            _put_bytes(out, node.encode())
            _put_varint(out, n)

    @classmethod
    def decode(cls, data: bytes) -> VectorClock:
        clock, pos = cls._decode_from(data, 0)
        if pos != len(data):
            raise VersionDecodeError(f"{len(data) - pos} trailing bytes after a clock")
        return clock

    @classmethod
    def _decode_from(cls, data: bytes, pos: int) -> tuple[VectorClock, int]:
        count, pos = _get_varint(data, pos)
        if count > MAX_CLOCK_ENTRIES:
            raise VersionDecodeError(f"a clock of {count} entries (at most {MAX_CLOCK_ENTRIES})")
        counters: dict[str, int] = {}
        for _ in range(count):
            raw, pos = _get_bytes(data, pos)
            if len(raw) > MAX_NODE_NAME_BYTES:
                raise VersionDecodeError(f"a node name of {len(raw)} bytes in a clock")
            n, pos = _get_varint(data, pos)
            if n > MAX_COUNTER:
                raise VersionDecodeError("a counter above 2^63-1 in a clock")
            counters[raw.decode()] = n
        return cls.of(counters), pos

    def __repr__(self) -> str:
        return "VectorClock(" + ", ".join(f"{node}:{n}" for node, n in self.entries) + ")"


# -- versions -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Version:
    """One write of a key: its dot `(node, counter)`, the context its writer had seen, and the
    value (None for a delete)."""

    node: str
    counter: int
    context: VectorClock = field(default_factory=VectorClock)
    value: bytes | None = None

    @property
    def dot(self) -> tuple[str, int]:
        return (self.node, self.counter)

    @property
    def is_tombstone(self) -> bool:
        return self.value is None

    @property
    def clock(self) -> VectorClock:
        """Everything this version has seen, itself included."""
        return self.context.merge(VectorClock(((self.node, self.counter),)))

    def seen_by(self, other: Version) -> bool:
        """True when `other`'s writer had seen this version."""
        return self.counter <= other.context.get(self.node)

    def compare(self, other: Version) -> Order:
        if self.dot == other.dot:
            return Order.EQUAL
        if self.seen_by(other):
            return Order.BEFORE
        if other.seen_by(self):
            return Order.AFTER
        return Order.CONCURRENT

    def encode(self) -> bytes:
        out = bytearray()
        self._encode_into(out)
        return bytes(out)

    def _encode_into(self, out: bytearray) -> None:
        _put_bytes(out, self.node.encode())
        _put_varint(out, self.counter)
        self.context._encode_into(out)
        if self.value is None:
            out.append(0)
        else:
            out.append(1)
            _put_bytes(out, self.value)

    @classmethod
    def decode(cls, data: bytes) -> Version:
        version, pos = cls._decode_from(data, 0)
        if pos != len(data):
            raise VersionDecodeError(f"{len(data) - pos} trailing bytes after a version")
        return version

    @classmethod
    def _decode_from(cls, data: bytes, pos: int) -> tuple[Version, int]:
        raw, pos = _get_bytes(data, pos)
        counter, pos = _get_varint(data, pos)
        if not 1 <= counter <= MAX_COUNTER:
            raise VersionDecodeError("a dot's counter is 1 to 2^63-1")
        if len(raw) > MAX_NODE_NAME_BYTES:
            raise VersionDecodeError(f"a node name of {len(raw)} bytes in a dot")
        context, pos = VectorClock._decode_from(data, pos)
        if pos >= len(data):
            raise VersionDecodeError("truncated version")
        flag = data[pos]
        pos += 1
        if flag == 0:
            value = None
        elif flag == 1:
            value, pos = _get_bytes(data, pos)
        else:
            raise VersionDecodeError(f"bad value flag {flag}")
        return cls(raw.decode(), counter, context, value), pos

    def __repr__(self) -> str:
        shown = "tombstone" if self.value is None else f"{len(self.value)} bytes"
        return f"Version({self.node}:{self.counter} after {self.context!r}, {shown})"


def new_version(node: str, value: bytes | None, context: VectorClock,
                local: Iterable[Version], floor: int = 0) -> Version:
    """The version a coordinator `node` creates for a write sent with `context`, given the
    siblings it holds locally. The counter is above every counter of `node` it knows of (and
    above `floor`, the store's per-node high mark), so the dot is new."""
    highest = max([floor, context.get(node), *(v.clock.get(node) for v in local)])
    return Version(node, highest + 1, context, value)


def reconcile(*sibling_sets: Iterable[Version]) -> tuple[Version, ...]:
    """The versions of all sets that no other version has seen, each dot once, sorted by dot.
    Reconciling is commutative, associative and idempotent, so replicas converge whatever the
    order in which they hear of writes. (The laws need what `new_version` guarantees: a dot
    names one write, and a context that covers a dot covers that write's whole clock.)"""
    by_dot: dict[tuple[str, int], Version] = {}
    for versions in sibling_sets:
        for v in versions:
            held = by_dot.get(v.dot)
            # one dot with two values means a node reused a counter (lost its data dir);
            # keep one of them the same way on every replica
            if held is None or (held != v and v.encode() > held.encode()):
                by_dot[v.dot] = v
    candidates = list(by_dot.values())
    survivors = [v for v in candidates
                 if not any(v.seen_by(w) for w in candidates if w.dot != v.dot)]
    return tuple(sorted(survivors, key=lambda v: v.dot))


def context_of(versions: Iterable[Version]) -> VectorClock:
    """The context a client gets with a read and sends back with its next write: the join of
    the siblings' clocks. A write with it supersedes every one of them."""
    clock = VectorClock()
    for v in versions:
        clock = clock.merge(v.clock)
    return clock


def live_values(versions: Iterable[Version]) -> list[bytes]:
    """The values a read shows: every sibling that is not a tombstone."""
    return [v.value for v in versions if v.value is not None]


def encode_siblings(versions: Sequence[Version]) -> bytes:
    out = bytearray()
    _put_varint(out, len(versions))
    for v in versions:
        v._encode_into(out)
    return bytes(out)


def decode_siblings(data: bytes) -> tuple[Version, ...]:
    count, pos = _get_varint(data, 0)
    versions = []
    for _ in range(count):
        v, pos = Version._decode_from(data, pos)
        versions.append(v)
    if pos != len(data):
        raise VersionDecodeError(f"{len(data) - pos} trailing bytes after the siblings")
    return tuple(versions)


def version_hash(versions: Sequence[Version]) -> bytes:
    """A 16-byte digest of a reconciled sibling set, the leaf input of the Merkle trees. Two
    replicas agree on a key exactly when their hashes are equal."""
    return hashlib.blake2b(encode_siblings(reconcile(versions)), digest_size=16).digest()


@dataclass(frozen=True)
class ReadResolution:
    """What a coordinator makes of the replicas' answers to a read.

    `versions` is the reconciled sibling set (maybe empty, maybe all tombstones); `context` goes
    back to the client; `stale` names the replicas whose answer differs from `versions` and
    need read repair (send them `versions`)."""

    versions: tuple[Version, ...]
    context: VectorClock
    stale: frozenset[str]

    @property
    def found(self) -> bool:
        return any(not v.is_tombstone for v in self.versions)

    @property
    def values(self) -> list[bytes]:
        return live_values(self.versions)

    @property
    def conflict(self) -> bool:
        return len(self.values) > 1


def resolve(answers: Mapping[str, Sequence[Version]]) -> ReadResolution:
    """Reconcile the sibling sets that replicas returned (replica id -> its versions; an empty
    sequence for "not found") and tell which replicas are stale.

        >>> old = Version("n1", 1, VectorClock(), b"v1")
        >>> new = Version("n1", 2, old.clock, b"v2")
        >>> r = resolve({"a": [new], "b": [old], "c": []})
        >>> r.values, sorted(r.stale)
        ([b'v2'], ['b', 'c'])
    """
    merged = reconcile(*answers.values())
    stale = frozenset(replica for replica, versions in answers.items()
                      if reconcile(versions) != merged)
    return ReadResolution(merged, context_of(merged), stale)
