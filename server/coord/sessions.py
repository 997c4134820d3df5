"""The session table: who is allowed to send requests, and until when.

Two kinds of state live here. The replicated part — id, timeout and password, set by
CreateSessionTxn and removed by CloseSessionTxn, and the results of the session's tracked writes
(delivery semantics: rebuilt from the txns' `seq` on replay) — goes into snapshots. The local part — each session's deadline and the timeout its current connection
negotiated — is this node's business and is never logged: after recovery every session simply
gets a fresh deadline, as a restarted ZooKeeper does.

Expiry uses a heap of (deadline, id) with lazy invalidation: a touch pushes a new entry and the
old one is skipped when it surfaces, so `due()` costs O(expired · log n), not a scan.

    >>> table = SessionTable()
    >>> table.add(7, 10_000, b"pw", now_ms=0)
    >>> table.due(9_999), table.due(10_000)
    ([], [7])
"""
from __future__ import annotations

import heapq
import hmac
from dataclasses import dataclass, field
from typing import Iterable

from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coordlog_pb2 as logpb

_MASK64 = (1 << 64) - 1
MAX_APPLIED = 10_000        # results kept per session for retries; the oldest go first


def initial_session_id(now_ms: int, node_id: int) -> int:
    """ZooKeeper's SessionTrackerImpl.initializeNextSessionId, on Java's 64-bit longs:
    `((now << 24) >>> 8) | (node_id << 56)`. Ids of later sessions add 1 each; the time part
    keeps them unique across restarts, the top byte across nodes."""
    sid = (((now_ms << 24) & _MASK64) >> 8) | ((node_id & 0xFF) << 56)
    if sid >= 1 << 63:          # protobuf int64 is signed, as Java's long
        sid -= 1 << 64
    return sid


class KeptResult:
    """A tracked write's answer (xid 0), kept for a retry. Few writes are ever retried, so a
    single op keeps only what its answer needs (the op, the created path, the stat as it was
    then) and the Response is built when first asked for."""

    __slots__ = ("zxid", "op", "path", "stat", "_response")

    def __init__(self, zxid: int, op: str = "", path: str = "", stat: pb.Stat | None = None,
                 response: pb.Response | None = None):
        self.zxid = zxid
        self.op = op
        self.path = path
        self.stat = stat
        self._response = response

    @classmethod
    def of(cls, response: pb.Response) -> KeptResult:
        return cls(response.zxid, response=response)

    def response(self) -> pb.Response:
        if self._response is None:
            self._response = pb.Response(zxid=self.zxid)
            fill_result(self._response, self.op, self.path, self.stat)
        return self._response


def fill_result(response: pb.Response, op: str, path: str, stat: pb.Stat | None) -> None:
    """What a single create/delete/set_data/check returns (also inside a multi)."""
    if op == "create":
        response.create.path = path
        response.create.stat.CopyFrom(stat)
    elif op in ("set_data", "set_acl"):
        response.stat.CopyFrom(stat)
    else:
        response.empty.SetInParent()


@dataclass
class Session:
    session_id: int
    timeout_ms: int             # negotiated at creation; replicated
    password: bytes             # replicated
    deadline_ms: int            # local: expires when now >= deadline
    live_timeout_ms: int        # local: the timeout the current connection negotiated
    # seq -> the result of that applied write, in seq order (delivery semantics)
    applied: dict[int, KeptResult] = field(default_factory=dict)


class SessionTable:
    def __init__(self) -> None:
        self._sessions: dict[int, Session] = {}
        self._heap: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._sessions

    def get(self, session_id: int) -> Session | None:
        return self._sessions.get(session_id)

    def ids(self) -> list[int]:
        return sorted(self._sessions)

    def live(self, session_id: int, now_ms: int) -> Session | None:
        """The session if it exists and its deadline has not passed."""
        session = self._sessions.get(session_id)
        if session is None or now_ms >= session.deadline_ms:
            return None
        return session

    def password_matches(self, session_id: int, password: bytes) -> bool:
        session = self._sessions.get(session_id)
        return session is not None and hmac.compare_digest(session.password, password)

    # ---- replicated changes (from applied txns) ----

    def add(self, session_id: int, timeout_ms: int, password: bytes, now_ms: int) -> None:
        self._sessions[session_id] = Session(session_id, timeout_ms, password,
                                             now_ms + timeout_ms, timeout_ms)
        self._push(session_id, now_ms + timeout_ms)

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    # ---- results of tracked writes (delivery semantics) ----

    def remember(self, session_id: int, seq: int, result: KeptResult) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            return
        session.applied[seq] = result
        while len(session.applied) > MAX_APPLIED:
            del session.applied[next(iter(session.applied))]

    def applied(self, session_id: int, seq: int) -> pb.Response | None:
        session = self._sessions.get(session_id)
        kept = session.applied.get(seq) if session is not None else None
        return kept.response() if kept is not None else None

    def forget_acked(self, session_id: int, acked_seq: int) -> None:
        """The client has every answer up to `acked_seq`: it will not ask again."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        applied = session.applied
        while applied and next(iter(applied)) <= acked_seq:
            del applied[next(iter(applied))]

    # ---- local deadlines ----

    def touch(self, session_id: int, now_ms: int, live_timeout_ms: int | None = None) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            return
        if live_timeout_ms is not None:
            session.live_timeout_ms = live_timeout_ms
        session.deadline_ms = now_ms + session.live_timeout_ms
        self._push(session_id, session.deadline_ms)

    def reset_deadlines(self, now_ms: int) -> None:
        """After recovery: every session gets its full (replicated) timeout to come back."""
        for session in self._sessions.values():
            session.live_timeout_ms = session.timeout_ms
            session.deadline_ms = now_ms + session.timeout_ms
        self._rebuild_heap()

    def due(self, now_ms: int) -> list[int]:
        """Ids of the sessions whose deadline is at or before `now_ms`, earliest first.
        They stay in the table until their CloseSessionTxn is applied."""
        due: dict[int, None] = {}
        while self._heap and self._heap[0][0] <= now_ms:
            deadline, session_id = heapq.heappop(self._heap)
            session = self._sessions.get(session_id)
            if session is not None and session.deadline_ms == deadline:
                due[session_id] = None      # a touch at the same instant pushes a duplicate
        return list(due)

    def _push(self, session_id: int, deadline_ms: int) -> None:
        heapq.heappush(self._heap, (deadline_ms, session_id))
        if len(self._heap) > 2 * len(self._sessions) + 64:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        self._heap = [(s.deadline_ms, s.session_id) for s in self._sessions.values()]
        heapq.heapify(self._heap)

    # ---- snapshots ----

    def snapshot_sessions(self) -> list[logpb.SnapshotSession]:
        return [logpb.SnapshotSession(
                    session_id=s.session_id, timeout_ms=s.timeout_ms, password=s.password,
                    applied=[logpb.AppliedWrite(seq=seq,
                                                response=r.response().SerializeToString(deterministic=True))
                             for seq, r in s.applied.items()])
                for s in sorted(self._sessions.values(), key=lambda s: s.session_id)]

    @classmethod
    def from_snapshot_sessions(cls, sessions: Iterable[logpb.SnapshotSession],
                               now_ms: int) -> SessionTable:
        table = cls()
        for s in sessions:
            table.add(s.session_id, s.timeout_ms, s.password, now_ms)
            for a in s.applied:
                table.remember(s.session_id, a.seq, KeptResult.of(pb.Response.FromString(a.response)))
        return table
