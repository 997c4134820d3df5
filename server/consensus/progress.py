"""Progress: the leader's view of one follower's (or learner's) log, and its flow control.

The leader keeps one per member. PROBE sends one append at a time until the follower's answer
says where its log matches; REPLICATE streams entries optimistically, up to a window of entries
and of appends in flight; SNAPSHOT sends nothing while a snapshot is on its way (etcd's
tracker.Progress, with its StateProbe, StateReplicate and StateSnapshot).
"""
from __future__ import annotations

import collections
import enum


class PState(enum.IntEnum):
    PROBE = 0       # one append in flight until the follower answers
    REPLICATE = 1   # stream entries optimistically, up to max_inflight
    SNAPSHOT = 2    # a snapshot is on its way; send nothing else


class Progress:
    """The leader's view of one follower's log."""

    __slots__ = ("match", "next", "state", "probe_sent", "recent_active", "pending_snapshot",
                 "snapshot_wait", "commit_sent", "inflight")

    def __init__(self, next_index: int):
        self.inflight: collections.deque[int] = collections.deque()  # last index of each append
        self.match = 0
        self.next = next_index
        self.state = PState.PROBE
        self.probe_sent = False
        self.recent_active = False
        self.pending_snapshot = 0
        self.snapshot_wait = 0
        self.commit_sent = 0        # the highest commit index sent to it

    def become_probe(self) -> None:
        if self.state == PState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state, self.probe_sent, self.pending_snapshot = PState.PROBE, False, 0
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state, self.next, self.probe_sent = PState.REPLICATE, self.match + 1, False
        self.inflight.clear()

    def become_snapshot(self, index: int) -> None:
        self.state, self.pending_snapshot, self.snapshot_wait = PState.SNAPSHOT, index, 0
        self.inflight.clear()

    def is_paused(self, max_inflight: int, max_msgs: int) -> bool:
        if self.state == PState.PROBE:
            return self.probe_sent
        if self.state == PState.REPLICATE:
            return self.next - 1 - self.match >= max_inflight or len(self.inflight) >= max_msgs
        return True

    def maybe_update(self, index: int) -> bool:
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        if self.state == PState.REPLICATE:
            if rejected <= self.match:
                return False  # stale rejection
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False      # answers an older probe
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True
