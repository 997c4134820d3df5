"""The proxy: accepts clients and forwards them to the backend the strategy picks.

tcp (layer 4): each client connection is spliced to one backend connection, both ways, until
both sides have finished, or until no byte has gone either way for `idle_timeout`. A backend that
refuses the connection is ejected and the next one is tried, so the client never sees it.

http (layer 7, HTTP/1.1 parsed by h11): each request is routed to a pool (see `Route`), sent to
a backend over a keep-alive connection from that backend's idle pool (with X-Forwarded-* as
`forwarded` writes them), its body streamed as it arrives (see `ClientBody`) and its response
streamed back. A backend that cannot be reached is ejected and the request goes to the next one
(a request already sent is sent again only when its method is idempotent and its body was held
whole); when none answers the client gets 502. Response times (to the response's head) are
measured per backend for `response-time` and for `dcli lb stats`.

Both modes keep to `Limits`: client connections beyond `max_connections` are closed on accept;
a request head must arrive whole within `client_header_timeout` and within `max_headers` and
`max_header_size` (408 and 431 otherwise, then the connection is closed); a body over
`client_max_body_size` gets 413.

    proxy = Proxy(backends, "http", routes=[parse_route("method=POST:writers")], log=print_event)
    server = await proxy.listen("127.0.0.1", 8080)
"""
from __future__ import annotations

import asyncio
import time
from http import HTTPStatus
from typing import Callable

import h11

from dcli.lb.body import ClientBody, ClientError
from dcli.lb.forwarded import backend_headers, response_headers
from dcli.lb.limits import ConnectionCap, Limits
from dcli.lb.routes import Route
from dcli.lb.strategies import DEFAULT_POOL, Backend, BackendSet, NoBackendError
from dcli.lb.upstream import READ_SIZE, Unreachable, Upstream, UpstreamPool, describe, split_address
from dcli.wire import errors

