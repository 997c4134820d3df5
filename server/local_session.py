"""A session on this node's own tree, in process: how the node's other services (the key-value
store's ring document; later the broker's metadata) read, write and watch znodes.

It is a client like any other, driving the same `Conn` a gRPC stream drives: reads are answered
from this node's tree, writes go to the leader (forwarded when this node follows), watches fire
as `on_event(pb.WatchEvent)`. No port, no serialisation. When its session ends (expired while the
node had no leader, say) the next call opens a new one and `on_event` hears a `None`: watches
are gone, re-read and set them again.

    tree = LocalSession(node, timeout_ms=10_000, on_event=print)
    found = await tree.get("/dcli/kv/ring", watch=True)       # (data, stat) or None
    stat = await tree.set("/dcli/kv/ring", b"...", version=found[1].version)   # BadVersionError if raced
    await tree.close()
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from dcli.v1 import coord_pb2 as pb
from dcli.wire.errors import ConnectionLossError, DcliError, NodeExistsError, NoNodeError, from_proto

log = logging.getLogger("dcli.server.local")

CALL_TIMEOUT_S = 30.0
PING_XID = -2           # a heartbeat's answer, which no caller waits for (ZooKeeper's ping xid)


class LocalSession:
    def __init__(self, node, *, timeout_ms: int = 10_000,
                 on_event: Callable[[pb.WatchEvent | None], None] | None = None):
        self._node = node
        self._timeout_ms = timeout_ms
        self.on_event = on_event
        self._conn = None
        self._pump: asyncio.Task | None = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._xid = 0
        self._opening: asyncio.Lock = asyncio.Lock()
        self._closed = False
        self._last_sent = time.monotonic()

    # -- the session ------------------------------------------------------------------------

    async def _connected(self, deadline: float):
        """The live Conn, opening a session first when there is none."""
        async with self._opening:
            while self._conn is None:
                if self._closed:
                    raise ConnectionLossError(message="the local session is closed")
                try:
                    conn, connected, gate = await self._node.connect(pb.Connect(timeout_ms=self._timeout_ms))
                except ConnectionLossError:
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(0.1)      # no leader yet: ask again until the deadline
                    continue
                conn.auth_ids = [("super", "")]     # the node's own code: no znode's ACL stops it
                await self._node.wait_visible(gate)
                self._conn = conn
                self._pump = asyncio.get_running_loop().create_task(self._run(conn), name="local-session")
            return self._conn

    async def _run(self, conn) -> None:
        """Hand each answer to its caller and each event to on_event, until the stream ends."""
        node = self._node
        idle_s = self._timeout_ms / 3000        # a heartbeat when idle this long: the session lives
        try:
            while not conn.closed:
                quiet = time.monotonic() - self._last_sent
                if quiet >= idle_s:
                    self._submit(conn, pb.Request(xid=PING_XID, ping=pb.PingRequest()))
                    continue
                try:
                    await asyncio.wait_for(conn.wake.wait(), idle_s - quiet)
                except asyncio.TimeoutError:
                    continue
                for item in node.take_ready(conn):
                    if isinstance(item, pb.ServerItem):
                        if item.HasField("response"):
                            fut = self._waiting.pop(item.response.xid, None)
                            if fut is not None and not fut.done():
                                fut.set_result(item.response)
                        elif item.HasField("event") and self.on_event is not None:
                            self._event(item.event)
                    elif isinstance(item, pb.Error):        # the session ended (expired)
                        conn.closed = True
                        break
                if conn.close_after_flush and not conn.outbox:
                    break
        finally:
            node.disconnect(conn)
            if self._conn is conn:
                self._conn = None
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionLossError(message="the local session ended"))
            self._waiting.clear()
            if not self._closed and self.on_event is not None:
                self._event(None)

    def _event(self, event: pb.WatchEvent | None) -> None:
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a listener's bug must not end the session
            log.exception("a watch listener failed")

    async def call(self, request: pb.Request, timeout: float = CALL_TIMEOUT_S) -> pb.Response:
        """One request's response (its `error` field set when it failed)."""
        deadline = time.monotonic() + timeout
        conn = await self._connected(deadline)
        self._xid += 1
        request.xid = self._xid
        fut = asyncio.get_running_loop().create_future()
        self._waiting[request.xid] = fut
        self._submit(conn, request)
        try:
            return await asyncio.wait_for(fut, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            self._waiting.pop(request.xid, None)
            raise ConnectionLossError(message=f"no answer from the tree in {timeout:.0f} s") from None

    def _submit(self, conn, request: pb.Request) -> None:
        self._last_sent = time.monotonic()
        self._node.submit(conn, [request])

    async def _ok(self, request: pb.Request, timeout: float) -> pb.Response:
        response = await self.call(request, timeout)
        if response.HasField("error"):
            raise from_proto(response.error)
        return response

    async def close(self) -> None:
        self._closed = True
        conn = self._conn
        if conn is not None:
            try:
                await self._ok(pb.Request(close_session=pb.CloseSessionRequest()), timeout=2.0)
            except DcliError:
                pass                # it expires on its own
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass

    # -- the calls the services use -----------------------------------------------------------

    async def get(self, path: str, *, watch: bool = False,
                  timeout: float = CALL_TIMEOUT_S) -> tuple[bytes, pb.Stat] | None:
        """(data, stat), or None when there is no such znode (an exists watch is set then)."""
        response = await self.call(pb.Request(get_data=pb.GetDataRequest(path=path, watch=watch)), timeout)
        if response.HasField("error"):
            error = from_proto(response.error)
            if not isinstance(error, NoNodeError):
                raise error
            if watch:
                # ZooKeeper sets no data watch on a missing node: an exists watch hears its creation
                response = await self.call(pb.Request(exists=pb.ExistsRequest(path=path, watch=True)), timeout)
                if response.HasField("stat"):       # created in between: read it
                    return await self.get(path, watch=True, timeout=timeout)
            return None
        return response.get_data.data, response.get_data.stat

    async def create(self, path: str, data: bytes, *, parents: bool = False,
                     timeout: float = CALL_TIMEOUT_S) -> str:
        """Create a persistent znode; with `parents`, its missing ancestors first (empty)."""
        if parents:
            prefix = ""
            for part in path.strip("/").split("/")[:-1]:
                prefix += "/" + part
                try:
                    await self._ok(pb.Request(create=pb.CreateRequest(path=prefix, data=b"")), timeout)
                except NodeExistsError:
                    pass
        response = await self._ok(pb.Request(create=pb.CreateRequest(path=path, data=data)), timeout)
        return response.create.path

    async def set(self, path: str, data: bytes, *, version: int = -1, timeout: float = CALL_TIMEOUT_S) -> pb.Stat:
        response = await self._ok(pb.Request(set_data=pb.SetDataRequest(path=path, data=data, version=version)),
                                  timeout)
        return response.stat
