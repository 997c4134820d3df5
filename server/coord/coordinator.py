"""The Coordinator: the single-threaded owner of one node's tree, session table and watches.

Every write becomes a Txn: validated (`prep`), given the next zxid and the current time, handed
to `log` (the write-ahead log, later the consensus log) and only then applied. Applying is
deterministic — names, owners, passwords and times are all in the Txn — so replaying the log,
or a snapshot plus the log after it, rebuilds the same state byte for byte. Watch events go out
through `deliver` while a Txn is applied, before the response of the request that caused it.

    >>> log = []
    >>> c = Coordinator(limits=Limits(), log=log.append, deliver=lambda s, e: None,
    ...                 now_ms=lambda: 1_000)
    >>> sid, password, timeout = c.open_session(30_000)
    >>> r = c.handle(sid, pb.Request(xid=1, create=pb.CreateRequest(path="/a", data=b"x")))
    >>> r.create.path, r.create.stat.czxid, r.zxid, len(log)
    ('/a', 2, 2, 2)
"""
from __future__ import annotations

import secrets
from typing import Callable, Iterable

from dcli.v1 import coord_pb2 as pb, coordlog_pb2 as logpb
from dcli.wire.errors import (BadArgumentsError, DcliError, NoNodeError, NoWatcherError,
                              SessionExpiredError, UnimplementedError)
from dcli.wire.paths import validate_path

from dcli_server.coord.limits import Limits
from dcli_server.coord.prep import PendingView, op_path, prepare
from dcli_server.coord.sessions import KeptResult, SessionTable, fill_result, initial_session_id
from dcli_server.coord.tree import Change, DataTree, InconsistentTxnError, Node
from dcli_server.coord import acl
from dcli_server.coord.acl import Ids
from dcli_server.coord.watches import WatchKind, WatchManager

_PASSWORD_BYTES = 16


