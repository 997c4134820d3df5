"""The proxy: accepts clients and forwards them to the backend the strategy picks.

tcp (layer 4): each client connection is spliced to one backend connection, both ways, until
both sides have finished. A backend that refuses the connection is ejected and the next one is
tried, so the client never sees it.

http (layer 7, HTTP/1.1 parsed by h11): each request is routed to a pool (see `Route`), sent to
a backend over a keep-alive connection from that backend's idle pool (adding X-Forwarded-For),
and its response streamed back. A backend that cannot be reached is ejected and the request goes
to the next one (requests already sent are sent again only when their method is idempotent);
when none answers the client gets 502. Response times (to the response's head) are measured per
backend for `response-time` and for `dcli lb stats`.

    proxy = Proxy(backends, "http", routes=[parse_route("method=POST:writers")], log=print_event)
    server = await proxy.listen("127.0.0.1", 8080)
"""
from __future__ import annotations

import asyncio
import os
import time
from http import HTTPStatus
from typing import Callable

import h11

from dcli.lb.routes import Route
from dcli.lb.strategies import DEFAULT_POOL, Backend, BackendSet, NoBackendError
from dcli.wire import errors

READ_SIZE = 64 * 1024
MAX_HEAD = 64 * 1024              # request line and headers
MAX_BODY = 64 * 1024 * 1024       # request bodies are read whole (so that they can be sent again)
IDLE_TIMEOUT_S = 120.0            # a keep-alive client connection with no request for this long is closed
IDEMPOTENT = {b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"}
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
              b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"}
RETRY = object()


def split_address(address: str) -> tuple[str, int]:
    """'host:port' (port 0-65535) as (host, port); errors.UsageError otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise errors.UsageError(f"invalid address '{address}': expected HOST:PORT")
    return host.strip("[]"), int(port)


def describe(e: BaseException) -> str:
    """A short reason for the log: 'connection refused', 'timed out', ..."""
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.errno:
        return os.strerror(e.errno).lower()
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


class Upstream:
    """One connection to a backend, h11 speaking the client's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    def send(self, event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)

    async def next_event(self):
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.reader.read(READ_SIZE))

    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Unreachable(Exception):
    """The backend could not be connected to: nothing was sent."""


class UpstreamPool:
    """Idle keep-alive connections per backend address (the most recently used is reused first)."""

    def __init__(self, size: int, connect_timeout: float):
        self.size, self.connect_timeout = size, connect_timeout
        self.idle: dict[str, list[Upstream]] = {}

    async def acquire(self, backend: Backend) -> tuple[Upstream, bool]:
        """A connection to `backend` and whether it was reused; Unreachable if none can be made."""
        idle = self.idle.get(backend.address, [])
        while idle:
            up = idle.pop()
            if up.alive():
                return up, True
            up.close()
        host, port = split_address(backend.address)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise Unreachable(describe(e)) from None
        backend.connections += 1
        return Upstream(reader, writer), False

    def release(self, backend: Backend, up: Upstream, keep: bool = True) -> None:
        idle = self.idle.setdefault(backend.address, [])
        if keep and up.conn.our_state is h11.DONE and up.conn.their_state is h11.DONE and len(idle) < self.size:
            up.conn.start_next_cycle()
            idle.append(up)
        else:
            up.close()

    def drop(self, address: str) -> None:
        for up in self.idle.pop(address, []):
            up.close()

    def close(self) -> None:
        for address in list(self.idle):
            self.drop(address)


