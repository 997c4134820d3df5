"""RaftStorage: one node's Raft state on disk — log entries, hard state and snapshots.

Step 1 of the Ready contract (see raft.py) lands here::

    storage = RaftStorage(data_dir / "raft")
    node = RaftNode(config, rng, peers=[1, 2, 3], persisted=storage.load())
    rd = node.ready()
    storage.write(rd.snapshot, rd.entries, rd.hard_state)   # on the loop: os.write, no fsync
    storage.sync()                                          # in a thread: one fsync for all of it

Layout under the directory:

- ``log/``: a WriteAheadLog whose record key is the entry's index; payload = type (1 byte),
  term (8 bytes, big-endian), data. A leader overwriting a follower's uncommitted tail truncates
  it (``truncate_from``) before the new entries are appended.
- ``hardstate``: term and vote, 16 bytes + CRC, replaced atomically (write, fsync, rename, fsync
  the folder) whenever either changes — rarely: only around elections.
- ``commit``: the commit index, rewritten in place without fsync. It only saves a restart from
  waiting for the leader; a lost or torn value reads as 0 and Raft finds the commit again.
- ``snapshot/``: SnapshotStore files keyed by index; payload = term, voters, learners (only
  when there are any: the top bit of the voter count says so, and a snapshot without learners
  is stored as before learners existed), state machine bytes.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from dcli_server.consensus.messages import ConfState, Entry, EntryType, HardState, Snapshot
from dcli_server.consensus.raft import PersistedState
from dcli_server.storage import CorruptLogError, FsyncMode, SnapshotStore, WriteAheadLog
from dcli_server.storage.files import write_atomically

_ENTRY = struct.Struct(">BQ")          # type, term
_HARD = struct.Struct(">QQI")          # term, vote, crc32 of the first 16 bytes
_COMMIT = struct.Struct(">QI")         # commit, crc32 of the first 8 bytes
_SNAP = struct.Struct(">QI")           # term, number of voters; then the voters, then the data
_LEARNERS_FOLLOW = 1 << 31             # in the number of voters: a count of learners and the learners follow the voters


def encode_entry(e: Entry) -> bytes:
    return _ENTRY.pack(int(e.type), e.term) + e.data


def decode_entry(index: int, payload: bytes) -> Entry:
    kind, term = _ENTRY.unpack_from(payload)
    return Entry(term, index, EntryType(kind), payload[_ENTRY.size:])


def encode_snapshot(s: Snapshot) -> bytes:
    voters, learners = sorted(s.conf.voters), sorted(s.conf.learners)
    out = _SNAP.pack(s.term, len(voters) | (_LEARNERS_FOLLOW if learners else 0))
    out += struct.pack(f">{len(voters)}I", *voters)
    if learners:
        out += struct.pack(f">I{len(learners)}I", len(learners), *learners)
    return out + s.data


def decode_snapshot(index: int, payload: bytes) -> Snapshot:
    term, n = _SNAP.unpack_from(payload)
    pos = _SNAP.size
    voters = struct.unpack_from(f">{n & ~_LEARNERS_FOLLOW}I", payload, pos)
    pos += 4 * len(voters)
    learners: tuple[int, ...] = ()
    if n & _LEARNERS_FOLLOW:
        (count,) = struct.unpack_from(">I", payload, pos)
        learners = struct.unpack_from(f">{count}I", payload, pos + 4)
        pos += 4 + 4 * count
    return Snapshot(index, term, ConfState(frozenset(voters), frozenset(learners)), payload[pos:])


class RaftStorage:
    def __init__(self, directory: Path, fsync: FsyncMode = FsyncMode.ALWAYS) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._wal = WriteAheadLog(self.directory / "log", fsync=fsync)
        self._snapshots = SnapshotStore(self.directory / "snapshot")
        self._hard = HardState()
        self._commit_fd: int | None = None
        self.snapshot = Snapshot()

    # ---- restart ----

    def load(self) -> PersistedState:
        """What the last run persisted. Call once, before the first write."""
        latest = self._snapshots.latest()
        if latest is not None:
            self.snapshot = decode_snapshot(*latest)
        entries = [decode_entry(index, payload)
                   for index, payload in self._wal.replay(self.snapshot.index)]
        if entries and entries[0].index != self.snapshot.index + 1:
            raise CorruptLogError(self.directory / "log", 0, f"the log starts at {entries[0].index}, "
                                  f"after a snapshot at {self.snapshot.index}")
        term, vote = self._read_hard_state()
        last = entries[-1].index if entries else self.snapshot.index
        commit = min(max(self._read_commit(), self.snapshot.index), last)
        self._hard = HardState(term, vote, commit)
        return PersistedState(self._hard, self.snapshot, entries)

    def _read_hard_state(self) -> tuple[int, int]:
        try:
            data = (self.directory / "hardstate").read_bytes()
        except FileNotFoundError:
            return 0, 0
        if len(data) != _HARD.size or zlib.crc32(data[:16]) != _HARD.unpack(data)[2]:
            # written atomically: damage here is not a crash's doing
            raise CorruptLogError(self.directory / "hardstate", 0, "CRC mismatch")
        term, vote, _ = _HARD.unpack(data)
        return term, vote

    def _read_commit(self) -> int:
        try:
            data = (self.directory / "commit").read_bytes()
            commit, crc = _COMMIT.unpack(data)
        except (FileNotFoundError, struct.error):
            return 0
        return commit if zlib.crc32(data[:8]) == crc else 0

    # ---- the Ready's step 1 ----

    def write(self, snapshot: Snapshot | None, entries: list[Entry], hard: HardState | None) -> None:
        """Hand the Ready's state to the OS; `sync()` makes it durable."""
        if snapshot is not None:
            self._install(snapshot)
        if entries:
            first = entries[0].index
            if first <= self._wal.last_zxid:
                self._wal.truncate_from(first)
            self._wal.append_many([(e.index, encode_entry(e)) for e in entries])
        if hard is not None:
            if (hard.term, hard.vote) != (self._hard.term, self._hard.vote):
                self._write_hard_state(hard)
            if hard.commit != self._hard.commit:
                self._write_commit(hard.commit)
            self._hard = hard

    def sync(self) -> None:
        self._wal.sync()

    def _install(self, snapshot: Snapshot) -> None:
        """A snapshot from the leader replaces the whole log."""
        self._snapshots.save(snapshot.index, encode_snapshot(snapshot))
        self._wal.truncate_from(1)
        self.snapshot = snapshot

    def _write_hard_state(self, hard: HardState) -> None:
        body = struct.pack(">QQ", hard.term, hard.vote)
        # always fsync'd, whatever --fsync says: a vote forgotten in a power loss lets this node
        # vote twice in one term, and a term forgotten lets it take an old leader for the current
        write_atomically(self.directory / "hardstate", body + struct.pack(">I", zlib.crc32(body)))

    def _write_commit(self, commit: int) -> None:
        if self._commit_fd is None:
            self._commit_fd = os.open(self.directory / "commit", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        body = struct.pack(">Q", commit)
        os.pwrite(self._commit_fd, body + struct.pack(">I", zlib.crc32(body)), 0)

    # ---- compaction ----

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot this node took (durably), then drop log segments older than the
        oldest snapshot kept. Runs in a thread; the caller then calls RaftNode.compact()."""
        self._snapshots.save(snapshot.index, encode_snapshot(snapshot))
        self.snapshot = snapshot
        oldest = self._snapshots.oldest_zxid()
        if oldest is not None:
            self._wal.purge_before(oldest)

    def close(self) -> None:
        self._wal.close()
        if self._commit_fd is not None:
            os.close(self._commit_fd)
            self._commit_fd = None
