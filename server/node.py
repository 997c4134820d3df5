"""One node's coordination service: the tree, replicated by Raft, and the sessions' streams.

Every node, alone or in a cluster, runs the same path. The leader executes a write at once
against its in-memory tree (so its next request sees it), proposes the resulting Txn to Raft as
the log entry whose index is the Txn's zxid, and holds the answer in the session's outbox until
the entry is committed — durable on a majority — and applied. Followers apply committed entries
in order, serve reads from their own tree, and forward writes, `sync` and session opens to the
leader (cluster/forward.py). Nobody is ever shown a change that a crash could take back: every
outbox, reads and watch events included, is gated by the applied index.

A leader that loses its leadership may have executed writes that will never commit: it drops
every client stream (the clients reconnect, as ZooKeeper's do) and rebuilds its tree from what
was committed.

    node = CoordNode(NodeConfig(data_dir=Path("/tmp/n1")))
    await node.start()
    conn, connected, gate = await node.connect(pb.Connect(timeout_ms=10000))
    node.submit(conn, requests)        # answers appear in conn.outbox, released by take_ready()
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dcli.v1 import cluster_pb2 as cpb
from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coordlog_pb2 as logpb
from dcli.v1 import peer_pb2 as ppb
from dcli.wire.errors import (AuthenticationFailedError, ConnectionLossError, DcliError, MarshallingError,
                              SessionExpiredError, SystemError_, TooFarBehindError)
from dcli_server.cluster.forward import ForwardChannel, ForwardLink, ForwardServer, PeerChannel
from dcli_server.cluster.transport import RaftTransport
from dcli_server.cluster.replica import Replica, ReplicaConfig
from dcli_server.consensus import (NONE, ConfChange, Entry, EntryType, ProposalDropped,
                                   Role, Snapshot, SoftState)
from dcli_server.coord import Coordinator, Limits, acl
from dcli_server.storage import DataDirLock, FsyncMode

log = logging.getLogger("dcli.server")

TICK_S = 0.1                   # how often session deadlines are checked and liveness forwarded
LEADERLESS_S = 2.0             # without a leader this long, a node stops serving its clients
FRAME_BUDGET = 4 * 1024 * 1024 # bytes of items per server frame (one larger item still goes alone)
_WRITES = frozenset({"create", "delete", "set_data", "multi", "close_session", "sync"})
_TREE_WRITES = frozenset({"create", "delete", "set_data", "multi"})   # what the fault hook drops
_ROLES = {Role.LEADER: "leader", Role.FOLLOWER: "follower", Role.CANDIDATE: "candidate",
          Role.PRE_CANDIDATE: "pre-candidate"}


@dataclass
class NodeConfig:
    data_dir: Path
    fsync: FsyncMode = FsyncMode.ALWAYS
    limits: Limits = field(default_factory=Limits)
    snapshot_every: int = 50_000          # entries between snapshots: bounds restart time
    name: str = "127.0.0.1:7181"
    node_id: int = 1
    peers: dict[int, str] = field(default_factory=dict)   # every node's client address; {} = this one alone
    peer_addresses: dict[int, str] = field(default_factory=dict)   # where the nodes reach each other
    raft_tick_s: float = 0.05
    election_tick: int = 10
    join: bool = False                    # added to a running cluster: wait for its leader
    # fault injection for the delivery-semantics tests: this many successful writes are applied
    # and logged, but their reply is dropped and the stream is cut (env DCLI_FAULT_DROP_WRITE_REPLIES)
    fault_drop_write_replies: int = field(
        default_factory=lambda: int(os.environ.get("DCLI_FAULT_DROP_WRITE_REPLIES", "0") or 0))
    # ... counting only writes under this path prefix (env DCLI_FAULT_DROP_UNDER; "" = all): the
    # node's own broker writes to the tree too, and those are not what the tests want to lose
    fault_drop_under: str = field(default_factory=lambda: os.environ.get("DCLI_FAULT_DROP_UNDER", ""))


class Conn:
    """One stream: a client's session, or a follower's forward stream on the leader (session 0).

    `pending` holds requests not executed yet, in the order they came; `inflight` counts writes
    forwarded to the leader and not answered; a read waits behind them, and until the node has
    applied `wait_zxid` (the last forwarded answer), so a session always sees its own writes."""

    __slots__ = ("session_id", "outbox", "wake", "closed", "close_after_flush", "pending",
                 "inflight", "wait_zxid", "closing", "room", "auth_ids")

    def __init__(self, session_id: int):
        self.session_id = session_id
        self.outbox: collections.deque[tuple[int, object]] = collections.deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.close_after_flush = False
        self.pending: collections.deque = collections.deque()
        self.inflight = 0
        self.wait_zxid = 0
        self.closing = False          # the client asked to close its session
        self.room = asyncio.Event()   # set when fewer requests are outstanding than the limit
        # who the stream's client is, for the znodes' ACLs: (scheme, id) pairs, its address
        # ("ip") and what it proved ("digest", "super"); the listener keeps it up to date
        self.auth_ids: list[tuple[str, str]] = []

    @property
    def outstanding(self) -> int:
        """Requests read and not yet taken by the stream: queued, forwarded, or answered and
        waiting for the log (ZooKeeper counts them against globalOutstandingLimit)."""
        return len(self.pending) + self.inflight + len(self.outbox)


MAX_FORWARDED_IDS = 64      # a connection's ids, as a follower forwards them with a write


class InTurn:
    """A request a listener answers itself (one it refused, e.g. NoAuth, or one it serves from
    what it holds): it takes its place in the session's queue and is answered, with its error
    or an empty result, in its turn, behind the session's earlier requests."""

    __slots__ = ("xid", "error")

    def __init__(self, xid: int, error: DcliError | None = None):
        self.xid = xid
        self.error = error

    def WhichOneof(self, _field: str) -> str:
        return "in_turn"


