"""Raft's values: log entries, messages, hard and soft state, snapshots, and their byte encoding.

Everything here is a plain value. `encode`/`decode` turn a `Message` into bytes and back; the
transport carries those bytes (in a protobuf ``bytes`` field), so the format is in one place and
easy to replace. The format is versioned and compact: a version byte, then unsigned varints::

    version(=1) type from to term log_term index commit reject_hint flags
    n_entries  { index_delta term type len data }*        (index_delta: first entry absolute)
    [snapshot: index term n_voters voter* [n_learners learner*] len data]
                                          (only when flags has HAS_SNAPSHOT; the learners only
                                           when flags has HAS_LEARNERS, so a membership without
                                           learners encodes as it did before learners existed)

A membership change travels as the data of a CONF_CHANGE entry, encoded by `ConfChange.encode`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

NONE = 0  # "no node": node ids are positive integers
FORMAT_VERSION = 1
MAX_VALUE = 2**63 - 1     # terms, indexes and sizes: what every store of them (int64) can hold
MAX_NODE_ID = 255         # dcli.wire.peers.MAX_NODE_ID


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


class MessageType(enum.IntEnum):
    APP = 1              # AppendEntries (also the probe of a follower's log)
    APP_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    PRE_VOTE = 5
    PRE_VOTE_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    SNAP = 9             # InstallSnapshot
    TIMEOUT_NOW = 10     # leader transfer: "campaign now, skip pre-vote and leases"


class Role(enum.IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


class ConfChangeType(enum.IntEnum):
    """What a CONF_CHANGE entry does. The values are on disk: never renumber them.

    ADD_NODE adds a voter, as it did before learners existed: every log written then (the
    bootstrap entries of each cluster, every AddMember) replays to the same voters. On a learner
    it promotes it, as etcd's ConfChangeAddNode does."""

    ADD_NODE = 1            # a voter (new, or a learner promoted)
    REMOVE_NODE = 2         # a voter or a learner
    ADD_LEARNER_NODE = 3    # a non-voting member: it gets the log, never votes or counts
    PROMOTE_LEARNER = 4     # a learner becomes a voter (refused for anything but a learner)


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One member added, promoted or removed; the data of a CONF_CHANGE entry. `context`
    travels with it untouched (the node puts the new member's address there)."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""

    def encode(self) -> bytes:
        out = bytes([FORMAT_VERSION, int(self.type)]) + _uvarint(self.node_id)
        if self.context:
            out += _uvarint(len(self.context)) + self.context
        return out

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        if len(data) < 3 or data[0] != FORMAT_VERSION:
            raise ValueError(f"bad conf change encoding: {data!r}")
        node_id, pos = _read_uvarint(data, 2)
        context = b""
        if pos != len(data):
            size, pos = _read_uvarint(data, pos)
            context = _take(data, pos, size)
            if pos + size != len(data):
                raise ValueError("trailing bytes after conf change")
        return ConfChange(ConfChangeType(data[1]), node_id, context)


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()     # never also voters


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine at `index` (whose entry had `term`), with the membership at that index."""

    index: int = 0
    term: int = 0
    conf: ConfState = ConfState()
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on disk before any message of the same Ready leaves the node."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile; reported so the caller can route requests to the leader."""

    lead: int = NONE
    role: Role = Role.FOLLOWER


@dataclass(slots=True)
class Message:
    type: MessageType
    from_: int = NONE
    to: int = NONE
    term: int = 0
    log_term: int = 0          # APP: term of `index`; votes: term of the candidate's last entry
    index: int = 0             # APP: entry preceding `entries`; APP_RESP: last matched or rejected
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0       # APP_RESP reject: where the leader should probe next (with log_term)
    snapshot: Snapshot | None = None
    force: bool = False        # VOTE after TIMEOUT_NOW: granted even inside a leader lease
    quiet: bool = False        # APP without entries: the follower answers only a mismatch


_REJECT, _FORCE, _HAS_SNAPSHOT, _QUIET, _HAS_LEARNERS = 1, 2, 4, 8, 16
_ENTRY_TYPES = tuple(EntryType(v) for v in range(max(EntryType) + 1))


def encode(m: Message) -> bytes:
    flags = (_REJECT if m.reject else 0) | (_FORCE if m.force else 0) | (
        _HAS_SNAPSHOT if m.snapshot is not None else 0) | (_QUIET if m.quiet else 0) | (
        _HAS_LEARNERS if m.snapshot is not None and m.snapshot.conf.learners else 0)
    out = bytearray((FORMAT_VERSION, int(m.type)))
    for value in (m.from_, m.to, m.term, m.log_term, m.index, m.commit, m.reject_hint, flags,
                  len(m.entries)):
        _put(out, value)
    prev = 0
    for e in m.entries:
        _put(out, e.index - prev)
        prev = e.index
        _put(out, e.term)
        _put(out, int(e.type))
        _put(out, len(e.data))
        out += e.data
    if m.snapshot is not None:
        s = m.snapshot
        _put(out, s.index)
        _put(out, s.term)
        _put(out, len(s.conf.voters))
        for v in sorted(s.conf.voters):
            _put(out, v)
        if s.conf.learners:
            _put(out, len(s.conf.learners))
            for v in sorted(s.conf.learners):
                _put(out, v)
        _put(out, len(s.data))
        out += s.data
    return bytes(out)


def decode(data: bytes) -> Message:
    if len(data) < 2 or data[0] != FORMAT_VERSION:
        raise ValueError("not a raft message of a known format version")
    mtype = MessageType(data[1])
    pos = 2
    fields = []
    for _ in range(9):
        value, pos = _read_uvarint(data, pos)
        fields.append(value)
    from_, to, term, log_term, index, commit, reject_hint, flags, n_entries = fields
    if not (1 <= from_ <= MAX_NODE_ID and 1 <= to <= MAX_NODE_ID):
        raise ValueError(f"node id out of range in a raft message (from {from_} to {to})")
    entries = []
    prev = 0
    end = len(data)
    for _ in range(n_entries):
        # the path every replicated write takes: one-byte varints read in place
        if pos + 3 < end and data[pos] < 0x80 and data[pos + 1] < 0x80 and data[pos + 2] < 0x80:
            prev += data[pos]
            eterm = data[pos + 1]
            etype = data[pos + 2]
            pos += 3
        else:
            delta, pos = _read_uvarint(data, pos)
            eterm, pos = _read_uvarint(data, pos)
            etype, pos = _read_uvarint(data, pos)
            prev += delta
        size, pos = _read_uvarint(data, pos)
        try:
            entry_type = _ENTRY_TYPES[etype]
        except IndexError:
            raise ValueError(f"unknown entry type {etype}") from None
        entries.append(Entry(eterm, prev, entry_type, _take(data, pos, size)))
        pos += size
    snapshot = None
    if flags & _HAS_SNAPSHOT:
        sindex, pos = _read_uvarint(data, pos)
        sterm, pos = _read_uvarint(data, pos)
        voters, pos = _read_ids(data, pos)
        learners: list[int] = []
        if flags & _HAS_LEARNERS:
            learners, pos = _read_ids(data, pos)
        size, pos = _read_uvarint(data, pos)
        conf = ConfState(frozenset(voters), frozenset(learners))
        snapshot = Snapshot(sindex, sterm, conf, _take(data, pos, size))
        pos += size
    if pos != len(data):
        raise ValueError("trailing bytes after raft message")
    return Message(mtype, from_, to, term, log_term, index, entries, commit,
                   bool(flags & _REJECT), reject_hint, snapshot, bool(flags & _FORCE), bool(flags & _QUIET))


def _put(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError(f"negative field {value}")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    _put(out, value)
    return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):  # 64-bit values need at most 10 bytes
        if pos >= len(data):
            raise ValueError("truncated raft message")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value > MAX_VALUE:
                raise ValueError(f"value {value} out of range in a raft message")
            return value, pos
        shift += 7
    raise ValueError("varint too long")


def _read_ids(data: bytes, pos: int) -> tuple[list[int], int]:
    count, pos = _read_uvarint(data, pos)
    if count > MAX_NODE_ID:
        raise ValueError(f"{count} node ids in a raft message")
    ids = []
    for _ in range(count):
        v, pos = _read_uvarint(data, pos)
        ids.append(v)
    return ids, pos


def _take(data: bytes, pos: int, size: int) -> bytes:
    if pos + size > len(data):
        raise ValueError("truncated raft message")
    return bytes(data[pos:pos + size])
