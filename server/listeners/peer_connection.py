"""PeerConnection: one authenticated frame stream to one peer, carrying all traffic both ways.

Both sides use the connection alike, whoever dialled: one-way messages (Raft), and requests
matched to their response by id (forwarded writes, KV replica calls, follower fetches).

- Order: frames leave in the order they were queued (one writer task, or a direct write when
  nothing is queued), and the receiver hands one-way messages to `on_message` in that order.
  A request handler that is a plain function answers at once, in the reader, in order with the
  one-way messages. One that returns an awaitable (a coroutine function) is awaited in a task of
  its own, so a slow one does not hold up the stream: such handlers start in arrival order, and
  their answers may finish in any order and find their caller by id.
- Back-pressure: the send queue is bounded. `send` and `request` wait while it is full, `post`
  drops instead (Raft resends). When the writer cannot drain (the peer does not read), the queue
  fills. On the receiving side at most `max_handlers` requests run at once; one beyond that is
  answered BUSY at once (`PeerBusy`: not run, safe to retry). The reader never stops for a
  handler: a handler that itself calls back the same peer cannot deadlock the connection.
- Liveness: a PING goes out every `keepalive_s`; a connection on which nothing arrived for
  `dead_after_s` (a paused or partitioned peer, a half-open socket) is closed.
- Loss: once closed, every request still waiting fails with `PeerUnreachable` (its outcome is
  unknown), and `on_closed` is called once. Reconnecting is the owner's business (`PeerLink`).
- Bad frames close the connection with one rate-limited log line, never a traceback.

    conn = PeerConnection(stream, peer_id=2, on_message=step, on_request=handle)
    conn.start()
    conn.post(RAFT, message)                      # never blocks; False if dropped
    answer = await conn.request(FORWARD, payload, timeout=5.0)
    await conn.close()                            # sends what is queued first (bounded wait)
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from dcli_server.listeners.peer_frames import MAX_PAYLOAD, ConnectionClosed, Frame, FrameError, Kind
from dcli_server.listeners.peer_stream import WRITE_HIGH_WATER, FrameStream
from dcli_server.listeners.ratelimit import RateLimitedLog

log = logging.getLogger("dcli.server.peer")

QUEUE_LIMIT = 4096              # frames waiting to be written to one peer
MAX_HANDLERS = 4096             # requests from one peer being handled at once; more are BUSY
WRITE_BATCH = 512               # frames per write call at most
KEEPALIVE_S = 1.0
DEAD_AFTER_S = 5.0
CLOSE_FLUSH_S = 1.0

OnMessage = Callable[[int, int, bytes], None]                 # (peer id, method, payload)
# -> the answer's payload, or an awaitable of it (run in a task of its own)
OnRequest = Callable[[int, int, bytes], "bytes | Awaitable[bytes]"]
_PING = Frame(Kind.PING, 0, 0, b"")
_PONG = Frame(Kind.PONG, 0, 0, b"")
_STOP = Frame(0, 0, 0, b"")     # the writer's sign to flush and end (never encoded)


class PeerUnreachable(Exception):
    """No connection to the peer, it broke before the answer came, or no answer in time."""


class PeerError(Exception):
    """The peer's handler failed; the message is what it said."""


class PeerBusy(PeerError):
    """The peer did not run the request: too many of this node's requests were in progress there."""


limited = RateLimitedLog(log)


def _expire(future: asyncio.Future, peer_id: int, timeout: float) -> None:
    if not future.done():
        future.set_exception(PeerUnreachable(f"node {peer_id}: no answer in {timeout:g} s"))


def _error(frame: Frame, e: Exception) -> Frame:
    return Frame(Kind.ERROR, frame.method, frame.id, (str(e) or type(e).__name__).encode()[:4096])


def _no_message(peer: int, method: int, payload: bytes) -> None:
    raise LookupError(f"no handler for one-way method {method}")


def _no_request(peer: int, method: int, payload: bytes) -> bytes:
    raise LookupError(f"no handler for method {method}")