def session_frame(conn: Conn, ready: list) -> pb.ServerFrame:
    """The items take_ready() gave, as one frame of a session stream; an Error among them ends
    the stream (conn.closed) after the items before it."""
    frame = pb.ServerFrame()
    for item in ready:
        if isinstance(item, pb.ServerItem):
            frame.items.append(item)
        elif isinstance(item, pb.Connected):
            frame.connected.CopyFrom(item)
        else:                      # an Error that ends the stream
            frame.error.CopyFrom(item)
            conn.closed = True
            break
    return frame


class CoordNode:
    def __init__(self, config: NodeConfig, *, transport: RaftTransport | None = None,
                 channel: PeerChannel | None = None):
        """`transport` carries Raft's messages and `channel` forwarded requests to the other
        nodes (the peer listener's); a node alone has neither."""
        self.config = config
        self.super_digest: str | None = None     # ZooKeeper's superDigest (--zk-super-digest)
        self._lock = DataDirLock(config.data_dir)
        self.replica = Replica(
            ReplicaConfig(node_id=config.node_id, peers=dict(config.peers) or {config.node_id: config.name},
                          peer_addresses=dict(config.peer_addresses),
                          directory=config.data_dir / "raft", fsync=config.fsync,
                          tick_s=config.raft_tick_s, election_tick=config.election_tick, join=config.join),
            apply=self._on_committed, on_state=self._on_state, transport=transport)
        # follower: the link to the leader; leader: the followers' links
        self.forward_channel = ForwardChannel(channel, config.node_id) if channel is not None else None
        self.forwarding = ForwardServer(self, channel) if channel is not None else None
        self.peers = self.replica.peers          # every member's address, kept up to date by Raft
        self.coordinator = self._new_coordinator()
        self._conns: dict[int, Conn] = {}
        self._forwarders: set[Conn] = set()          # leader: the followers' forward streams
        self._visible = 0                             # applied index: what replies may reflect
        self._writable_from = 0                       # leader: writes once this index is applied
        self._role = Role.FOLLOWER
        self._link: ForwardLink | None = None         # follower: the stream to the leader
        self._forwarded: dict[int, tuple[Conn | None, asyncio.Future | None]] = {}
        self._next_forward_id = 1
        self._alive: set[int] = set()
        self._leaderless_since: float | None = None   # monotonic time the leader was lost
        self._changed = asyncio.Event()
        self._since_snapshot = 0
        self._snapshotting = False
        self._tasks: list[asyncio.Task] = []
        self._replies_to_drop = config.fault_drop_write_replies
        self.controller_id = lambda: 0     # () -> the broker controller this node sees (0: none); set by main

    def _new_coordinator(self) -> Coordinator:
        c = Coordinator(limits=self.config.limits, log=self._propose, deliver=self._deliver,
                        now_ms=lambda: int(time.time() * 1000), node_id=self.config.node_id,
                        next_zxid=lambda: self.replica.last_index + 1)
        c.judges_expiry = False
        return c

    # ---- life cycle ----

    async def start(self) -> None:
        self._lock.acquire()
        self._changed = asyncio.Event()
        snapshot, entries = self.replica.load()
        self._rebuild(snapshot, entries)
        self._visible = self.replica.applied
        await self.replica.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._ticker()), *self.replica.tasks]
        for t in self._tasks:
            t.add_done_callback(self._fail_stop)

    def _rebuild(self, snapshot: Snapshot, entries: list[Entry]) -> None:
        self.coordinator = self._new_coordinator()
        self.coordinator.recover(snapshot.data or None, _txns(entries))

    @staticmethod
    def _fail_stop(task: asyncio.Task) -> None:
        """A loop died (an fsync failed, say): stop rather than serve on. Retrying a failed
        fsync can report success for lost data. A restart replays the log."""
        if task.cancelled() or task.exception() is None:
            return
        log.critical("the server cannot go on: %r; stopping", task.exception(),
                     exc_info=task.exception())
        os._exit(70)

    async def stop(self) -> None:
        if self.forwarding is not None:
            self.forwarding.close()
        for conn in list(self._conns.values()) + list(self._forwarders):
            self.disconnect(conn)
        if self._link is not None:
            self._link.close()
        ticker = self._tasks[:1]
        for t in ticker:
            t.cancel()
        await asyncio.gather(*ticker, return_exceptions=True)
        await self.replica.stop()
        self._lock.release()

    # ---- Raft's side ----

    def _propose(self, txn: logpb.Txn) -> None:
        """The coordinator's log: only the leader executes writes, so only it gets here."""
        index = self.replica.propose(txn.SerializeToString())
        if index != txn.zxid:                   # the zxid was taken as the next index
            raise AssertionError(f"txn {txn.zxid} landed at index {index}")
        self._since_snapshot += 1

    def _on_committed(self, snapshot: Snapshot | None, entries: list[Entry]) -> None:
        c = self.coordinator
        if snapshot is not None:                # a follower that fell too far behind
            log.info("loading a snapshot at index %d from the leader", snapshot.index)
            self._drop_all_streams()
            self._rebuild(snapshot, [])
            c = self.coordinator
            self._visible = snapshot.index
        for e in entries:
            if e.type == EntryType.NORMAL and e.data:
                txn = logpb.Txn.FromString(e.data)
                if txn.zxid > c.last_zxid:     # a leader applied its own already
                    c.apply_committed(txn)
                    self._since_snapshot += 1
                if txn.WhichOneof("op") == "close_session":
                    self._session_closed(txn.close_session.session_id, e.index)
            elif e.type == EntryType.CONF_CHANGE:
                change = ConfChange.decode(e.data)
                self.replica.member_changed(change)
                raft = self.replica.raft
                log.info("membership change at index %d (%s node %d): voters now %s, learners %s", e.index,
                         change.type.name, change.node_id, sorted(raft.voters), sorted(raft.learners))
        if entries:
            self._visible = entries[-1].index
        self._flush_all()
        self._pump_all()
        self._maybe_snapshot()

    def _on_state(self, soft: SoftState) -> None:
        was = self._role
        self._role = soft.role
        if soft.role == Role.LEADER and was != Role.LEADER:
            log.info("node %d leads term %d", self.config.node_id, self.replica.raft.term)
            self._writable_from = self.replica.last_index     # this term's first (empty) entry
            self.coordinator.judge_expiry(True)
            if self._link is not None:
                self._link.close()
        elif was == Role.LEADER and soft.role != Role.LEADER:
            log.info("node %d is no longer the leader", self.config.node_id)
            self.coordinator.judge_expiry(False)
            self._drop_all_streams()
            if self.coordinator.last_zxid > self.replica.applied:
                # executed writes that may never commit: back to what was committed
                raft_log = self.replica.raft.log
                snap = self.replica.storage.snapshot
                self._rebuild(snap, raft_log.slice(snap.index + 1, self.replica.applied + 1) or [])
        if self._link is not None and self._link.leader_id != soft.lead:
            self._link.close()
        self._changed.set()
        self._changed = asyncio.Event()
        self._ensure_link()

    def writable(self) -> bool:
        """The leader, with every entry of earlier terms applied: its tree is the whole log. The
        core's own role counts too: it steps down on a message (a newer term, say) before the
        Ready that tells this node, and a proposal made in between would be dropped."""
        raft = self.replica.raft
        return (self._role == Role.LEADER and raft.role == Role.LEADER and self._visible >= self._writable_from
                and raft.lead_transferee == NONE and not self._snapshot_blocks_writes())

    # ---- snapshots ----

    def _maybe_snapshot(self) -> None:
        if self._since_snapshot < self.config.snapshot_every or self._snapshotting:
            return
        if self.coordinator.last_zxid > self._visible:
            return          # the leader's tree runs ahead of the log; wait (see writable())
        self._snapshotting = True
        self._since_snapshot = 0
        index, data = self._visible, self.coordinator.snapshot()
        asyncio.get_running_loop().create_task(self._save_snapshot(index, data))

    def _snapshot_blocks_writes(self) -> bool:
        # a busy leader always has writes in flight: past twice the interval, pause new ones
        # until the tree and the log meet, so that a snapshot can be cut
        return self._since_snapshot >= 2 * self.config.snapshot_every and not self._snapshotting

    async def _save_snapshot(self, index: int, data: bytes) -> None:
        try:
            await self.replica.save_snapshot(self.replica.snapshot_at(index, data))
        except Exception:   # costs restart time, never data: the log is intact
            log.exception("snapshot failed")
        finally:
            self._snapshotting = False
            # Writes may have piled up past twice the interval while this one was saved: they
            # wait for the next snapshot, and no commit may come to cut it (none in flight).
            self._maybe_snapshot()
            self._pump_all()

    # ---- sessions and their streams ----

    def serving(self) -> bool:
        """False once the node has been without a leader for LEADERLESS_S: it is cut off from a
        majority, and its clients are better served elsewhere (as a ZooKeeper server that loses
        its quorum closes its connections)."""
        since = self._leaderless_since
        return since is None or time.monotonic() - since < LEADERLESS_S

    async def connect(self, msg: pb.Connect, peer_host: str = "") -> tuple[Conn, pb.Connected, int]:
        """Open or resume the session a stream asks for: (conn, the answer, the index the answer
        may leave at). Raises DcliError when it cannot."""
        if not self.serving():
            raise ConnectionLossError(message="this node has no leader: it cannot reach a majority of the cluster")
        if msg.last_zxid_seen > self._visible:
            raise TooFarBehindError()
        c = self.coordinator
        if msg.session_id:
            try:
                timeout = c.resume_session(msg.session_id, msg.password, msg.timeout_ms)
            except SessionExpiredError:
                if self.writable():
                    c.expire_sessions()      # past its deadline but not yet closed: close it now
                raise
            sid, password, gate = msg.session_id, msg.password, c.last_zxid
            old = self._conns.get(sid)
            if old is not None:        # the client moved to a new stream: the old one is dead to it
                self.disconnect(old)
        else:
            sid, password, timeout, gate = await self._open_session(msg.timeout_ms)
            c = self.coordinator
        conn = Conn(sid)
        conn.wait_zxid = gate           # opened by the leader: nothing runs here before it is applied
        conn.auth_ids = [("ip", peer_host)] if peer_host else []
        for body in msg.auth[:acl.MAX_IDS]:          # the client's addauths, sent again on a reconnect
            acl.add_auth(conn.auth_ids, body.scheme, body.auth, self.super_digest)
        self._conns[sid] = conn
        if msg.session_id:
            c.set_watches(sid, msg.last_zxid_seen, list(msg.data_watches), list(msg.exist_watches),
                          list(msg.child_watches), list(msg.persistent_watches),
                          list(msg.persistent_recursive_watches))
        connected = pb.Connected(session_id=sid, password=password, timeout_ms=timeout,
                                 zxid=max(gate, c.last_zxid), server=self.config.name)
        return conn, connected, gate

    async def _open_session(self, timeout_ms: int) -> tuple[int, bytes, int, int]:
        deadline = time.monotonic() + max(timeout_ms, 2000) / 1000
        while True:
            if self.writable():
                sid, password, timeout = self.coordinator.open_session(timeout_ms)
                return sid, password, timeout, self.coordinator.last_zxid
            if self._link is not None and self._link.ready:
                fut = asyncio.get_running_loop().create_future()
                rid = self._forward(None, fut, ppb.ForwardedRequest(open_session_timeout_ms=timeout_ms))
                try:
                    opened: pb.Connected = await asyncio.wait_for(fut, deadline - time.monotonic())
                except asyncio.TimeoutError:
                    self._forwarded.pop(rid, None)
                    raise ConnectionLossError() from None
                return opened.session_id, opened.password, opened.timeout_ms, opened.zxid
            if time.monotonic() >= deadline:
                raise ConnectionLossError()
            await self._until(lambda: self.writable() or (self._link is not None and self._link.ready),
                              deadline - time.monotonic())

    def gate(self) -> int:
        """The index a reply computed now reflects: it may leave once that is applied."""
        return self.coordinator.last_zxid

    async def wait_visible(self, index: int) -> None:
        await self._until(lambda: self._visible >= index)

    def submit(self, conn: Conn, requests) -> None:
        sid = conn.session_id
        if self._conns.get(sid) is not conn or conn.close_after_flush:
            return          # a stream the session has left: the client counts its requests as lost
        c = self.coordinator
        c.touch(sid)
        self._alive.add(sid)
        for req in requests:
            if req.WhichOneof("op") == "add_auth":
                # ZooKeeper's addauth: the stream's ids change now, its answer comes in turn
                conn.pending.append(InTurn(req.xid, self._add_auth(conn, req.add_auth)))
            elif req.WhichOneof("op") == "ping":
                # a heartbeat carries no state: it is answered at once, not behind the session's
                # queued requests, so a long backlog does not look like a dead connection
                conn.outbox.append((0, pb.ServerItem(response=self._handle(conn.session_id, req))))
            else:
                conn.pending.append(req)
        self._pump(conn)

    def _add_auth(self, conn: Conn, body: pb.AddAuthRequest) -> DcliError | None:
        if acl.add_auth(conn.auth_ids, body.scheme, body.auth, self.super_digest):
            return None
        return AuthenticationFailedError("", f"Authentication is not valid : {body.scheme} (digest or ip)")

    def _pump(self, conn: Conn) -> None:
        """Execute the session's requests in order, as far as the node can now."""
        c = self.coordinator
        while conn.pending and not conn.close_after_flush:
            req = conn.pending[0]
            op = req.WhichOneof("op")
            if op in _WRITES:
                if self.writable():
                    conn.pending.popleft()
                    if not self._execute(conn, req):
                        break
                elif self._role != Role.LEADER and self._link is not None and self._link.ready:
                    conn.pending.popleft()
                    conn.inflight += 1
                    if op == "close_session":
                        conn.closing = True
                    self._forward(conn, None, ppb.ForwardedRequest(
                        session_id=conn.session_id, request=req,
                        auth=[ppb.AuthId(scheme=scheme, id=ident) for scheme, ident in conn.auth_ids]))
                else:
                    break       # no leader to take it yet: it waits (the client's timeout bounds this)
            else:
                if conn.inflight or self._visible < conn.wait_zxid:
                    break       # behind a write of its own session: it must see that write
                conn.pending.popleft()
                conn.outbox.append((c.last_zxid, pb.ServerItem(response=self._handle(conn.session_id, req,
                                                                                     conn.auth_ids))))
        self._flush(conn)

    def _handle(self, session_id: int, req: pb.Request, ids=()) -> pb.Response:
        c = self.coordinator
        if isinstance(req, InTurn):
            if req.error is None:
                return pb.Response(xid=req.xid, zxid=c.last_zxid, empty=pb.Empty())
            return pb.Response(xid=req.xid, zxid=c.last_zxid, error=req.error.to_proto())
        op = req.WhichOneof("op")
        if op is None:
            return pb.Response(xid=req.xid, zxid=c.last_zxid,
                               error=MarshallingError("", "request carries no operation").to_proto())
        if op == "sync":
            return self._sync(session_id, req)
        try:
            return c.handle(session_id, req, ids)
        except DcliError as e:
            return pb.Response(xid=req.xid, zxid=c.last_zxid, error=e.to_proto())
        except Exception:
            log.exception("request failed: %s", req)
            return pb.Response(xid=req.xid, zxid=c.last_zxid,
                               error=SystemError_("", "internal server error").to_proto())

    def _sync(self, session_id: int, req: pb.Request) -> pb.Response:
        """Answered once an entry proposed now commits: by then this leader has proved it still
        leads, and every write acknowledged before the sync is applied."""
        c = self.coordinator
        response = c.handle(session_id, req)        # validates the path, touches the session
        if not response.HasField("error"):
            response.zxid = self.replica.propose(b"")
        return response

    def _execute(self, conn: Conn, req: pb.Request) -> bool:
        """The leader executes one write of a session on this node; False: the stream is cut."""
        resp = self._handle(conn.session_id, req, conn.auth_ids)
        if (self._replies_to_drop and req.WhichOneof("op") in _TREE_WRITES and not req.retry
                and not resp.HasField("error") and _write_path(req).startswith(self.config.fault_drop_under)):
            self._replies_to_drop -= 1
            log.warning("fault injection: dropping the reply to xid %d and cutting the stream", req.xid)
            conn.close_after_flush = True       # what is already queued goes; then the cut
            conn.wake.set()
            return False
        conn.outbox.append((max(resp.zxid, self.coordinator.last_zxid), pb.ServerItem(response=resp)))
        if req.WhichOneof("op") == "close_session" and not resp.HasField("error"):
            conn.closing = conn.close_after_flush = True
        return True

    def _deliver(self, session_id: int, event: pb.WatchEvent) -> None:
        conn = self._conns.get(session_id)
        if conn is not None:
            conn.outbox.append((event.zxid, pb.ServerItem(event=event)))
            self._flush(conn)

    def _session_closed(self, session_id: int, index: int) -> None:
        """A CloseSessionTxn was applied: a client still attached here was expired."""
        conn = self._conns.get(session_id)
        if conn is not None and not conn.closing and not conn.close_after_flush:
            conn.outbox.append((index, SessionExpiredError().to_proto()))
            conn.close_after_flush = True
            self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        if conn.outbox and conn.outbox[0][0] <= self._visible:
            conn.wake.set()

    def _flush_all(self) -> None:
        for conn in self._conns.values():
            self._flush(conn)
        for conn in self._forwarders:
            self._flush(conn)

    def _pump_all(self) -> None:
        for conn in list(self._conns.values()):
            if conn.pending:
                self._pump(conn)
        for conn in list(self._forwarders):
            if conn.pending:
                self._pump_forwarded(conn)

    def take_ready(self, conn: Conn) -> list:
        """Pop the items of the outbox that may leave, in order."""
        ready = []
        visible = self._visible
        box = conn.outbox
        budget = FRAME_BUDGET
        while box and box[0][0] <= visible and (not ready or budget > 0):
            item = box.popleft()[1]
            budget -= item.ByteSize()
            ready.append(item)
        if ready and conn.outstanding < self.config.limits.max_outstanding_per_session:
            conn.room.set()     # the stream's reader may read more requests
        if box and box[0][0] <= visible:
            return ready    # more is ready: the stream comes straight back for it
        conn.wake.clear()   # what is left waits for the log: _flush() wakes the stream
        return ready

    def disconnect(self, conn: Conn) -> None:
        """The stream ended: the session lives on until its deadline; its watches go."""
        if self._conns.get(conn.session_id) is conn:
            del self._conns[conn.session_id]
            self.coordinator.detach(conn.session_id)
        self._forwarders.discard(conn)
        conn.closed = True
        conn.wake.set()
        conn.room.set()

    def _drop_all_streams(self) -> None:
        for conn in list(self._conns.values()) + list(self._forwarders):
            self.disconnect(conn)

    # ---- forwarding: the follower's side ----

    def _ensure_link(self) -> None:
        lead = self.replica.leader_id
        if (self._role == Role.LEADER or lead == NONE or self.forward_channel is None
                or lead not in self.replica.peer_addresses):
            return
        # a leader not heard from for an election timeout is probably gone: no new link to it
        # (writes wait for the election instead of failing on link after link)
        heard = self.replica.last_contact.get(lead, 0.0)
        if time.monotonic() - heard > self.config.election_tick * self.config.raft_tick_s:
            return
        if self._link is None or self._link.closed:
            self._link = self.forward_channel.open(
                lead, on_reply=self._on_forward_reply, on_lost=self._on_link_lost,
                on_commit=self.replica.observe_commit, on_ready=self._pump_all)

    def _forward(self, conn: Conn | None, fut: asyncio.Future | None, request: ppb.ForwardedRequest) -> int:
        rid = self._next_forward_id
        self._next_forward_id += 1
        request.id = rid
        self._forwarded[rid] = (conn, fut)
        self._link.send(request)
        return rid

    def _on_forward_reply(self, reply: ppb.ForwardReply) -> None:
        conn, fut = self._forwarded.pop(reply.id, (None, None))
        kind = reply.WhichOneof("kind")
        if fut is not None:
            if not fut.done():
                if kind == "opened":
                    fut.set_result(reply.opened)
                else:
                    fut.set_exception(ConnectionLossError())
            return
        if conn is None or conn.closed:
            return
        conn.inflight -= 1
        if kind == "response":
            resp = reply.response
            conn.wait_zxid = max(conn.wait_zxid, resp.zxid)
            conn.outbox.append((resp.zxid, pb.ServerItem(response=resp)))
            if conn.closing and not resp.HasField("error") and conn.inflight == 0:
                conn.close_after_flush = True
        else:
            self.disconnect(conn)       # the leader would not take it: the client retries
            return
        self._pump(conn)

    def on_peer_down(self, peer: int) -> None:
        """The connection to node `peer` broke: what was forwarded either way is over."""
        if self.forwarding is not None:
            self.forwarding.on_peer_down(peer)
        if self.forward_channel is not None:
            self.forward_channel.on_peer_down(peer)

    def _on_link_lost(self, link: ForwardLink) -> None:
        """Whatever was forwarded on `link` and not answered has an unknown outcome."""
        for rid, (conn, fut) in list(self._forwarded.items()):
            del self._forwarded[rid]
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionLossError())
            if conn is not None and not conn.closed:
                self.disconnect(conn)
        if self._link is link:
            self._link = None

    # ---- forwarding: the leader's side ----

    def attach_forwarder(self) -> Conn:
        conn = Conn(0)
        self._forwarders.add(conn)
        if self._role != Role.LEADER:
            self.disconnect(conn)
        return conn

    def submit_forwarded(self, conn: Conn, frame: ppb.ForwardFrame) -> None:
        if conn.closed:
            return
        c = self.coordinator
        for sid in frame.alive_sessions:
            c.touch(sid)
        conn.pending.extend(frame.requests)
        self._pump_forwarded(conn)

    def _pump_forwarded(self, conn: Conn) -> None:
        c = self.coordinator
        while conn.pending and self.writable():
            fr: ppb.ForwardedRequest = conn.pending.popleft()
            if fr.WhichOneof("kind") == "open_session_timeout_ms":
                sid, password, timeout = c.open_session(fr.open_session_timeout_ms)
                opened = pb.Connected(session_id=sid, password=password, timeout_ms=timeout,
                                      zxid=c.last_zxid, server=self.config.name)
                conn.outbox.append((c.last_zxid, ppb.ForwardReply(id=fr.id, opened=opened)))
            else:
                # the follower's word for its client's ids: it is an authenticated member
                ids = [(a.scheme, a.id) for a in fr.auth[:MAX_FORWARDED_IDS]]
                resp = self._handle(fr.session_id, fr.request, ids)
                conn.outbox.append((max(resp.zxid, c.last_zxid), ppb.ForwardReply(id=fr.id, response=resp)))
        self._flush(conn)

    # ---- operators: membership and leadership ----

    async def change_members(self, change: ConfChange) -> None:
        """Add (as a learner), promote or remove one member (leader only); returns once the
        change is applied here. The leader promotes a learner itself once it has caught up."""
        if self._role != Role.LEADER:
            raise ProposalDropped("not the leader", self.replica.leader_id)
        index = self.replica.propose_conf_change(change)
        # applied, not only committed: the answer lists the members with their addresses
        committed = lambda: self.replica.applied >= index    # noqa: E731
        # a leader removing itself steps down as the change commits
        await self._until(lambda: committed() or self._role != Role.LEADER, 30.0)
        if not committed():
            raise ProposalDropped("leadership changed before the change committed", self.replica.leader_id)

    async def transfer_leadership(self, to: int) -> None:
        if self._role != Role.LEADER:
            raise ProposalDropped("not the leader", self.replica.leader_id)
        self.replica.transfer_leadership(to)
        await self._until(lambda: self.replica.leader_id == to, 10.0)
        if self.replica.leader_id != to:
            raise ProposalDropped(f"node {to} did not take over in time", self.replica.leader_id)

    async def _until(self, predicate, timeout_s: float = float("inf")) -> None:
        """Until predicate() holds or timeout_s passes: woken by role changes, and looking again
        every 50 ms for what the log's progress changes."""
        deadline = time.monotonic() + timeout_s
        while not predicate() and time.monotonic() < deadline:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), min(0.05, max(deadline - time.monotonic(), 0)))
            except asyncio.TimeoutError:
                pass

    # ---- housekeeping ----

    async def _ticker(self) -> None:
        interval_s = self.config.limits.container_check_interval_ms / 1000
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            if self._link is not None and not self._link.closed and self._alive:
                self._link.send_alive(sorted(self._alive))
            self._alive.clear()
            self._ensure_link()
            if self.replica.leader_id == NONE:
                if self._leaderless_since is None:
                    self._leaderless_since = time.monotonic()
                elif not self.serving() and self._conns:
                    log.warning("no leader for %.0f s: dropping %d client connections", LEADERLESS_S, len(self._conns))
                    for conn in list(self._conns.values()):
                        self.disconnect(conn)
            else:
                self._leaderless_since = None
            if not self.writable():
                continue
            for sid in self.coordinator.expire_sessions():
                conn = self._conns.get(sid)
                if conn is not None:
                    # tell the client, once the close is committed, and end its stream
                    conn.outbox.append((self.coordinator.last_zxid, SessionExpiredError().to_proto()))
                    conn.close_after_flush = True
                    self._flush(conn)
            if time.monotonic() - last_sweep >= interval_s:
                last_sweep = time.monotonic()
                self.coordinator.sweep()

    def status(self) -> cpb.NodeStatus:
        """What `dcli cluster status` shows of this node."""
        c, raft = self.coordinator, self.replica.raft
        members = []
        for node_id in sorted(raft.voters | raft.learners | set(self.peers)):
            pr = raft.progress.get(node_id) if raft.role == Role.LEADER else None
            members.append(cpb.Member(
                role="learner" if node_id in raft.learners else "voter" if node_id in raft.voters else "",
                node_id=node_id, address=self.peers.get(node_id, ""),
                peer_address=self.replica.peer_addresses.get(node_id, ""),
                reachable=node_id == self.config.node_id or self.replica.transport.reachable(node_id),
                match_index=pr.match if pr is not None else 0))
        return cpb.NodeStatus(
            node_id=self.config.node_id, address=self.peers.get(self.config.node_id, self.config.name),
            role=_ROLES[raft.role], term=raft.term, leader_id=raft.lead,
            commit_index=raft.log.committed, applied_index=self._visible, last_zxid=c.last_zxid,
            sessions=len(c.sessions), znodes=len(c.tree), members=members,
            snapshot_index=self.replica.storage.snapshot.index, log_first_index=raft.log.first_index(),
            log_last_index=raft.log.last_index(), controller_id=self.controller_id())


def _txns(entries: list[Entry]):
    for e in entries:
        if e.type == EntryType.NORMAL and e.data:
            yield logpb.Txn.FromString(e.data)


def _write_path(req: pb.Request) -> str:
    """The path a write changes (a multi's first)."""
    op = req.WhichOneof("op")
    if op == "multi":
        return _write_path(req.multi.ops[0]) if req.multi.ops else ""
    return getattr(getattr(req, op), "path", "") if op else ""
