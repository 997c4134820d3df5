"""RaftLog: one node's log in memory — a snapshot, the entries after it, and what is on disk yet.

Entries are one list after the snapshot offset, so the entry at index ``i`` is
``entries[i - snapshot.index - 1]`` and every lookup is O(1). ``stable`` is the last index the
caller has reported persisted; entries after it are "unstable" and go out in the next Ready.
A conflicting append truncates the list and pulls ``stable`` back, so the next Ready asks the
caller to overwrite from that index. ``pending_snapshot`` is a snapshot received from the leader
and not yet persisted.

    log = RaftLog(Snapshot(), [], committed=0, applied=0)
    log.append([Entry(term=1, index=1, data=b"x")])
    log.unstable_entries()        # [Entry(1, 1, ...)]; the caller persists them, then:
    log.stable_to(1, 1)
"""
from __future__ import annotations

from dcli_server.consensus.messages import Entry, Snapshot


class RaftLog:
    __slots__ = ("snapshot", "entries", "committed", "applied", "stable", "pending_snapshot")

    def __init__(self, snapshot: Snapshot, entries: list[Entry], committed: int, applied: int):
        if entries and entries[0].index != snapshot.index + 1:
            raise ValueError("entries must start right after the snapshot")
        self.snapshot = snapshot
        self.entries = list(entries)
        self.committed = committed
        self.applied = applied
        self.stable = self.last_index()
        self.pending_snapshot: Snapshot | None = None

    # --- reading -------------------------------------------------------------------------------

    def first_index(self) -> int:
        return self.snapshot.index + 1

    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    def term(self, index: int) -> int | None:
        """The term of the entry at `index`, or None when it is compacted or not there."""
        offset = self.snapshot.index
        if index == offset:
            return self.snapshot.term
        if index < offset or index > offset + len(self.entries):
            return None
        return self.entries[index - offset - 1].term

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a candidate whose log ends at (last_index, last_term) may get our vote."""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def slice(self, lo: int, hi: int) -> list[Entry] | None:
        """Entries lo..hi-1 (a copy of that range only), or None if lo is compacted."""
        offset = self.snapshot.index
        if lo <= offset:
            return None
        hi = min(hi, offset + len(self.entries) + 1)
        return self.entries[lo - offset - 1:hi - offset - 1]

    def unstable_entries(self) -> list[Entry]:
        return self.entries[self.stable - self.snapshot.index:]

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last index <= `index` whose term is <= `term`, with that term (0 if compacted).

        A follower rejecting an append answers with this, so the leader can skip a whole term of
        conflicting entries per round trip instead of one entry."""
        offset = self.snapshot.index
        index = min(index, self.last_index())
        while index > offset:
            t = self.entries[index - offset - 1].term
            if t <= term:
                return index, t
            index -= 1
        if index == offset and self.snapshot.term <= term:
            return index, self.snapshot.term
        return index, 0

    # --- writing -------------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Append, truncating any entries from the first new index on (never committed ones)."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.committed:
            raise AssertionError(f"truncating committed entry {first} (commit {self.committed})")
        offset = self.snapshot.index
        if first > offset + len(self.entries) + 1:
            raise AssertionError(f"gap: appending {first} after {self.last_index()}")
        if first <= offset + len(self.entries):
            del self.entries[first - offset - 1:]
            self.stable = min(self.stable, first - 1)
        self.entries.extend(entries)

    def maybe_append(self, index: int, log_term: int, committed: int,
                     entries: list[Entry]) -> int | None:
        """The consistency check of AppendEntries; returns the last new index, None on mismatch."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        conflict = self._find_conflict(entries)
        if conflict:
            self.append(entries[conflict - index - 1:])
        self.commit_to(min(committed, last_new))
        return last_new

    def _find_conflict(self, entries: list[Entry]) -> int:
        """The index of the first entry that is new or differs in term; 0 if all are present."""
        for e in entries:
            if self.term(e.index) != e.term:
                return e.index
        return 0

    def commit_to(self, index: int) -> bool:
        if index > self.committed:
            if index > self.last_index():
                raise AssertionError(f"commit {index} beyond last index {self.last_index()}")
            self.committed = index
            return True
        return False

    def stable_to(self, index: int, term: int) -> None:
        """The caller persisted up to (index, term); ignored if the log changed there since."""
        if index > self.stable and self.term(index) == term:
            self.stable = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log with a snapshot from the leader (to be persisted)."""
        self.snapshot = snapshot
        self.entries = []
        self.committed = snapshot.index
        self.stable = snapshot.index
        self.pending_snapshot = snapshot

    def compact(self, snapshot: Snapshot) -> None:
        """Drop entries up to the snapshot the caller took and persisted (index <= applied)."""
        if snapshot.index <= self.snapshot.index:
            return
        if snapshot.index > self.applied:
            raise ValueError(f"snapshot {snapshot.index} is beyond applied {self.applied}")
        if self.term(snapshot.index) != snapshot.term:
            raise ValueError(f"snapshot term {snapshot.term} does not match the log")
        del self.entries[:snapshot.index - self.snapshot.index]
        self.snapshot = snapshot
