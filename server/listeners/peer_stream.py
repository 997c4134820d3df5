"""FrameStream: frames over one TCP connection, received straight into the decoder's buffer.

An `asyncio.BufferedProtocol` underneath: the event loop receives into `FrameDecoder`'s own
buffer (no bytes object per receive, no copy into a StreamReader and out again), and each
payload is copied once, when its frame is cut out. Measured against asyncio's streams in
benchmarks/peer_transport.py. Flow control both ways:

- reading pauses while at least `READ_PAUSE` bytes of complete frames wait for `read` (the
  socket then fills and TCP pushes back on the peer), and resumes as they are taken;
- `drain` waits while the transport holds more than `WRITE_HIGH_WATER` unsent bytes.

    stream = await open_frame_stream("127.0.0.1", 7190, max_payload=4096)
    stream.write(Frame(Kind.HELLO, 0, 0, hello)); await stream.drain()
    frame = await stream.read()                  # ConnectionClosed at the end, FrameError if bad
    server = await serve_frames(on_stream, "127.0.0.1", 0)    # on_stream(stream) per connection

With TLS (peer_tls.py) the dialling side opens the stream with `tls=` and the accepting side
serves with `tls=True`: a connection then reads nothing until `start_tls` has run the handshake
in the caller's task (so that its failure is the caller's to log, and to time out).
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from dcli_server.listeners.peer_frames import HANDSHAKE_MAX_PAYLOAD, ConnectionClosed, Frame, FrameDecoder, header

READ_PAUSE = 256 << 10
WRITE_HIGH_WATER = 1 << 20


class _FrameProtocol(asyncio.BufferedProtocol):
    def __init__(self, decoder: FrameDecoder, on_stream: Callable[["FrameStream"], Awaitable[None]] | None,
                 tls_pending: bool = False):
        self.tls_pending = tls_pending          # read nothing before start_tls
        self.stream = FrameStream(self, decoder)
        self.transport: asyncio.Transport | None = None
        self.lost: str | None = None            # why the connection ended, once it has
        self.paused = False                     # reading paused: frames wait for `read`
        self._on_stream = on_stream
        self._reader: asyncio.Future | None = None
        self._writable: asyncio.Future | None = None
        self._done = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.tls_pending:
            transport.pause_reading()           # the TLS layer is the first to read
        if self._on_stream is not None:
            self.task = asyncio.get_running_loop().create_task(self._on_stream(self.stream))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.stream.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        decoder = self.stream.decoder
        decoder.buffer_updated(nbytes)
        if decoder.complete:
            if decoder.buffered >= READ_PAUSE and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            self._wake_reader()

    def eof_received(self) -> bool:
        self._end("end of stream")
        return False                            # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("end of stream" if exc is None else (str(exc) or type(exc).__name__))
        if not self._done.done():
            self._done.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _end(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
        self._wake_reader()
        self.resume_writing()

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)


class FrameStream:
    """`read` the next frame, `write` (buffered in the transport), `drain`, `close`."""

    def __init__(self, protocol: _FrameProtocol, decoder: FrameDecoder):
        self._protocol = protocol
        self.decoder = decoder

    @property
    def transport(self) -> asyncio.Transport:
        return self._protocol.transport

    @property
    def peername(self) -> str:
        name = self._protocol.transport.get_extra_info("peername")
        return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)

    def get_extra_info(self, name: str):
        return self._protocol.transport.get_extra_info(name)

    async def read(self) -> Frame:
        protocol, decoder = self._protocol, self.decoder
        while True:
            frame = decoder.next()
            if frame is not None:
                if protocol.paused and (decoder.buffered < READ_PAUSE // 2 or not decoder.complete):
                    protocol.paused = False
                    protocol.transport.resume_reading()
                return frame
            if protocol.lost is not None:
                raise ConnectionClosed(protocol.lost + (" inside a frame" if decoder.buffered else ""))
            if protocol.paused:                 # cannot happen with a whole frame missing; be safe
                protocol.paused = False
                protocol.transport.resume_reading()
            protocol._reader = asyncio.get_running_loop().create_future()
            try:
                await protocol._reader
            finally:
                protocol._reader = None

    async def start_tls(self, context, *, server_side: bool, server_hostname: str | None = None,
                        timeout: float = 10.0) -> None:
        """Run the TLS handshake on this (so far silent) connection; what follows is encrypted.
        ssl.SSLError or ConnectionError when it fails; the connection is then closed."""
        protocol = self._protocol
        if protocol.lost is not None or protocol.transport.is_closing():
            raise ConnectionResetError(f"closed before the TLS handshake: {protocol.lost or 'closing'}")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(protocol.transport, protocol, context, server_side=server_side,
                                         server_hostname=server_hostname, ssl_handshake_timeout=timeout)
        if transport is None:                   # closed during the handshake
            raise ConnectionResetError("closed during the TLS handshake")
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        protocol.transport = transport
        protocol.tls_pending = False

    def write(self, frame: Frame) -> None:
        if not self._protocol.transport.is_closing():
            self._protocol.transport.writelines(
                (header(frame.kind, frame.method, frame.id, len(frame.payload)), frame.payload))

    def write_many(self, frames) -> None:
        parts = []
        for f in frames:
            parts.append(header(f.kind, f.method, f.id, len(f.payload)))
            parts.append(f.payload)
        if not self._protocol.transport.is_closing():
            self._protocol.transport.writelines(parts)

    def write_raw(self, data: bytes) -> None:
        """Bytes as they are: for tests that play a broken peer."""
        self._protocol.transport.write(data)

    async def drain(self) -> None:
        protocol = self._protocol
        if protocol.lost is not None:
            raise ConnectionClosed(protocol.lost)
        if protocol._writable is not None and not protocol._writable.done():
            await protocol._writable
            if protocol.lost is not None:
                raise ConnectionClosed(protocol.lost)

    def is_closing(self) -> bool:
        return self._protocol.transport.is_closing()

    def close_soon(self) -> None:
        """Close after what is buffered is sent (if the peer reads); does not wait."""
        if not self._protocol.transport.is_closing():
            self._protocol.transport.close()

    def abort(self) -> None:
        self._protocol.transport.abort()

    async def close(self, timeout: float = 1.0) -> None:
        """Close, letting buffered bytes go for at most `timeout` s (a peer that does not read
        would keep them, and us, waiting for ever), then abort."""
        self.close_soon()
        try:
            await asyncio.wait_for(asyncio.shield(self._protocol._done), timeout)
        except asyncio.TimeoutError:
            self.abort()
            await self._protocol._done


async def open_frame_stream(host: str, port: int, max_payload: int = HANDSHAKE_MAX_PAYLOAD, *,
                            tls=None) -> FrameStream:
    """A connection to host:port; with `tls` (an ssl.SSLContext) the TLS handshake is done first,
    the listener's certificate checked against `host`."""
    loop = asyncio.get_running_loop()
    protocol = _FrameProtocol(FrameDecoder(max_payload), None, tls_pending=tls is not None)
    await loop.create_connection(lambda: protocol, host, port)
    if tls is not None:
        try:
            await protocol.stream.start_tls(tls, server_side=False, server_hostname=host)
        except BaseException:
            protocol.stream.abort()
            raise
    return protocol.stream


async def serve_frames(on_stream: Callable[[FrameStream], Awaitable[None]], host: str, port: int,
                       max_payload: int = HANDSHAKE_MAX_PAYLOAD, *, tls: bool = False) -> asyncio.AbstractServer:
    """Listen; each connection gets `on_stream(stream)` in a task of its own (which must not raise).
    `tls`: the connections wait, unread, for on_stream to call `stream.start_tls`."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _FrameProtocol(FrameDecoder(max_payload), on_stream, tls), host, port)
