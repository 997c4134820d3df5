"""A session's IO thread: one gRPC stream, pipelined and batched requests, pings, reconnects.

ZooKeeper's client threading model: this IO thread owns the network, heartbeats and session
management; an EventThread delivers watch callbacks and state changes one at a time, in order.

Requests wait in one queue; the stream's sender drains everything queued into one frame, so
under load many requests travel per message and the per-message cost of gRPC is shared. Each
request is answered in order on the same stream.
"""
from __future__ import annotations

import collections
import logging
import random
import threading
import time
from concurrent.futures import Future

import grpc

from dcli.client.auth import credentials
from dcli.client.events import EventThread
from dcli.client.rpc import error_from_rpc
from dcli.client.tls import explain, open_channel
from dcli.client.types import EVENT_TYPES, ConnState, EventType, KeeperState, WatchedEvent
from dcli.client.watches import WatchRegistry
from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coord_pb2_grpc as pb_grpc
from dcli.wire import errors

log = logging.getLogger("dcli.client")

PING_XID = -2
MAX_BATCH = 1000                 # requests per frame
MAX_BATCH_BYTES = 1024 * 1024    # data bytes per frame (a single larger request still goes alone)
MAX_REQUEST_BYTES = 8 * 1024 * 1024 - 4096   # the server's frame limit, less the frame's own bytes
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    # HTTP/2 pings notice a dead peer or a black-holed link even while nothing is sent
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
]


def parse_servers(servers: str | list[str]) -> list[str]:
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    out = [s.strip() for s in items if s.strip()]
    if not out:
        raise errors.UsageError("no server address given")
    for s in out:
        host, sep, port = s.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise errors.UsageError(f"invalid server address '{s}': expected host:port")
    return out


class _Pending:
    __slots__ = ("future", "on_reply", "idempotent", "request", "from_event_thread")

    def __init__(self, future, on_reply, idempotent, request, from_event_thread):
        self.future = future
        self.on_reply = on_reply          # (response) -> result; runs on the IO thread
        self.idempotent = idempotent      # safe to send again after a connection loss
        self.request = request
        # a watch callback that waits for its own request must not wait behind itself
        self.from_event_thread = from_event_thread


AT_MOST_ONCE, AT_LEAST_ONCE, EXACTLY_ONCE = "at-most-once", "at-least-once", "exactly-once"
DELIVERIES = (AT_MOST_ONCE, AT_LEAST_ONCE, EXACTLY_ONCE)
WRITES = frozenset({"create", "delete", "set_data", "multi"})