class Proxy:
    """Forwards clients to backends (mode 'tcp' or 'http'), reporting failures and successes to
    the BackendSet; `log(event, text, **fields)` is told of ejections and returns."""

    def __init__(self, backends: BackendSet, mode: str, *, routes: list[Route] = (),
                 log: Callable[..., None] = lambda *a, **k: None, connect_timeout: float = 2.0,
                 timeout: float = 30.0, pool_size: int = 16, clock: Callable[[], float] = time.monotonic):
        if mode not in ("tcp", "http"):
            raise errors.UsageError(f"invalid mode '{mode}': choose tcp or http")
        self.backends, self.mode, self.routes = backends, mode, list(routes)
        self.log, self.clock = log, clock
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.upstreams = UpstreamPool(pool_size, connect_timeout)

    async def listen(self, host: str, port: int) -> asyncio.Server:
        handler = self._serve_tcp if self.mode == "tcp" else self._serve_http
        return await asyncio.start_server(handler, host, port, reuse_address=True)

    def close(self) -> None:
        self.upstreams.close()

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
        try:
            while True:
                try:
                    b = self.backends.pick(client_ip, DEFAULT_POOL, tried)
                except NoBackendError:
                    return                   # nothing to splice to: the client sees the close
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
        finally:
            writer.close()

    async def _splice(self, b: Backend, reader, writer, up_reader, up_writer) -> None:
        """Both directions until both have ended. The backend's end of the connection counts it
        as no longer active at once (least-connections sees it before the client does)."""
        connected = self.clock()
        first_sent: list[float] = []
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                b.end()

        async def client_to_backend() -> None:
            try:
                while data := await reader.read(READ_SIZE):
                    if not first_sent:
                        first_sent.append(self.clock())
                    up_writer.write(data)
                    await up_writer.drain()
                if up_writer.can_write_eof():
                    up_writer.write_eof()
            except OSError:
                up_writer.close()

        async def backend_to_client() -> None:
            measured = False
            try:
                while data := await up_reader.read(READ_SIZE):
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

        tasks = [asyncio.ensure_future(client_to_backend()), asyncio.ensure_future(backend_to_client())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            release()
            up_writer.close()

    # ---- layer 7 ----

    def route(self, request: h11.Request) -> str:
        for r in self.routes:
            if r.matches(request.method, request.target, request.headers):
                return r.pool
        return DEFAULT_POOL

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = peer_ip(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while True:
                request = await self._next(conn, reader, IDLE_TIMEOUT_S)
                if not isinstance(request, h11.Request):
                    return                         # the client closed between requests
                body = await self._read_body(conn, reader, writer)
                if body is None:
                    await respond(conn, writer, 413, "request body too large\n", close=True)
                    return
                keep = await self._forward(conn, writer, request, body, client_ip)
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError as e:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                try:
                    await respond(conn, writer, e.error_status_hint, f"bad request: {e}\n", close=True)
                except (OSError, h11.LocalProtocolError):
                    pass
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _next(conn: h11.Connection, reader: asyncio.StreamReader, timeout: float):
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await asyncio.wait_for(reader.read(READ_SIZE), timeout))

    async def _read_body(self, conn, reader, writer) -> bytes | None:
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks, size = [], 0
        while True:
            event = await self._next(conn, reader, self.timeout)
            if isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    return None
                chunks.append(event.data)

    async def _forward(self, conn, writer, request: h11.Request, body: bytes, client_ip: str) -> bool:
        """Send one request to a backend (the next one on failure) and its response back.
        Returns whether the client connection can carry another request."""
        pool = self.route(request)
        headers = request_headers(request, body, client_ip)
        tried: list[str] = []
        while True:
            try:
                b = self.backends.pick(client_ip, pool, tried)
            except NoBackendError as e:
                await respond(conn, writer, 502, f"{e}\n")
                return True
            tried.append(b.address)
            outcome = await self._exchange(b, conn, writer, request, headers, body)
            if outcome is not RETRY:
                return outcome

    async def _exchange(self, b: Backend, conn, writer, request, headers, body):
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
                if request.method in IDEMPOTENT:
                    return RETRY
                await respond(conn, writer, 502, f"{b.address} did not answer: {describe(e)}\n")
                return True
            self.backends.observe(b, self.clock() - started)
            self.report_success(b)
            return await self._relay(b, up, head, conn, writer)
        finally:
            b.end()

    async def _send(self, b: Backend, request: h11.Request, headers, body):
        """The request sent and the response's head read: (upstream, head, when sent). A kept-alive
        connection the backend closed meanwhile is replaced by a new one, once."""
        for attempt in range(2):
            up, reused = await self.upstreams.acquire(b)
            started = self.clock()
            try:
                up.send(h11.Request(method=request.method, target=request.target, headers=headers))
                if body:
                    up.send(h11.Data(data=body))
                up.send(h11.EndOfMessage())
                await up.writer.drain()
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
                    await writer.drain()
                elif isinstance(event, h11.EndOfMessage):
                    break
            done = True
            # back to the pool before the client hears the end: its next request can reuse it
            self.upstreams.release(b, up, keep=b.address in self.backends.backends)
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            return True
        finally:
            if not done:
                up.close()


def peer_ip(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else ""


def request_headers(request: h11.Request, body: bytes, client_ip: str) -> list[tuple[bytes, bytes]]:
    """The client's headers less hop-by-hop ones and framing (h11 frames the body again), with
    the client's address added to X-Forwarded-For."""
    out, forwarded, host = [], [], False
    for name, value in request.headers:
        if name in HOP_BY_HOP or name == b"content-length":
            continue
        if name == b"x-forwarded-for":
            forwarded.append(value)
            continue
        host = host or name == b"host"
        out.append((name, value))
    if not host:
        out.append((b"host", b"backend"))
    forwarded.append(client_ip.encode())
    out.append((b"x-forwarded-for", b", ".join(forwarded)))
    if body or request.method in (b"POST", b"PUT", b"PATCH"):
        out.append((b"content-length", str(len(body)).encode()))
    return out


def response_headers(headers) -> list[tuple[bytes, bytes]]:
    """The backend's headers less hop-by-hop ones (h11 frames the body for the client)."""
    return [(n, v) for n, v in headers if n not in HOP_BY_HOP]


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def respond(conn: h11.Connection, writer: asyncio.StreamWriter, status: int, text: str,
                  close: bool = False) -> None:
    """A short plain-text response of the balancer's own (502, 400, 413)."""
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    writer.write(conn.send(h11.Response(status_code=status, headers=headers, reason=reason(status))))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
