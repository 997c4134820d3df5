"""Kafka's ConsumerProtocol: the bytes a consumer puts inside JoinGroup and SyncGroup.

The broker relays these bytes without reading them; the group leader decodes every member's
Subscription, runs an assignor, and encodes one Assignment per member. Byte for byte as Kafka's
ConsumerProtocolSubscription and ConsumerProtocolAssignment (clients `common/message/*.json`),
big-endian, non-flexible::

    Subscription  int16 version, [string topics], bytes userData (nullable),
                  v1+: [(string topic, [int32 partitions])] ownedPartitions,
                  v2+: int32 generationId, v3+: string rackId (nullable)
    Assignment    int16 version, [(string topic, [int32 partitions])] assignedPartitions,
                  bytes userData (nullable)          (v1..v3 have the same fields as v0)

    string = int16 length + UTF-8 (-1 = null), bytes = int32 length (-1 = null),
    array = int32 count (-1 = null)

Decoding a version newer than the newest known one reads it as the newest known one and
ignores what follows, as Kafka does (newer versions only add fields at the end); for a known
version the bytes must end where its fields end.

    >>> data = encode_subscription(Subscription(["chat", "orders"]))
    >>> decode_subscription(data).topics
    ('chat', 'orders')
    >>> decode_assignment(encode_assignment(Assignment({"chat": [0, 2]}))).partitions
    {'chat': (0, 2)}

`Writer` and `Reader` are the primitives; the broker's `__consumer_offsets` records use them too.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable, Mapping

SUBSCRIPTION_MAX_VERSION = 3
ASSIGNMENT_MAX_VERSION = 3
NO_GENERATION = -1

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class ConsumerProtocolError(ValueError):
    """Bytes that are not a valid Subscription or Assignment; says what and where."""


class Writer:
    """Kafka's non-flexible primitives, appended to one buffer."""

    def __init__(self) -> None:
        self._out = bytearray()

    def int16(self, value: int) -> Writer:
        self._out += _I16.pack(value)
        return self

    def int32(self, value: int) -> Writer:
        self._out += _I32.pack(value)
        return self

    def int64(self, value: int) -> Writer:
        self._out += _I64.pack(value)
        return self

    def string(self, value: str | None) -> Writer:
        if value is None:
            return self.int16(-1)
        data = value.encode("utf-8")
        if len(data) > 0x7FFF:
            raise ConsumerProtocolError(f"string of {len(data)} bytes is longer than 32767")
        self._out += _I16.pack(len(data)) + data
        return self

    def bytes(self, value: bytes | None) -> Writer:
        if value is None:
            return self.int32(-1)
        self._out += _I32.pack(len(value)) + value
        return self

    def array_len(self, count: int) -> Writer:
        return self.int32(count)

    def getvalue(self) -> bytes:
        return bytes(self._out)


