"""A CoordClient on this node's own tree, in process: how the node's broker reads, writes and
watches its metadata without going through the client port.

    tree = LocalTree(node, asyncio.get_running_loop(), name="127.0.0.1:7181")
    zk = tree.client(timeout=4.0).start()         # from a thread other than the loop's
    zk.create("/brokers/ids/1", b"...", ephemeral=True)
    zk.close()

The client is the ordinary `dcli.client.CoordClient`, with everything the broker and the recipes
rely on (watches and their events, SUSPENDED/CONNECTED/LOST, a session resumed with its watches
when its stream is dropped, say when this node stops leading); only its stream is different. A
`LocalChannel` stands where the gRPC channel would be: each session stream it opens is served by
the node directly (`node.connect`, `submit`, `take_ready`, as the Coordination servicer does for
a network stream), with no port, no TLS, no serialisation and no slot of `--max-client-cnxns`.
The client's threads hand frames to the node's event loop with `call_soon_threadsafe`; the loop
hands answers back through a queue. So the client must not be called on the loop's thread (it
would wait for the loop it blocks): the broker calls it from its own threads, as before.

A session's password never leaves the process: `password(session_id)` reads it from the node's
replicated session table, which is how a restarted broker takes over the session it had before
a crash knowing only its id.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading

from dcli.client import CoordClient
from dcli.v1 import coord_pb2 as pb
from dcli.wire.errors import BadArgumentsError, DcliError
from dcli_server.node import session_frame

log = logging.getLogger("dcli.server.local")

SESSION_METHOD = "/dcli.v1.Coordination/Session"
_END = object()          # the stream is over: the client's iteration stops


class LocalTree:
    """Opens CoordClients on `node`'s tree; `loop` is the loop the node runs on."""

    def __init__(self, node, loop: asyncio.AbstractEventLoop, name: str):
        self.node = node
        self.loop = loop
        self.name = name            # what the client reports as its server: this node's address
        self.channel = LocalChannel(node, loop)

    def client(self, timeout: float, dial_timeout: float = 5.0,
               session: tuple[int, bytes] | None = None) -> CoordClient:
        """A client (not started) whose streams this node serves in process."""
        return CoordClient([self.name], timeout=timeout, dial_timeout=dial_timeout, session=session,
                           channel=self.channel)

    def password(self, session_id: int, timeout: float = 5.0) -> bytes | None:
        """The password of a session in this node's session table; None if it has none."""
        async def look() -> bytes | None:
            found = self.node.coordinator.sessions.get(session_id)
            return found.password if found is not None else None
        return asyncio.run_coroutine_threadsafe(look(), self.loop).result(timeout)


class LocalChannel:
    """What SessionIO opens its session streams on (`grpc.Channel.stream_stream`, the one method
    the Coordination stub uses), served by the node in process."""

    def __init__(self, node, loop: asyncio.AbstractEventLoop):
        self._node = node
        self._loop = loop

    def stream_stream(self, method: str, request_serializer=None, response_deserializer=None, **_):
        if method != SESSION_METHOD:
            raise ValueError(f"{method} is not served in process")
        return self._open

    def _open(self, requests, **_) -> LocalStream:
        return LocalStream(self._node, self._loop, requests)

    def close(self) -> None:
        pass


class LocalStream:
    """One session stream: iterate it for ServerFrames (on the client's IO thread); `cancel()`
    ends it. The request iterator (SessionIO's sender, which blocks between frames) is drained by
    a thread of its own, as gRPC drains it, until SessionIO ends it."""

    def __init__(self, node, loop: asyncio.AbstractEventLoop, requests):
        self._node = node
        self._loop = loop
        self._frames: queue.SimpleQueue = queue.SimpleQueue()     # for the client: ServerFrames, _END
        self._inbox: asyncio.Queue = asyncio.Queue()              # for the loop: ClientFrames, None
        self._cancelled = threading.Event()
        self._task = None
        try:
            self._task = asyncio.run_coroutine_threadsafe(self._serve(), loop)
        except RuntimeError:                # the loop is closed: the node is gone, the stream ends
            self.cancel()
        threading.Thread(target=self._send, args=(requests,), name="dcli-local-send", daemon=True).start()

    # ---- the client's side (its threads) ----

    def __iter__(self):
        return self

    def __next__(self) -> pb.ServerFrame:
        frame = self._frames.get()
        if frame is _END:
            self._frames.put(_END)          # a later next() ends too
            raise StopIteration
        return frame

    def cancel(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        if self._task is not None:
            try:
                self._task.cancel()         # thread-safe: the loop cancels the task
            except RuntimeError:
                pass
        self._frames.put(_END)              # ends the iteration even if the loop has stopped

    def _send(self, requests) -> None:
        for frame in requests:              # ends when SessionIO moves past this stream
            if self._cancelled.is_set():
                continue
            if not self._to_loop(frame):
                self.cancel()
        self._to_loop(None)

    def _to_loop(self, item) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, item)
            return True
        except RuntimeError:                # the loop is closed: the node is gone
            return False

    # ---- the node's side (the loop) ----

    async def _serve(self) -> None:
        node = self._node
        try:
            first = await self._inbox.get()
            if first is None:
                return
            if not first.HasField("connect"):
                self._frames.put(pb.ServerFrame(error=BadArgumentsError("", "the first frame must carry connect").to_proto()))
                return
            try:
                conn, connected, gate = await node.connect(first.connect)
            except DcliError as e:
                await node.wait_visible(node.gate())   # e.g. the close of an expired session
                self._frames.put(pb.ServerFrame(error=e.to_proto()))
                return
            conn.auth_ids = [("super", "")]     # the node's own broker: no znode's ACL stops it
            # the answer leaves when the session's creation is committed and applied here
            conn.outbox.appendleft((gate, connected))
            node.submit(conn, first.requests)
            reader = asyncio.get_running_loop().create_task(self._read(conn))
            try:
                await self._write(conn)
            finally:
                reader.cancel()
                node.disconnect(conn)
        except asyncio.CancelledError:
            pass
        except Exception:   # noqa: BLE001 - a bug here ends this stream, never the node
            log.exception("the in-process session stream failed")
        finally:
            self._frames.put(_END)

    async def _write(self, conn) -> None:
        node = self._node
        while True:
            await conn.wake.wait()
            ready = node.take_ready(conn)
            if ready:
                self._frames.put(session_frame(conn, ready))
            if conn.closed or (conn.close_after_flush and not conn.outbox):
                return

    async def _read(self, conn) -> None:
        node = self._node
        limit = node.config.limits.max_outstanding_per_session
        while not conn.closed:
            while conn.outstanding >= limit and not conn.closed:
                conn.room.clear()           # the same back-pressure a network stream gets
                await conn.room.wait()
            frame = await self._inbox.get()
            if conn.closed:
                return
            if frame is None:               # the client is done sending: answer, then end
                conn.close_after_flush = True
                conn.wake.set()
                return
            node.submit(conn, frame.requests)