class Coordinator:
    """Single-threaded owner of the tree, the session table and the watches of one node."""

    def __init__(self, *, limits: Limits, log: Callable[[logpb.Txn], None],
                 deliver: Callable[[int, pb.WatchEvent], None], now_ms: Callable[[], int],
                 node_id: int = 1, next_zxid: Callable[[], int] | None = None):
        self._limits = limits
        self._log = log
        self._deliver = deliver
        self._now = now_ms
        self._tree = DataTree()
        self._sessions = SessionTable()
        self._watches = WatchManager(limits.max_watches_per_session)
        self._last_zxid = 0
        # the zxid of the next Txn; a replicated node makes it the index of its next log entry
        self._next_zxid = next_zxid or (lambda: self._last_zxid + 1)
        # Only the node that decides expiry (the leader) keeps session deadlines; elsewhere a
        # session lives until its CloseSessionTxn is applied.
        self.judges_expiry = True
        self._next_session_id = initial_session_id(now_ms(), node_id)
        self._handlers: dict[str, Callable[[int, pb.Request, pb.Response], None]] = {
            "create": self._write_one, "delete": self._write_one, "set_data": self._write_one,
            "check": self._check_alone, "multi": self._multi,
            "get_data": self._get_data, "exists": self._exists,
            "get_children": self._get_children, "sync": self._sync,
            "get_ephemerals": self._get_ephemerals,
            "get_all_children_number": self._get_all_children_number,
            "add_watch": self._add_watch, "remove_watches": self._remove_watches,
            "ping": self._ping, "close_session": self._close_session,
            "get_acl": self._get_acl, "set_acl": self._write_one, "who_am_i": self._who_am_i,
        }
        self._ids: Ids = ()         # the caller of the request being handled (its ACL ids)

    @property
    def last_zxid(self) -> int:
        return self._last_zxid

    @property
    def sessions(self) -> SessionTable:
        """Read-only access for the server's status pages; never mutate it."""
        return self._sessions

    @property
    def watches(self) -> WatchManager:
        """Read-only access for the four-letter words; never mutate it."""
        return self._watches

    @property
    def tree(self) -> DataTree:
        """Read-only access for the server's status pages and tests; never mutate it."""
        return self._tree

    # ---- recovery and snapshots ----

    def recover(self, snapshot: bytes | None, txns: Iterable[bytes]) -> None:
        """Rebuild from a serialized Snapshot (or None) and the serialized Txns after it (those
        with zxid <= the snapshot's are skipped). Does not call log(). Every restored session
        then gets a fresh deadline (now + its timeout) to come back."""
        if snapshot is not None:
            snap = logpb.Snapshot.FromString(snapshot)
            self._tree = DataTree.from_snapshot_nodes(snap.nodes)
            self._sessions = SessionTable.from_snapshot_sessions(snap.sessions, self._now())
            self._last_zxid = snap.zxid
        else:
            self._tree, self._sessions, self._last_zxid = DataTree(), SessionTable(), 0
        self._watches = WatchManager(self._limits.max_watches_per_session)
        for raw in txns:
            txn = raw if isinstance(raw, logpb.Txn) else logpb.Txn.FromString(raw)
            if txn.zxid > self._last_zxid:
                self._apply(txn)
        self._sessions.reset_deadlines(self._now())

    def snapshot(self) -> bytes:
        snap = logpb.Snapshot(zxid=self._last_zxid, nodes=self._tree.snapshot_nodes(),
                              sessions=self._sessions.snapshot_sessions())
        return snap.SerializeToString(deterministic=True)

    # ---- the state machine ----

    def _commit(self, session_id: int, body: logpb.Txn, seq: int = 0) -> list[pb.Stat | None]:
        """Stamp `body` with the next zxid and the time, log it, then apply it."""
        body.zxid = self._next_zxid()
        body.time_ms = self._now()
        body.session_id = session_id
        body.seq = seq
        self._log(body)
        return self._apply(body)

    def apply_committed(self, txn: logpb.Txn) -> None:
        """Apply a Txn another node executed (a follower applying the replicated log)."""
        self._apply(txn)

    def judge_expiry(self, judges: bool) -> None:
        """Start (a new leader: every session gets its full timeout from now) or stop deciding
        session expiry."""
        if judges and not self.judges_expiry:
            self._sessions.reset_deadlines(self._now())
        self.judges_expiry = judges

    def _live(self, session_id: int, now_ms: int) -> bool:
        if self.judges_expiry:
            return self._sessions.live(session_id, now_ms) is not None
        return session_id in self._sessions

    def _apply(self, txn: logpb.Txn) -> list[pb.Stat | None]:
        """Apply one Txn; returns, per node op, the stat its client sees. The state changes
        completely before any watch event is delivered, so a failing deliver cannot leave a
        half-applied Txn."""
        if txn.zxid <= self._last_zxid:
            raise InconsistentTxnError(f"zxid {txn.zxid:#x} after {self._last_zxid:#x}")
        kind = txn.WhichOneof("op")
        changes: list[Change] = []
        stats: list[pb.Stat | None] = []
        if kind == "create_session":
            op = txn.create_session
            self._sessions.add(op.session_id, op.timeout_ms, op.password, self._now())
        elif kind == "close_session":
            session_id = txn.close_session.session_id
            # The closing session's own watches go first: it hears nothing of its own close.
            self._watches.drop_session(session_id)
            changes = self._tree.kill_session(session_id, txn.zxid)
            self._sessions.remove(session_id)
        elif kind == "multi":
            for op in txn.multi.ops:
                stats.append(self._tree.apply_op(op, txn.zxid, txn.time_ms, changes))
        else:
            stats.append(self._tree.apply_op(txn, txn.zxid, txn.time_ms, changes))
        self._last_zxid = txn.zxid
        if txn.seq:         # a tracked write: keep its result for a retry (replay rebuilds it)
            self._sessions.remember(txn.session_id, txn.seq, _kept(txn, kind, stats))
        for session_id, event in self._watches.events(changes, txn.zxid):
            self._deliver(session_id, event)
        return stats

    # ---- sessions ----

    def open_session(self, requested_timeout_ms: int) -> tuple[int, bytes, int]:
        """A new session: (id, 16-byte password, negotiated timeout). Consumes a zxid."""
        timeout = self._limits.negotiate_timeout(requested_timeout_ms)
        session_id = self._next_session_id
        while session_id == 0 or session_id in self._sessions:
            session_id += 1
        self._next_session_id = session_id + 1
        password = secrets.token_bytes(_PASSWORD_BYTES)
        self._commit(session_id, logpb.Txn(create_session=logpb.CreateSessionTxn(
            session_id=session_id, timeout_ms=timeout, password=password)))
        return session_id, password, timeout

    def resume_session(self, session_id: int, password: bytes, requested_timeout_ms: int) -> int:
        """Reattach a live session; returns the timeout negotiated for this connection."""
        now = self._now()
        if (not self._live(session_id, now)
                or not self._sessions.password_matches(session_id, password)):
            raise SessionExpiredError()
        timeout = self._limits.negotiate_timeout(requested_timeout_ms)
        # Like ZooKeeper, the new connection's timeout rules its heartbeats; the logged timeout
        # (used after a restart) stays the one the session was created with.
        self._sessions.touch(session_id, now, live_timeout_ms=timeout)
        return timeout

    def touch(self, session_id: int) -> None:
        """A heartbeat or any request: deadline = now + timeout. An unknown or already expired
        session is left alone (handle() reports it as expired)."""
        now = self._now()
        if self._live(session_id, now):
            self._sessions.touch(session_id, now)

    def detach(self, session_id: int) -> None:
        """The session's stream ended: its watches go; the session lives until its deadline."""
        self._watches.drop_session(session_id)

    def expire_sessions(self) -> list[int]:
        """Close every session whose deadline has passed (one CloseSessionTxn each)."""
        if not self.judges_expiry:
            return []
        expired = self._sessions.due(self._now())
        for session_id in expired:
            self._close(session_id)
        return expired

    def _close(self, session_id: int) -> None:
        self._commit(session_id, logpb.Txn(
            close_session=logpb.CloseSessionTxn(session_id=session_id)))

    def _require_live(self, session_id: int) -> None:
        now = self._now()
        if not self._live(session_id, now):
            raise SessionExpiredError()
        self._sessions.touch(session_id, now)

    def set_watches(self, session_id: int, last_zxid: int, data: list[str], exist: list[str],
                    child: list[str], persistent: list[str],
                    persistent_recursive: list[str]) -> None:
        """ZooKeeper's SetWatches: fire what the client missed since `last_zxid`, re-register
        the rest. Catch-up events carry the server's current zxid."""
        self._require_live(session_id)
        fired: list[tuple[int, str]] = []
        for path in data:
            node = self._tree.get(path)
            if node is None:
                fired.append((pb.NODE_DELETED, path))
            elif node.mzxid > last_zxid:
                fired.append((pb.NODE_DATA_CHANGED, path))
            else:
                self._watches.add(WatchKind.DATA, session_id, path)
        for path in exist:
            if path in self._tree:
                fired.append((pb.NODE_CREATED, path))
            else:
                self._watches.add(WatchKind.DATA, session_id, path)
        for path in child:
            node = self._tree.get(path)
            if node is None:
                fired.append((pb.NODE_DELETED, path))
            elif node.pzxid > last_zxid:
                fired.append((pb.NODE_CHILDREN_CHANGED, path))
            else:
                self._watches.add(WatchKind.CHILD, session_id, path)
        for path in persistent:
            self._watches.add(WatchKind.PERSISTENT, session_id, path)
        for path in persistent_recursive:
            self._watches.add(WatchKind.RECURSIVE, session_id, path)
        for event_type, path in fired:
            self._deliver(session_id, pb.WatchEvent(type=event_type, path=path,
                                                    zxid=self._last_zxid))

    # ---- containers and TTLs ----

    def sweep(self) -> list[str]:
        """ZooKeeper's ContainerManager pass: delete (one DeleteTxn each, session 0) every
        container that has had children and has none now, and every childless TTL node not
        modified for its ttl. Returns the deleted paths. A container emptied by this pass is
        collected by the next one, as in ZooKeeper."""
        now = self._now()
        doomed = []
        for path in self._tree.containers():
            node = self._tree.get(path)
            if node is not None and not node.children and node.cversion > 0:
                doomed.append(path)
        for path in self._tree.ttl_nodes():
            node = self._tree.get(path)
            if node is not None and not node.children and node.mtime + node.ttl_ms <= now:
                doomed.append(path)
        doomed.sort()
        for path in doomed:
            self._commit(0, logpb.Txn(delete=logpb.DeleteTxn(path=path)))
        return doomed

    # ---- requests ----

    def handle(self, session_id: int, request: pb.Request, ids: Ids = ()) -> pb.Response:
        """Execute one request of the session, for a caller holding `ids` (its connection's
        address, the digests it proved: what the znodes' ACLs are checked against). Never
        raises a DcliError: it becomes `error`."""
        response = pb.Response(xid=request.xid)
        self._ids = ids
        try:
            self._require_live(session_id)
            if request.acked_seq:
                self._sessions.forget_acked(session_id, request.acked_seq)
            if request.retry and request.seq:
                done = self._sessions.applied(session_id, request.seq)
                if done is not None:        # applied before; its answer was lost on the way
                    response.CopyFrom(done)
                    response.xid = request.xid
                    return response
            kind = request.WhichOneof("op")
            handler = self._handlers.get(kind) if kind else None
            if handler is None:
                raise UnimplementedError(op_path(request))
            self._check_path_sizes(request)
            handler(session_id, request, response)
        except DcliError as err:
            response.error.CopyFrom(err.to_proto())
        response.zxid = self._last_zxid
        return response

    def _check_path_sizes(self, request: pb.Request) -> None:
        """Paths longer than --max-path-bytes are refused before anything looks them up."""
        limit = self._limits.max_path_bytes
        ops = request.multi.ops if request.WhichOneof("op") == "multi" else (request,)
        for op in ops:
            path = op_path(op)
            if len(path) * 4 > limit and len(path.encode()) > limit:
                raise BadArgumentsError(path[:64] + "...", f"path of {len(path.encode())} bytes exceeds the "
                                                           f"limit of {limit} bytes (--max-path-bytes)")

    def _write_one(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        body = prepare(PendingView(self._tree), self._limits, session_id, request, self._ids)
        stat = self._commit(session_id, body, request.seq)[0]
        _fill(response, body, stat)

    def _check_alone(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        raise BadArgumentsError(request.check.path)

    def _multi(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        ops = request.multi.ops
        view = PendingView(self._tree)
        bodies: list[logpb.Txn] = []
        for index, op in enumerate(ops):
            try:
                bodies.append(prepare(view, self._limits, session_id, op, self._ids))
            except DcliError as err:
                # All or nothing, as ZooKeeper reports it: OK for the ops before the failing
                # one, its own error, RUNTIME_INCONSISTENCY for the ops after it.
                results = response.multi.results
                for before in ops[:index]:
                    results.add().error.CopyFrom(pb.Error(code=pb.OK, path=op_path(before)))
                results.add().error.CopyFrom(err.to_proto())
                for after in ops[index + 1:]:
                    results.add().error.CopyFrom(pb.Error(
                        code=pb.RUNTIME_INCONSISTENCY, path=op_path(after),
                        message=f"KeeperErrorCode = RuntimeInconsistency for {op_path(after)}"))
                raise
        response.multi.SetInParent()
        if not bodies:
            return      # an empty multi changes nothing and is not logged
        stats = self._commit(session_id, logpb.Txn(multi=logpb.MultiTxn(ops=bodies)), request.seq)
        for body, stat in zip(bodies, stats):
            _fill(response.multi.results.add(), body, stat)

    def _node(self, path: str) -> Node:
        node = self._tree.get(validate_path(path))
        if node is None:
            raise NoNodeError(path)
        return node

    def _get_data(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        req = request.get_data
        node = self._node(req.path)         # a missing node registers no watch
        acl.check(node.acl, acl.READ, self._ids, req.path)
        if req.watch:
            self._watches.add(WatchKind.DATA, session_id, req.path)
        if node.data is not None:
            response.get_data.data = node.data
        response.get_data.stat.CopyFrom(node.stat())

    def _exists(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        req = request.exists
        node = self._tree.get(validate_path(req.path))
        if node is not None:                # ZooKeeper 3.8: READ on a node that exists
            acl.check(node.acl, acl.READ, self._ids, req.path)
        if req.watch:                       # also when missing: it waits for NodeCreated
            self._watches.add(WatchKind.DATA, session_id, req.path)
        if node is not None:
            response.stat.CopyFrom(node.stat())

    def _get_children(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        req = request.get_children
        node = self._node(req.path)
        acl.check(node.acl, acl.READ, self._ids, req.path)
        if req.watch:
            self._watches.add(WatchKind.CHILD, session_id, req.path)
        response.get_children.children.extend(sorted(node.children))
        response.get_children.stat.CopyFrom(node.stat())

    def _sync(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        # One node: nothing to catch up with. The consensus layer will make this wait.
        response.sync.path = validate_path(request.sync.path)

    def _get_ephemerals(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        prefix = request.get_ephemerals.prefix or "/"
        response.ephemerals.paths.extend(
            path for path in self._tree.ephemerals(session_id) if path.startswith(prefix))
        response.ephemerals.SetInParent()

    def _get_all_children_number(self, session_id: int, request: pb.Request,
                                 response: pb.Response) -> None:
        path = request.get_all_children_number.path
        acl.check(self._node(path).acl, acl.READ, self._ids, path)
        response.count = self._tree.count_descendants(path)

    def _who_am_i(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        response.who_am_i.ids.extend(pb.ClientId(scheme=s, user=u) for s, u in acl.client_info(self._ids))
        response.who_am_i.SetInParent()

    def _get_acl(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        """READ or ADMIN may read the list; without ADMIN a digest's hash is hidden (3.8)."""
        path = request.get_acl.path
        node = self._node(path)
        acl.check(node.acl, acl.READ | acl.ADMIN, self._ids, path)
        shown = node.acl if acl.allows(node.acl, acl.ADMIN, self._ids) else acl.redact(node.acl)
        response.acl.acl.extend(pb.Acl(perms=p, scheme=s, id=i) for p, s, i in shown)
        response.acl.stat.CopyFrom(node.stat())

    def _add_watch(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        req = request.add_watch
        path = validate_path(req.path)
        if req.mode == pb.PERSISTENT:
            kind = WatchKind.PERSISTENT
        elif req.mode == pb.PERSISTENT_RECURSIVE:
            kind = WatchKind.RECURSIVE
        else:
            raise BadArgumentsError(path, f"Unknown watch mode {req.mode} for {path}")
        self._watches.add(kind, session_id, path)
        response.empty.SetInParent()

    def _remove_watches(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        req = request.remove_watches
        path = validate_path(req.path)
        if req.type not in pb.WatcherType.values():
            raise BadArgumentsError(path, f"Unknown watcher type {req.type} for {path}")
        removed = self._watches.remove(session_id, path, req.type)
        if not removed:
            raise NoWatcherError(path)
        response.remove_watches.removed.extend(removed)

    def holds_watch(self, session_id: int, path: str, watcher_type: int) -> bool:
        """ZooKeeper's checkWatches: the session has such a watch of `path` (nothing changes)."""
        return self._watches.holds(session_id, path, watcher_type)

    def _ping(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        response.empty.SetInParent()

    def _close_session(self, session_id: int, request: pb.Request, response: pb.Response) -> None:
        self._close(session_id)
        response.empty.SetInParent()


def _kept(txn: logpb.Txn, kind: str, stats: list[pb.Stat | None]) -> KeptResult:
    """The answer a tracked write got, as kept for a retry."""
    if kind == "multi":
        response = pb.Response(zxid=txn.zxid)
        response.multi.SetInParent()
        for body, stat in zip(txn.multi.ops, stats):
            _fill(response.multi.results.add(), body, stat)
        return KeptResult.of(response)
    path = txn.create.path if kind == "create" else ""
    return KeptResult(txn.zxid, kind, path, stats[0] if stats else None)


def _fill(response: pb.Response, body: logpb.Txn, stat: pb.Stat | None) -> None:
    """What the single op `body` returns (also inside a multi)."""
    op = body.WhichOneof("op")
    fill_result(response, op, body.create.path if op == "create" else "", stat)