IDEMPOTENT = {b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"}
LINGER_S = 5.0                    # after an error answer, unread request bytes are read and dropped
LINGER_BYTES = 1024 * 1024        # for at most this long and this much (nginx's lingering close)
RETRY = object()


class Proxy:
    """Forwards clients to backends (mode 'tcp' or 'http'), reporting failures and successes to
    the BackendSet; `log(event, text, **fields)` is told of ejections and returns."""

    def __init__(self, backends: BackendSet, mode: str, *, routes: list[Route] = (),
                 log: Callable[..., None] = lambda *a, **k: None, connect_timeout: float = 2.0,
                 timeout: float = 30.0, pool_size: int = 16, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.monotonic):
        if mode not in ("tcp", "http"):
            raise errors.UsageError(f"invalid mode '{mode}': choose tcp or http")
        self.backends, self.mode, self.routes = backends, mode, list(routes)
        self.log, self.clock = log, clock
        self.connect_timeout, self.timeout, self.limits = connect_timeout, timeout, limits
        self.upstreams = UpstreamPool(pool_size, connect_timeout)
        self.clients = ConnectionCap(limits.max_connections, self._refused)

    async def listen(self, host: str, port: int) -> asyncio.Server:
        handler = self._serve_tcp if self.mode == "tcp" else self._serve_http
        return await self.clients.serve(handler, host, port)

    def close(self) -> None:
        self.upstreams.close()

    def _refused(self, count: int) -> None:
        self.log("refused", f"refused {count} client connection{'s' if count != 1 else ''}: "
                            f"--max-connections {self.limits.max_connections} reached",
                 count=count, max_connections=self.limits.max_connections)

    # ---- what happened to a backend ----

    def report_failure(self, b: Backend, reason: str, count: bool = True) -> None:
        backoff = self.backends.failed(b, count)
        if backoff is not None:
            self.log("ejected", f"ejected {b.address}: {reason} (retry in {backoff:g}s)",
                     address=b.address, reason=reason, retry_s=backoff)
            self.upstreams.drop(b.address)

    def report_success(self, b: Backend) -> None:
        if self.backends.succeeded(b):
            self.log("back", f"{b.address} is back", address=b.address)

    # ---- layer 4 ----

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = peer_ip(writer)
        tried: list[str] = []
        while True:
            try:
                b = self.backends.pick(client_ip, DEFAULT_POOL, tried)
            except NoBackendError:
                return                       # nothing to splice to: the client sees the close
            tried.append(b.address)
            b.begin()
            host, port = split_address(b.address)
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                              self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as e:
                b.end()
                self.report_failure(b, describe(e))
                continue
            b.connections += 1
            self.report_success(b)
            break
        await self._splice(b, reader, writer, up_reader, up_writer)

    async def _splice(self, b: Backend, reader, writer, up_reader, up_writer) -> None:
        """Both directions until both have ended, or until neither has carried a byte for
        idle_timeout. The backend's end of the connection counts it as no longer active at once
        (least-connections sees it before the client does)."""
        loop = asyncio.get_running_loop()
        connected = self.clock()
        first_sent: list[float] = []
        last_byte = loop.time()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                b.end()

        async def client_to_backend() -> None:
            nonlocal last_byte
            try:
                while data := await reader.read(READ_SIZE):
                    last_byte = loop.time()
                    if not first_sent:
                        first_sent.append(self.clock())
                    up_writer.write(data)
                    await up_writer.drain()
                if up_writer.can_write_eof():
                    up_writer.write_eof()
            except OSError:
                up_writer.close()

        async def backend_to_client() -> None:
            nonlocal last_byte
            measured = False
            try:
                while data := await up_reader.read(READ_SIZE):
                    last_byte = loop.time()
                    if not measured:      # response time: from the client's first bytes to the backend's
                        measured = True
                        self.backends.observe(b, self.clock() - (first_sent[0] if first_sent else connected))
                    writer.write(data)
                    await writer.drain()
                release()
                if writer.can_write_eof():
                    writer.write_eof()
            except OSError:
                release()
                writer.close()

        idle = self.limits.idle_timeout
        tasks = [asyncio.ensure_future(client_to_backend()), asyncio.ensure_future(backend_to_client())]
        try:
            pending = set(tasks)
            while pending:
                wait = max(0.0, last_byte + idle - loop.time()) if idle > 0 else None
                _done, pending = await asyncio.wait(pending, timeout=wait)
                if pending and idle > 0 and loop.time() - last_byte >= idle:
                    break                   # idle both ways: both sides are closed below
        finally:
            for t in tasks:
                t.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            release()
            up_writer.close()
            writer.close()
        for outcome in outcomes:         # OSError is handled in each direction: anything else is a bug
            if isinstance(outcome, Exception):
                raise outcome

    # ---- layer 7 ----

    def route(self, request: h11.Request) -> str:
        for r in self.routes:
            if r.matches(request.method, request.target, request.headers):
                return r.pool
        return DEFAULT_POOL

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = peer_ip(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_size)
        first = True
        try:
            while True:
                request = await self._read_head(conn, reader, first)
                first = False
                if not isinstance(request, h11.Request):
                    return                         # the client closed, or kept still, between requests
                line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
                problem = self.limits.head_problem(line, request.headers)
                if problem:
                    raise ClientError(431, problem)
                keep = await self._forward(conn, reader, writer, request, client_ip)
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except ClientError as e:
            await self._refuse(conn, reader, writer, e)
        except (OSError, asyncio.TimeoutError):
            pass

    async def _read_head(self, conn: h11.Connection, reader: asyncio.StreamReader, first: bool):
        """The next request's head, or None when a kept-alive connection stays silent for
        keepalive_timeout. The head must be whole within client_header_timeout of the
        connection's start (its first request) or of its first byte (a later one), however
        slowly its bytes come."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.client_header_timeout if first or conn.trailing_data[0] else None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as e:
                raise ClientError(e.error_status_hint, f"bad request: {e}") from None
            if event is not h11.NEED_DATA:
                return event
            if deadline is None:
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), self.limits.keepalive_timeout)
                except asyncio.TimeoutError:
                    return None
                deadline = loop.time() + self.limits.client_header_timeout
            else:
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    raise ClientError(408, "request head not received in time") from None
            conn.receive_data(data)

    async def _refuse(self, conn: h11.Connection, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, e: ClientError) -> None:
        """The client's error answer, if it can still have one, then a lingering close: what it
        is still sending is read and dropped for a while, so that its socket is not reset before
        it has read the answer."""
        if e.status is None or conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            await respond(conn, writer, e.status, f"{e.text}\n", close=True,
                          send_timeout=self.limits.send_timeout)
            if writer.can_write_eof():
                writer.write_eof()

            async def drop() -> None:
                dropped = 0
                while dropped < LINGER_BYTES and (data := await reader.read(READ_SIZE)):
                    dropped += len(data)
            await asyncio.wait_for(drop(), LINGER_S)
        except (OSError, asyncio.TimeoutError, h11.LocalProtocolError):
            pass

    async def _forward(self, conn, reader, writer, request: h11.Request, client_ip: str) -> bool:
        """Send one request to a backend (the next one on failure) and its response back.
        Returns whether the client connection can carry another request."""
        pool = self.route(request)
        body = ClientBody(conn, reader, writer, request, self.limits)
        await body.hold()
        headers = backend_headers(request, client_ip, self.limits.trusts(client_ip), body.framing(request.method))
        tried: list[str] = []
        while True:
            try:
                b = self.backends.pick(client_ip, pool, tried)
            except NoBackendError as e:
                await respond(conn, writer, 502, f"{e}\n", send_timeout=self.limits.send_timeout)
                return True
            tried.append(b.address)
            outcome = await self._exchange(b, conn, writer, request, headers, body)
            if outcome is not RETRY:
                return outcome

    async def _exchange(self, b: Backend, conn, writer, request, headers, body: ClientBody):
        """One attempt at `b`: True/False as _forward, or RETRY (try another backend)."""
        b.begin()
        try:
            try:
                up, head, started = await self._send(b, request, headers, body)
            except Unreachable as e:
                self.report_failure(b, str(e))
                return RETRY
            except (OSError, asyncio.TimeoutError, h11.ProtocolError, EOFError) as e:
                self.report_failure(b, describe(e))
                if request.method in IDEMPOTENT and body.replayable:
                    return RETRY
                await respond(conn, writer, 502, f"{b.address} did not answer: {describe(e)}\n",
                              send_timeout=self.limits.send_timeout)
                return True
            self.backends.observe(b, self.clock() - started)
            self.report_success(b)
            return await self._relay(b, up, head, conn, writer)
        finally:
            b.end()

    async def _send(self, b: Backend, request: h11.Request, headers, body: ClientBody):
        """The request sent and the response's head read: (upstream, head, when sent). A kept-alive
        connection the backend closed meanwhile is replaced by a new one, once; a body that is
        not held whole goes on a new connection."""
        for attempt in range(2):
            up, reused = await self.upstreams.acquire(b, fresh=not body.replayable)
            started = self.clock()
            try:
                up.send(h11.Request(method=request.method, target=request.target, headers=headers))
                for chunk in body.held:
                    up.send(h11.Data(data=chunk))
                await asyncio.wait_for(up.writer.drain(), self.timeout)
                while (chunk := await body.next_chunk()) is not None:
                    up.send(h11.Data(data=chunk))
                    await asyncio.wait_for(up.writer.drain(), self.timeout)    # the backend reads it first
                up.send(h11.EndOfMessage())
                await asyncio.wait_for(up.writer.drain(), self.timeout)
                while True:
                    event = await asyncio.wait_for(up.next_event(), self.timeout)
                    if isinstance(event, h11.Response):
                        return up, event, started
                    if isinstance(event, h11.ConnectionClosed):
                        raise EOFError("closed the connection without answering")
            except (OSError, h11.ProtocolError, EOFError):
                up.close()
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                up.close()
                raise
        raise AssertionError("unreachable")

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait for the client to take what was written, for at most send_timeout (TimeoutError)."""
        await asyncio.wait_for(writer.drain(), self.limits.send_timeout)

    async def _relay(self, b: Backend, up: Upstream, head: h11.Response, conn, writer) -> bool:
        """The response's head and body to the client; the backend connection back to its pool."""
        done = False
        try:
            writer.write(conn.send(h11.Response(status_code=head.status_code, reason=head.reason,
                                                headers=response_headers(head.headers))))
            while True:
                try:
                    event = await asyncio.wait_for(up.next_event(), self.timeout)
                except (OSError, asyncio.TimeoutError, h11.ProtocolError) as e:
                    self.report_failure(b, f"response cut: {describe(e)}")
                    return False             # the client's response is cut short: close it too
                if isinstance(event, h11.Data):
                    writer.write(conn.send(event))
                    await self._drain(writer)        # a client that does not read is given up on
                elif isinstance(event, h11.EndOfMessage):
                    break
            done = True
            # back to the pool before the client hears the end: its next request can reuse it
            self.upstreams.release(b, up, keep=b.address in self.backends.backends)
            writer.write(conn.send(h11.EndOfMessage()))
            await self._drain(writer)
            return True
        finally:
            if not done:
                up.close()


def peer_ip(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else ""


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def respond(conn: h11.Connection, writer: asyncio.StreamWriter, status: int, text: str,
                  close: bool = False, send_timeout: float = 60.0) -> None:
    """A short plain-text response of the balancer's own (502, 400, 408, 413, 431)."""
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    writer.write(conn.send(h11.Response(status_code=status, headers=headers, reason=reason(status))))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await asyncio.wait_for(writer.drain(), send_timeout)