class PeerConnection:
    def __init__(self, stream: FrameStream, peer_id: int, *, on_message: OnMessage = _no_message,
                 on_request: OnRequest = _no_request,
                 on_closed: Callable[["PeerConnection", str], None] = lambda conn, reason: None,
                 queue_limit: int = QUEUE_LIMIT, max_handlers: int = MAX_HANDLERS,
                 keepalive_s: float = KEEPALIVE_S, dead_after_s: float = DEAD_AFTER_S,
                 max_payload: int = MAX_PAYLOAD):
        self.stream = stream
        self._transport = stream.transport
        self.peer_id = peer_id
        self._on_message = on_message
        self._on_request = on_request
        self._on_closed = on_closed
        self._queue: asyncio.Queue[Frame] = asyncio.Queue(queue_limit)
        self._max_handlers = max_handlers
        self._max_payload = max_payload
        self._keepalive_s = keepalive_s
        self._dead_after_s = dead_after_s
        self._pending: dict[int, asyncio.Future] = {}
        self._handlers: set[asyncio.Task] = set()
        self._tasks: list[asyncio.Task] = []
        self._next_id = 0
        self._last_heard = 0.0
        self._done = asyncio.Event()
        self.closed = False
        self.reason = ""

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._write()),
                       loop.create_task(self._keepalive())]

    # -- sending -------------------------------------------------------------------------------------

    def post(self, method: int, payload: bytes) -> bool:
        """Queue a one-way message without waiting; False (dropped) if closed or the queue is full.
        A payload over the size limit is a ValueError here, in `send` and in `request`."""
        if self.closed:
            return False
        self._check_size(payload)
        try:
            self._put_nowait(Frame(Kind.ONEWAY, method, 0, payload))
        except asyncio.QueueFull:
            return False
        return True

    async def send(self, method: int, payload: bytes) -> None:
        """Queue a one-way message, waiting while the queue is full."""
        await self._put(Frame(Kind.ONEWAY, method, 0, payload))

    async def request(self, method: int, payload: bytes, timeout: float) -> bytes:
        """Send a request and wait for its answer; PeerUnreachable if none comes in `timeout` s."""
        if self.closed:
            raise PeerUnreachable(f"node {self.peer_id}: {self.reason}")
        self._next_id += 1
        id_ = self._next_id
        loop = asyncio.get_running_loop()
        future = self._pending[id_] = loop.create_future()
        handle = loop.call_later(timeout, _expire, future, self.peer_id, timeout)
        frame = Frame(Kind.REQUEST, method, id_, payload)
        try:
            await self._put(frame, future)
            return await future
        finally:
            handle.cancel()
            self._pending.pop(id_, None)

    def _check_size(self, payload: bytes) -> None:
        if len(payload) > self._max_payload:       # the peer would close the connection on it
            raise ValueError(f"a payload of {len(payload)} bytes is over the limit of {self._max_payload}")

    def _put_nowait(self, frame: Frame) -> None:
        # nothing queued and the socket's buffer has room: write at once, saving the writer task a
        # wake-up; order holds, as the writer writes what it takes from the queue before it awaits
        if self._queue.empty() and self._transport.get_write_buffer_size() < WRITE_HIGH_WATER:
            self.stream.write(frame)
        else:
            self._queue.put_nowait(frame)

    async def _put(self, frame: Frame, future: asyncio.Future | None = None) -> None:
        """Queue a frame; while the queue is full wait for room, the connection's end or `future`."""
        if self.closed:
            raise PeerUnreachable(f"node {self.peer_id}: {self.reason}")
        self._check_size(frame.payload)
        try:
            self._put_nowait(frame)
            return
        except asyncio.QueueFull:
            pass
        loop = asyncio.get_running_loop()
        put = loop.create_task(self._queue.put(frame))
        ended = loop.create_task(self._done.wait())
        try:
            await asyncio.wait((put, ended) if future is None else (put, ended, future),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            put.cancel()
            ended.cancel()
        if self.closed:
            raise PeerUnreachable(f"node {self.peer_id}: {self.reason}")

    # -- the three tasks -----------------------------------------------------------------------------

    async def _write(self) -> None:
        queue, stream = self._queue, self.stream
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < WRITE_BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                stop = batch[-1] is _STOP
                if stop:
                    batch.pop()
                if batch:
                    stream.write_many(batch)
                await stream.drain()
                if stop:
                    return
        except ConnectionClosed as e:
            self._lost(f"write failed: {e}")
        except Exception as e:                  # a bug: one line, the connection goes, the node stays
            limited.warning(f"write:{self.peer_id}", "node %d: writing failed: %r", self.peer_id, e)
            self._lost(f"writing failed: {e!r}")

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        stream, pending = self.stream, self._pending
        try:
            while True:
                frame = await stream.read()
                self._last_heard = loop.time()
                kind = frame.kind
                if kind == Kind.ONEWAY:
                    try:
                        self._on_message(self.peer_id, frame.method, frame.payload)
                    except Exception as e:
                        limited.warning(f"message:{frame.method}", "node %d: one-way method %d failed: %r",
                                        self.peer_id, frame.method, e)
                elif kind == Kind.REQUEST:
                    if len(self._handlers) >= self._max_handlers:
                        self._answer(Frame(Kind.BUSY, frame.method, frame.id, b""))
                        continue
                    try:
                        result = self._on_request(self.peer_id, frame.method, frame.payload)
                    except Exception as e:
                        self._answer(_error(frame, e))
                        continue
                    if isinstance(result, bytes):       # answered at once: no task, no extra loop turn
                        self._answer(self._response(frame, result))
                        continue
                    task = loop.create_task(self._finish(frame, result))
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)
                elif kind == Kind.RESPONSE or kind == Kind.ERROR or kind == Kind.BUSY:
                    future = pending.pop(frame.id, None)
                    if future is not None and not future.done():     # else: its caller gave up
                        if kind == Kind.RESPONSE:
                            future.set_result(frame.payload)
                        elif kind == Kind.ERROR:
                            future.set_exception(PeerError(frame.payload.decode("utf-8", "replace")))
                        else:
                            future.set_exception(PeerBusy(f"node {self.peer_id}: {self._max_handlers} "
                                                          "requests in progress there"))
                elif kind == Kind.PING:
                    self._try_queue(_PONG)     # dropped when full: that traffic proves us alive
                elif kind == Kind.HELLO:
                    raise FrameError("a handshake frame after the handshake")
        except ConnectionClosed as e:
            self._lost(f"connection lost: {e}")
        except FrameError as e:
            limited.warning(f"frame:{self.stream.peername.rpartition(':')[0]}", "node %d (%s): bad frame, closing: %s",
                            self.peer_id, self.stream.peername, e)
            self._lost(f"bad frame: {e}")
        except Exception as e:                  # a bug: one line, the connection goes, the node stays
            limited.warning(f"read:{self.peer_id}", "node %d: reading failed: %r", self.peer_id, e)
            self._lost(f"reading failed: {e!r}")

    def _response(self, frame: Frame, payload) -> Frame:
        try:
            if not isinstance(payload, bytes):
                raise TypeError(f"the handler of method {frame.method} returned {type(payload).__name__}, "
                                "not bytes")
            self._check_size(payload)
        except (TypeError, ValueError) as e:
            return _error(frame, e)
        return Frame(Kind.RESPONSE, frame.method, frame.id, payload)

    async def _finish(self, frame: Frame, result: Awaitable[bytes]) -> None:
        try:
            answer = self._response(frame, await result)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            answer = _error(frame, e)
        try:
            await self._put(answer)
        except PeerUnreachable:
            pass                    # the caller learns it from the connection's loss

    def _answer(self, frame: Frame) -> None:
        """Send an answer from the reader, which must never wait for the send queue: two peers that
        both stopped reading until they can send would wait for each other for ever."""
        if self.closed:
            return
        try:
            self._put_nowait(frame)
        except asyncio.QueueFull:
            task = asyncio.get_running_loop().create_task(self._finish_put(frame))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _finish_put(self, frame: Frame) -> None:
        try:
            await self._put(frame)
        except PeerUnreachable:
            pass

    async def _keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._keepalive_s)
            quiet = loop.time() - self._last_heard
            if quiet > self._dead_after_s:
                log.info("node %d: nothing heard for %.1f s, closing", self.peer_id, quiet)
                self._lost(f"nothing heard for {quiet:.1f} s")
                return
            self._try_queue(_PING)

    def _try_queue(self, frame: Frame) -> None:
        if self.closed:
            return
        try:
            self._put_nowait(frame)
        except asyncio.QueueFull:
            pass                # a full queue is traffic enough: PING/PONG only keep it alive

    # -- ending --------------------------------------------------------------------------------------

    def _lost(self, reason: str) -> None:
        """Close at once: fail what waits, stop the tasks, close the socket, tell the owner."""
        if self.closed:
            return
        self.closed = True
        self.reason = reason
        current = asyncio.current_task()
        for task in [*self._tasks, *self._handlers]:
            if task is not current:
                task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerUnreachable(f"node {self.peer_id}: {reason}"))
        self._pending.clear()
        self.stream.close_soon()
        self._done.set()
        self._on_closed(self, reason)

    def abort(self, reason: str = "closed") -> None:
        self._lost(reason)

    async def close(self, flush_s: float = CLOSE_FLUSH_S) -> None:
        """Write what is queued (for at most `flush_s`), then close."""
        if not self.closed and self._tasks:
            try:
                self._queue.put_nowait(_STOP)
            except asyncio.QueueFull:
                pass                # a peer that does not read gets what it has, no more
            else:
                await asyncio.wait((self._tasks[1],), timeout=flush_s)
        self._lost("closed")
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await self._done.wait()
        await asyncio.gather(*self._tasks, *self._handlers, return_exceptions=True)
        await self.stream.close()