class SessionIO:
    """Owns the stream of one session; CoordClient builds requests on top of it."""

    def __init__(self, servers: str | list[str], timeout_s: float, dial_timeout_s: float,
                 default_watcher=None, delivery: str = AT_MOST_ONCE, channel=None):
        if delivery not in DELIVERIES:
            raise errors.UsageError(f"delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
        self.delivery = delivery
        self.servers = parse_servers(servers)
        self.requested_timeout_ms = int(timeout_s * 1000)
        self.dial_timeout_s = dial_timeout_s
        self.default_watcher = default_watcher
        self.session_id = 0
        self.password = b""
        self.timeout_ms = 0
        self.last_zxid = 0
        self.server = ""                      # the address we are connected to
        self.state: ConnState | None = None
        self.watches = WatchRegistry()
        self.auth: list[tuple[str, bytes]] = []   # addauths: sent again with every connect
        self.events = EventThread()
        self._listeners: list = []
        self._cv = threading.Condition()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._inflight: dict[int, _Pending] = {}
        self._xid = 0
        self._seq = 0                         # the last delivery sequence number given to a write
        self._open_seqs: dict[int, None] = {} # writes with a seq still waiting for their answer
        self._gen = 0                         # the stream generation the sender belongs to
        self._call = None
        self._channels: dict[str, grpc.Channel] = {}
        self._given_channel = channel         # streams open on it instead of dialing `servers`
        self._closing = False
        self._closed = threading.Event()
        self._connected = threading.Event()
        self._start_error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._server_index = 0
        self._connected_gen = -1
        self._close_requested = False
        self._sender_finished = threading.Event()
        self._sender_finished.set()
        self._last_recv = 0.0
    # ---- life cycle ----

    def start(self) -> None:
        """Connect and open a session, or raise UnavailableError within the dial timeout."""
        self._thread = threading.Thread(target=self._run, name="dcli-io", daemon=True)
        self._thread.start()
        self._connected.wait(self.dial_timeout_s + 1.0)
        if not self._connected.is_set() or self._start_error is not None:
            err = self._start_error or errors.UnavailableError(
                ",".join(self.servers), f"Cannot connect to {','.join(self.servers)}: timed out")
            if isinstance(err, errors.UnavailableError) and self._given_channel is None:
                why = next((w for w in map(explain, self.servers) if w), "")
                if why:             # a plaintext client of a TLS server, or the other way round
                    err = errors.UnavailableError(err.path, f"Cannot connect to {','.join(self.servers)}: {why}")
            self._shutdown()
            raise err

    def add_listener(self, fn) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def close(self, timeout_s: float = 5.0) -> None:
        """End the session: the server deletes its ephemerals at once."""
        if self._closing:
            return
        self._close_requested = True
        if self.state is ConnState.CONNECTED:
            fut = self.submit(pb.Request(close_session=pb.CloseSessionRequest()), lambda r: None)
            try:
                fut.result(timeout_s)
            except Exception:
                pass
        self._shutdown(closed_by_us=True)

    def _shutdown(self, closed_by_us: bool = False) -> None:
        with self._cv:
            self._closing = True
            self._gen += 1
            self._cv.notify_all()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        # gRPC runs the request iterator on a thread of its own: let it finish before we go
        self._sender_finished.wait(1.0)
        self._fail_all(errors.NotConnectedError())
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
        self._closed.set()
        if closed_by_us:
            self._set_state(ConnState.LOST)
            self._deliver_state_event(KeeperState.CLOSED)
        self.events.stop(wait=False)

    # ---- requests ----

    def submit(self, request: pb.Request, on_reply, idempotent: bool = False) -> Future:
        fut: Future = Future()
        if request.ByteSize() > MAX_REQUEST_BYTES:
            fut.set_exception(errors.RequestTooLargeError(
                "", f"Request too large: {request.ByteSize()} bytes, limit {MAX_REQUEST_BYTES}"))
            return fut
        from_events = self.events.is_current()
        with self._cv:      # checked under the lock that _shutdown and _set_lost take
            if self._closing:
                fut.set_exception(errors.NotConnectedError())
                return fut
            if self.state is ConnState.LOST:
                fut.set_exception(errors.SessionExpiredError())
                return fut
            self._xid += 1
            request.xid = self._xid
            if self.delivery == EXACTLY_ONCE and not request.seq and request.WhichOneof("op") in WRITES:
                self._seq += 1
                request.seq = self._seq
                request.acked_seq = next(iter(self._open_seqs), self._seq) - 1
                self._open_seqs[self._seq] = None
            self._queue.append(_Pending(fut, on_reply, idempotent, request, from_events))
            self._cv.notify()
        return fut

    def _sender(self, gen: int, first: pb.ClientFrame, finished: threading.Event):
        """The request iterator of one stream: batches whatever is queued; pings when idle."""
        try:
            yield first
            yield from self._frames(gen)
        finally:
            finished.set()

    def _frames(self, gen: int):
        while True:
            with self._cv:
                if gen != self._gen:
                    return
                timeout_s = (self.timeout_ms or self.requested_timeout_ms) / 1000
                if not self._queue:
                    wait = timeout_s / 3
                    if self._connected_gen == gen:   # wake in time to notice a silent server
                        wait = min(wait, self._last_recv + timeout_s * 2 / 3 - time.monotonic())
                    self._cv.wait(max(wait, 0.05))
                    if gen != self._gen:
                        return
                if self._connected_gen == gen and time.monotonic() - self._last_recv > timeout_s * 2 / 3:
                    # ZooKeeper's read timeout: the server has not answered a ping for too long
                    call = self._call
                    if call is not None:
                        call.cancel()
                    return
                frame = pb.ClientFrame()
                if not self._queue:
                    frame.requests.append(pb.Request(xid=PING_XID, ping=pb.PingRequest()))
                else:
                    budget = MAX_BATCH_BYTES
                    n = 0
                    while self._queue and n < MAX_BATCH:
                        p = self._queue[0]
                        size = _data_size(p.request)
                        if n and size > budget:
                            break
                        self._queue.popleft()
                        budget -= size
                        n += 1
                        self._inflight[p.request.xid] = p
                        frame.requests.append(p.request)
            yield frame

    # ---- the IO thread ----

    def _run(self) -> None:
        first_attempt_deadline = time.monotonic() + self.dial_timeout_s
        lost_since = None
        while not self._closing:
            try:
                self._stream_once(first_attempt_deadline if self.state is None else None)
                lost_since = None
            except _SessionGone as e:
                if self.state is None:          # a session to take over that is gone: say so at once
                    self._start_error = e.error
                    self._connected.set()
                    return
                self._set_lost(e.error)
                return
            except _DialFailed as e:
                if self.state is None and time.monotonic() >= first_attempt_deadline:
                    self._start_error = e.error
                    self._connected.set()
                    return
            if self._closing or self._close_requested:
                return
            if self.state is ConnState.CONNECTED:
                self._set_state(ConnState.SUSPENDED)
                self._deliver_state_event(KeeperState.DISCONNECTED)
                lost_since = time.monotonic()
            if lost_since is not None and time.monotonic() - lost_since > self.timeout_ms / 1000:
                # the session has probably expired: don't keep callers waiting for it
                self._fail_queued(errors.ConnectionLossError())
            self._server_index = (self._server_index + 1) % len(self.servers)
            self._closed.wait(min(0.05 + random.random() * 0.2, 0.5))

    def _channel(self, server: str) -> grpc.Channel:
        if self._given_channel is not None:
            return self._given_channel
        ch = self._channels.get(server)
        if ch is None:
            ch = open_channel(server, CHANNEL_OPTIONS)
            self._channels[server] = ch
        return ch

    def _connect_frame(self) -> pb.ClientFrame:
        w = self.watches.paths()
        return pb.ClientFrame(connect=pb.Connect(
            session_id=self.session_id, password=self.password,
            timeout_ms=self.timeout_ms or self.requested_timeout_ms, last_zxid_seen=self.last_zxid,
            data_watches=w["data"], exist_watches=w["exist"], child_watches=w["child"],
            persistent_watches=w["persistent"], persistent_recursive_watches=w["recursive"],
            auth=[pb.AddAuthRequest(scheme=scheme, auth=credential) for scheme, credential in self.auth]))

    def _stream_once(self, dial_deadline: float | None) -> None:
        server = self.servers[self._server_index]
        channel = self._channel(server)
        wait = (dial_deadline - time.monotonic()) if dial_deadline else max(self.timeout_ms / 3000, 1.0)
        with self._cv:
            self._gen += 1
            gen = self._gen
        self._sender_finished = threading.Event()
        call = pb_grpc.CoordinationStub(channel).Session(
            self._sender(gen, self._connect_frame(), self._sender_finished))
        self._call = call
        # a server that accepts the connection but never answers must not hang the dial
        watchdog = threading.Timer(max(wait, 1.0) + 1.0,
                                   lambda: None if self._connected_gen == gen else call.cancel())
        watchdog.daemon = True
        watchdog.start()
        try:
            for frame in call:
                self._last_recv = time.monotonic()
                if frame.HasField("connected"):
                    self._on_connected(frame.connected, server, gen)
                if frame.items:
                    self._dispatch(frame.items)
                if frame.HasField("error"):       # the server ends the stream after it
                    err = errors.from_proto(frame.error)
                    if isinstance(err, errors.SessionExpiredError):
                        raise _SessionGone(err)
                    raise _DialFailed(err)
        except (errors.AuthenticationFailedError, errors.TooManyAuthFailuresError) as e:
            raise _SessionGone(e) from None     # logging in failed (dcli.client.auth): no retry helps
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                # a revoked token is forgotten (error_from_rpc): with credentials the next dial logs in
                err = error_from_rpc(e, server)
                again = isinstance(err, errors.InvalidAuthTokenError) and credentials() is not None
                raise (_DialFailed(err) if again else _SessionGone(err)) from None
            if self._connected_gen != gen:
                reason = "connection refused" if e.code() == grpc.StatusCode.UNAVAILABLE else "timed out"
                raise _DialFailed(errors.UnavailableError(server, f"Cannot connect to {server}: {reason}")) from None
        finally:
            watchdog.cancel()
            with self._cv:
                if self._gen == gen:
                    self._gen += 1
                self._cv.notify_all()
            self._call = None
            self._on_stream_lost()
        if self._connected_gen != gen:
            raise _DialFailed(errors.UnavailableError(server, f"Cannot connect to {server}"))

    def _on_connected(self, c: pb.Connected, server: str, gen: int) -> None:
        resumed = self.session_id != 0
        if resumed and c.session_id != self.session_id:
            raise _SessionGone(errors.SessionExpiredError())
        self.session_id, self.password, self.timeout_ms = c.session_id, c.password, c.timeout_ms
        self.last_zxid = max(self.last_zxid, c.zxid)
        self.server = server
        self._last_recv = time.monotonic()
        self._connected_gen = gen
        self._set_state(ConnState.CONNECTED)
        self._deliver_state_event(KeeperState.SYNC_CONNECTED)
        self._connected.set()

    def _dispatch(self, items) -> None:
        for item in items:
            if item.WhichOneof("kind") == "response":
                r = item.response
                if r.zxid > self.last_zxid:
                    self.last_zxid = r.zxid
                if r.xid == PING_XID:
                    continue
                with self._cv:
                    p = self._inflight.pop(r.xid, None)
                    if p is not None and p.request.seq:
                        self._open_seqs.pop(p.request.seq, None)
                if p is None:
                    continue
                try:
                    result = p.on_reply(r)
                except errors.DcliError as e:
                    self._complete(p, None, e)
                except Exception as e:   # a bug in a reply handler must not kill the IO thread
                    log.exception("reply handler failed")
                    self._complete(p, None, e)
                else:
                    self._complete(p, result, None)
            else:
                ev = item.event
                if ev.zxid > self.last_zxid:
                    self.last_zxid = ev.zxid
                etype = EVENT_TYPES.get(ev.type, EventType.NONE)
                event = WatchedEvent(etype, KeeperState.SYNC_CONNECTED, ev.path, ev.zxid)
                for w in self.watches.materialize(etype, ev.path):
                    self.events.submit(w, event)

    def _complete(self, p: _Pending, result, exc) -> None:
        if self.events.backlog and not p.from_event_thread:
            self.events.submit(_settle, p.future, result, exc)   # behind the events before it
        else:
            _settle(p.future, result, exc)

    def _on_stream_lost(self) -> None:
        """Requests sent on the dead stream: reads go again on the next one. Writes, whose
        outcome is unknown, follow the delivery policy: at-most-once fails them
        (ConnectionLossError); at-least-once sends them again as they were (applied twice if the
        first one was applied); exactly-once sends them again marked as retries, and the server
        answers one it applied already with the stored result."""
        with self._cv:
            inflight = sorted(self._inflight.values(), key=lambda p: p.request.xid)
            self._inflight.clear()
            again = [p for p in inflight if self._sends_again(p) and not self._closing]
            for p in again:
                if p.request.seq:
                    p.request.retry = True
            self._queue.extendleft(reversed(again))
            failed = [p for p in inflight if not self._sends_again(p) or self._closing]
            for p in failed:
                self._open_seqs.pop(p.request.seq, None)
        for p in failed:
            self._complete(p, None, errors.ConnectionLossError())

    def _sends_again(self, p: _Pending) -> bool:
        if p.idempotent:
            return True
        if p.request.WhichOneof("op") not in WRITES:
            return False
        return self.delivery != AT_MOST_ONCE

    def _fail_queued(self, err: Exception) -> None:
        with self._cv:
            queued = list(self._queue)
            self._queue.clear()
            for p in queued:
                self._open_seqs.pop(p.request.seq, None)
        for p in queued:
            self._complete(p, None, err)

    def _fail_all(self, err: Exception) -> None:
        with self._cv:
            everything = list(self._inflight.values()) + list(self._queue)
            self._inflight.clear()
            self._queue.clear()
            self._open_seqs.clear()
        for p in everything:
            self._complete(p, None, err)

    # ---- states ----

    def _set_state(self, state: ConnState) -> None:
        with self._cv:      # submit() reads the state under this lock
            if state is self.state:
                return
            self.state = state
        for fn in list(self._listeners):
            self.events.submit(fn, state)

    def _deliver_state_event(self, kstate: KeeperState) -> None:
        if self.default_watcher is not None:
            self.events.submit(self.default_watcher, WatchedEvent(EventType.NONE, kstate, None))

    def _set_lost(self, err: Exception) -> None:
        self._set_state(ConnState.LOST)
        self._deliver_state_event(KeeperState.EXPIRED)
        self.watches.clear()
        self._fail_all(err)
        if self.state is None or not self._connected.is_set():
            self._start_error = err
            self._connected.set()


class _SessionGone(Exception):
    def __init__(self, error):
        self.error = error


class _DialFailed(Exception):
    def __init__(self, error):
        self.error = error


def _settle(fut: Future, result, exc) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _data_size(req: pb.Request) -> int:
    op = req.WhichOneof("op")
    if op in ("create", "set_data"):
        return len(getattr(req, op).data) + 64
    if op == "multi":
        return sum(_data_size(r) for r in req.multi.ops)
    return 64