class Reader:
    """Reads Kafka's non-flexible primitives; every short read raises ConsumerProtocolError
    naming the field and the position."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = memoryview(bytes(data))
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, n: int, name: str) -> memoryview:
        if n > self.remaining:
            raise self.error(f"needs {n} bytes for {name} but only {self.remaining} are left")
        view = self._data[self._pos : self._pos + n]
        self._pos += n
        return view

    def error(self, problem: str) -> ConsumerProtocolError:
        return ConsumerProtocolError(f"malformed {self._what} at byte {self._pos}: {problem}")

    def int16(self, name: str) -> int:
        return _I16.unpack(self._take(2, name))[0]

    def int32(self, name: str) -> int:
        return _I32.unpack(self._take(4, name))[0]

    def int64(self, name: str) -> int:
        return _I64.unpack(self._take(8, name))[0]

    def string(self, name: str, *, nullable: bool = False) -> str | None:
        n = self.int16(f"the length of {name}")
        if n < 0:
            if n == -1 and nullable:
                return None
            raise self.error(f"invalid length {n} for {'' if nullable else 'non-nullable '}string {name}")
        try:
            return str(self._take(n, name), "utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"{name} is not UTF-8 ({exc.reason})") from None

    def bytes(self, name: str) -> bytes | None:
        n = self.int32(f"the length of {name}")
        if n < 0:
            if n == -1:
                return None
            raise self.error(f"invalid length {n} for bytes {name}")
        return bytes(self._take(n, name))

    def array_len(self, name: str) -> int:
        n = self.int32(f"the length of {name}")
        if n < 0:
            raise self.error(f"non-nullable array {name} has length {n}")
        # Each of our elements takes at least two bytes: refuse a count the remaining bytes
        # cannot hold before looping over it (a garbage count must not spin for minutes).
        if n > self.remaining:
            raise self.error(f"array {name} claims {n} elements but only {self.remaining} bytes are left")
        return n

    def end(self, strict: bool) -> None:
        if strict and self.remaining:
            raise self.error(f"{self.remaining} unexpected bytes after the last field")


def _version(reader: Reader, highest: int) -> tuple[int, bool]:
    """(version to read as, whether trailing bytes are an error)."""
    version = reader.int16("the version")
    if version < 0:
        raise reader.error(f"unsupported version {version}")
    return min(version, highest), version <= highest


def _topic_partitions(items: Mapping[str, Iterable[int]] | Iterable[tuple[str, Iterable[int]]]):
    pairs = items.items() if isinstance(items, Mapping) else items
    return tuple((topic, tuple(parts)) for topic, parts in pairs)


def _write_topic_partitions(w: Writer, pairs) -> None:
    w.array_len(len(pairs))
    for topic, parts in pairs:
        w.string(topic)
        w.array_len(len(parts))
        for p in parts:
            w.int32(p)


def _read_topic_partitions(r: Reader, name: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    out = []
    for _ in range(r.array_len(name)):
        topic = r.string(f"a topic of {name}")
        parts = tuple(r.int32(f"a partition of {name}") for _ in range(r.array_len(f"partitions of {name}")))
        out.append((topic, parts))
    return tuple(out)


# -- Subscription ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """What a member sends in JoinGroup: the topics it wants (v0), what it owns now (v1, for
    the cooperative assignors), its generation (v2) and rack (v3)."""

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[tuple[str, tuple[int, ...]], ...] = ()
    generation_id: int = NO_GENERATION
    rack_id: str | None = None
    version: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", tuple(self.topics))
        object.__setattr__(self, "owned_partitions", _topic_partitions(self.owned_partitions))


def encode_subscription(sub: Subscription) -> bytes:
    if not 0 <= sub.version <= SUBSCRIPTION_MAX_VERSION:
        raise ConsumerProtocolError(f"cannot encode subscription version {sub.version}")
    w = Writer().int16(sub.version)
    w.array_len(len(sub.topics))
    for topic in sub.topics:
        w.string(topic)
    w.bytes(sub.user_data)
    if sub.version >= 1:
        _write_topic_partitions(w, sub.owned_partitions)
    if sub.version >= 2:
        w.int32(sub.generation_id)
    if sub.version >= 3:
        w.string(sub.rack_id)
    return w.getvalue()


def decode_subscription(data: bytes) -> Subscription:
    r = Reader(data, "consumer subscription")
    version, strict = _version(r, SUBSCRIPTION_MAX_VERSION)
    topics = tuple(r.string("a topic") for _ in range(r.array_len("topics")))
    user_data = r.bytes("userData")
    owned: tuple = ()
    generation, rack = NO_GENERATION, None
    if version >= 1:
        owned = _read_topic_partitions(r, "ownedPartitions")
    if version >= 2:
        generation = r.int32("generationId")
    if version >= 3:
        rack = r.string("rackId", nullable=True)
    r.end(strict)
    return Subscription(topics, user_data, owned, generation, rack, version)


# -- Assignment -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """What a member gets back from SyncGroup: partitions per topic, in the leader's order."""

    partitions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    user_data: bytes | None = None
    version: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", dict(_topic_partitions(self.partitions)))


def encode_assignment(a: Assignment) -> bytes:
    if not 0 <= a.version <= ASSIGNMENT_MAX_VERSION:
        raise ConsumerProtocolError(f"cannot encode assignment version {a.version}")
    w = Writer().int16(a.version)
    _write_topic_partitions(w, tuple(a.partitions.items()))
    w.bytes(a.user_data)
    return w.getvalue()


def decode_assignment(data: bytes) -> Assignment:
    """The Assignment in `data`. Empty bytes are an empty assignment: the coordinator gives
    them to a member the leader left out of its SyncGroup."""
    if not data:
        return Assignment()
    r = Reader(data, "consumer assignment")
    version, strict = _version(r, ASSIGNMENT_MAX_VERSION)
    pairs = _read_topic_partitions(r, "assignedPartitions")
    user_data = r.bytes("userData")
    r.end(strict)
    partitions: dict[str, tuple[int, ...]] = {}
    for topic, parts in pairs:  # a topic listed twice (legal on the wire) keeps all its partitions
        partitions[topic] = partitions.get(topic, ()) + parts
    return Assignment(partitions, user_data, version)
