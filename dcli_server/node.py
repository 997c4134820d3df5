"""One node's coordination service: the tree, its write-ahead log, and the sessions' outboxes.

The node is single-threaded on an asyncio loop. A request is executed at once against the
in-memory tree (so the next request sees it), its txn is appended to the write-ahead log, and
its answer waits in the session's outbox until the log is durable up to the zxid the answer
reflects. The same gate holds reads and watch events: nobody is shown a change that a crash
could take back. Concurrent writes share one fsync (group commit).

    node = CoordNode(NodeConfig(data_dir=Path("/tmp/n1")))
    await node.start()
    conn = node.connect(pb.Connect(timeout_ms=10000))   # then node.submit(conn, requests)
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
from dcli.wire.errors import (DcliError, MarshallingError, SessionExpiredError, SystemError_,
                              TooFarBehindError)
from dcli_server.coord import Coordinator, Limits
from dcli_server.storage import DataDirLock, FsyncMode, SnapshotStore, WriteAheadLog

log = logging.getLogger("dcli.server")

TICK_S = 0.1                   # how often session deadlines are checked
INLINE_FSYNC_S = 0.001         # an fsync faster than this runs on the loop: a thread hop costs more
FRAME_BUDGET = 4 * 1024 * 1024 # bytes of items per server frame (one larger item still goes alone)
_WRITES = frozenset({"create", "delete", "set_data", "multi"})


@dataclass
class NodeConfig:
    data_dir: Path
    fsync: FsyncMode = FsyncMode.ALWAYS
    limits: Limits = field(default_factory=Limits)
    snapshot_every: int = 50_000          # txns between snapshots: bounds restart time
    name: str = "127.0.0.1:7181"
    node_id: int = 1
    peers: dict[int, str] = field(default_factory=dict)   # every node's address; {} = this one alone
    # fault injection for the delivery-semantics tests: this many successful writes are applied
    # and logged, but their reply is dropped and the stream is cut (env DCLI_FAULT_DROP_WRITE_REPLIES)
    fault_drop_write_replies: int = field(
        default_factory=lambda: int(os.environ.get("DCLI_FAULT_DROP_WRITE_REPLIES", "0") or 0))


class Conn:
    """One client stream attached to a session: what is waiting to be sent, and when it may go."""

    __slots__ = ("session_id", "outbox", "wake", "closed", "close_after_flush")

    def __init__(self, session_id: int):
        self.session_id = session_id
        self.outbox: collections.deque[tuple[int, object]] = collections.deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.close_after_flush = False


class CoordNode:
    def __init__(self, config: NodeConfig):
        self.config = config
        self._lock = DataDirLock(config.data_dir)
        self._wal = WriteAheadLog(config.data_dir / "log", fsync=config.fsync)
        self._snapshots = SnapshotStore(config.data_dir / "snapshot")
        self.coordinator = Coordinator(limits=config.limits, log=self._log_txn, deliver=self._deliver,
                                       now_ms=lambda: int(time.time() * 1000), node_id=config.node_id)
        self._conns: dict[int, Conn] = {}
        self._written_zxid = 0
        self._durable_zxid = 0
        self._dirty: asyncio.Event | None = None     # made on the loop, in start()
        self._since_snapshot = 0
        self._tasks: list[asyncio.Task] = []
        self._snapshotting = False
        self._snapshot_task: asyncio.Task | None = None
        self._fsync_cost_s = INLINE_FSYNC_S   # moving average of one fsync; start on a thread
        self._durable_waiters: list[tuple[int, asyncio.Future]] = []
        self._replies_to_drop = config.fault_drop_write_replies

    # ---- life cycle ----

    async def start(self) -> None:
        self._lock.acquire()
        self._dirty = asyncio.Event()
        latest = self._snapshots.latest()
        snap_zxid, snap_bytes = latest if latest else (0, None)
        self.coordinator.recover(snap_bytes, (payload for _, payload in self._wal.replay(snap_zxid)))
        self._written_zxid = self._durable_zxid = self.coordinator.last_zxid
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._committer()), loop.create_task(self._ticker())]
        for t in self._tasks:
            t.add_done_callback(self._fail_stop)

    @staticmethod
    def _fail_stop(task: asyncio.Task) -> None:
        """The committer or the ticker died (an fsync failed, say): stop rather than serve on.

        Retrying a failed fsync can report success for lost data, and a server whose log no
        longer advances would hold every answer forever. A restart replays the log."""
        if task.cancelled() or task.exception() is None:
            return
        log.critical("the server cannot go on: %r; stopping", task.exception(),
                     exc_info=task.exception())
        os._exit(70)

    async def stop(self) -> None:
        for conn in list(self._conns.values()):
            self.disconnect(conn)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self._wal.sync)
        self._wal.close()
        self._lock.release()

    # ---- the write-ahead log and the durability gate ----

    def _log_txn(self, txn: logpb.Txn) -> None:
        self._wal.append(txn.zxid, txn.SerializeToString())
        self._written_zxid = txn.zxid
        self._since_snapshot += 1
        if self.config.fsync is FsyncMode.ALWAYS:
            self._dirty.set()
        else:
            # the record is in the OS's hands: it survives the process dying; only fsync waits
            self._durable_zxid = txn.zxid

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.config.fsync is FsyncMode.ALWAYS:
                await self._dirty.wait()
                self._dirty.clear()
                target = self._written_zxid
                # one fsync covers every record appended so far (group commit); on a fast disk it
                # runs right here, on a slow one in a thread so reads keep flowing meanwhile
                if self._fsync_cost_s < INLINE_FSYNC_S:
                    cost = self._timed_sync()
                else:
                    cost = await loop.run_in_executor(None, self._timed_sync)
                self._fsync_cost_s = 0.8 * self._fsync_cost_s + 0.2 * cost
                self._durable_zxid = max(self._durable_zxid, target)
            else:
                await asyncio.sleep(self._wal.batch_interval_s)
                await loop.run_in_executor(None, self._wal.sync)
            self._flush_all()
            self._wake_durable_waiters()
            if self._since_snapshot >= self.config.snapshot_every and not self._snapshotting:
                self._snapshot_task = loop.create_task(self._take_snapshot())

    def _timed_sync(self) -> float:
        start = time.perf_counter()
        self._wal.sync()
        return time.perf_counter() - start

    async def _take_snapshot(self) -> None:
        self._snapshotting = True
        try:
            self._since_snapshot = 0
            zxid, payload = self.coordinator.last_zxid, self.coordinator.snapshot()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._snapshots.save, zxid, payload)
            oldest = self._snapshots.oldest_zxid()
            if oldest is not None:
                await loop.run_in_executor(None, self._wal.purge_before, oldest)
        except Exception:  # a failed snapshot costs restart time, never data: the log is intact
            log.exception("snapshot failed")
        finally:
            self._snapshotting = False

    def status(self) -> cpb.NodeStatus:
        """What `dcli cluster status` shows of this node."""
        c = self.coordinator
        address = self.config.peers.get(self.config.node_id, self.config.name)
        return cpb.NodeStatus(
            node_id=self.config.node_id, address=address, role="leader", term=1,
            leader_id=self.config.node_id, commit_index=self._durable_zxid,
            applied_index=c.last_zxid, last_zxid=c.last_zxid, sessions=len(c.sessions),
            znodes=len(c.tree), members=[cpb.Member(node_id=self.config.node_id, address=address,
                                                    reachable=True, match_index=c.last_zxid)])

    @property
    def durable_zxid(self) -> int:
        return self._durable_zxid

    async def wait_durable(self, zxid: int) -> None:
        if zxid <= self._durable_zxid:
            return
        fut = asyncio.get_running_loop().create_future()
        self._durable_waiters.append((zxid, fut))
        await fut

    def _wake_durable_waiters(self) -> None:
        if not self._durable_waiters:
            return
        waiting = []
        for zxid, fut in self._durable_waiters:
            if zxid <= self._durable_zxid:
                if not fut.done():
                    fut.set_result(None)
            else:
                waiting.append((zxid, fut))
        self._durable_waiters = waiting

    # ---- sessions and their streams ----

    def connect(self, msg: pb.Connect) -> tuple[Conn, pb.Connected]:
        """Open or resume the session a stream asks for; raises DcliError when it cannot."""
        c = self.coordinator
        if msg.last_zxid_seen > c.last_zxid:
            raise TooFarBehindError()
        if msg.session_id:
            try:
                timeout = c.resume_session(msg.session_id, msg.password, msg.timeout_ms)
            except SessionExpiredError:
                c.expire_sessions()     # past its deadline but not yet closed: close it now
                raise
            sid, password = msg.session_id, msg.password
            old = self._conns.get(sid)
            if old is not None:        # the client moved to a new stream: the old one is dead to it
                self.disconnect(old)
        else:
            sid, password, timeout = c.open_session(msg.timeout_ms)
        conn = Conn(sid)
        self._conns[sid] = conn
        if msg.session_id:
            c.set_watches(sid, msg.last_zxid_seen, list(msg.data_watches), list(msg.exist_watches),
                          list(msg.child_watches), list(msg.persistent_watches),
                          list(msg.persistent_recursive_watches))
        connected = pb.Connected(session_id=sid, password=password, timeout_ms=timeout,
                                 zxid=c.last_zxid, server=self.config.name)
        return conn, connected

    def gate(self) -> int:
        """The zxid a reply computed now reflects: it may leave once the log is durable up to it."""
        return self.coordinator.last_zxid

    def submit(self, conn: Conn, requests) -> None:
        c = self.coordinator
        sid = conn.session_id
        if self._conns.get(sid) is not conn or conn.close_after_flush:
            return          # a stream the session has left: the client counts its requests as lost
        c.touch(sid)
        for req in requests:
            if req.WhichOneof("op") is None:
                resp = pb.Response(xid=req.xid, zxid=c.last_zxid,
                                   error=MarshallingError("", "request carries no operation").to_proto())
            else:
                try:
                    resp = c.handle(sid, req)
                except DcliError as e:
                    resp = pb.Response(xid=req.xid, zxid=c.last_zxid, error=e.to_proto())
                except Exception:
                    log.exception("request failed: %s", req)
                    resp = pb.Response(xid=req.xid, zxid=c.last_zxid,
                                       error=SystemError_("", "internal server error").to_proto())
            if (self._replies_to_drop and req.WhichOneof("op") in _WRITES and not req.retry
                    and not resp.HasField("error")):
                self._replies_to_drop -= 1
                log.warning("fault injection: dropping the reply to xid %d and cutting the stream", req.xid)
                conn.close_after_flush = True       # what is already queued goes; then the cut
                conn.wake.set()
                break
            conn.outbox.append((c.last_zxid, pb.ServerItem(response=resp)))
            if req.WhichOneof("op") == "close_session" and not resp.HasField("error"):
                conn.close_after_flush = True
        self._flush(conn)

    def _deliver(self, session_id: int, event: pb.WatchEvent) -> None:
        conn = self._conns.get(session_id)
        if conn is not None:
            conn.outbox.append((event.zxid, pb.ServerItem(event=event)))
            self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        if conn.outbox and conn.outbox[0][0] <= self._durable_zxid:
            conn.wake.set()

    def _flush_all(self) -> None:
        for conn in self._conns.values():
            self._flush(conn)

    def take_ready(self, conn: Conn) -> list:
        """Pop the items of the outbox that are durable, in order."""
        ready = []
        durable = self._durable_zxid
        box = conn.outbox
        budget = FRAME_BUDGET
        while box and box[0][0] <= durable and (not ready or budget > 0):
            item = box.popleft()[1]
            budget -= item.ByteSize()
            ready.append(item)
        if box and box[0][0] <= durable:
            return ready    # more is ready: the stream comes straight back for it
        # what is left waits for the log: _flush() wakes the stream when it becomes durable
        conn.wake.clear()
        return ready

    def disconnect(self, conn: Conn) -> None:
        """The stream ended: the session lives on until its deadline; its watches go."""
        if self._conns.get(conn.session_id) is conn:
            del self._conns[conn.session_id]
            self.coordinator.detach(conn.session_id)
        conn.closed = True
        conn.wake.set()

    async def _ticker(self) -> None:
        interval_s = self.config.limits.container_check_interval_ms / 1000
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            for sid in self.coordinator.expire_sessions():
                conn = self._conns.get(sid)
                if conn is not None:
                    # tell the client, once the close is durable, and end its stream
                    conn.outbox.append((self.coordinator.last_zxid, SessionExpiredError().to_proto()))
                    conn.close_after_flush = True
                    self._flush(conn)
            if time.monotonic() - last_sweep >= interval_s:
                last_sweep = time.monotonic()
                self.coordinator.sweep()
