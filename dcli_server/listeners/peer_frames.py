"""The peer wire format: length-prefixed frames, checked before anything is allocated.

Every frame is a 15-byte header and a payload::

    length:u32  kind:u8  method:u16  id:u64  payload[length]        (big-endian)

`kind` says what the frame is (one-way message, request, response, ...), `method` which domain
handler it is for (Raft, forward, KV, broker fetch: numbers the wiring assigns), `id` matches a
response to its request (0 for one-way messages). The decoder is sans-IO: `append` takes
whatever bytes arrived and `next` returns the next complete frame. A header with an unknown kind,
an id that does not fit its kind or a length above the limit raises `FrameError` at once, before
the payload is waited for or buffered, so a peer cannot make us allocate more than
`max_payload` + one read.

    decoder = FrameDecoder(max_payload=4096)     # small until the peer has authenticated
    decoder.append(data)
    frame = decoder.next()                       # None until a whole frame is there
    decoder.max_payload = 64 << 20
    stream = FrameStream(reader, writer, decoder)
    stream.write(Frame(Kind.ONEWAY, 1, 0, payload)); await stream.drain()
    frame = await stream.read()                  # raises ConnectionClosed at EOF
"""
from __future__ import annotations

import asyncio
import enum
import struct
from typing import NamedTuple

HEADER = struct.Struct(">IBHQ")
HEADER_SIZE = HEADER.size                   # 15
MAX_PAYLOAD = 64 << 20                      # as the gRPC channels' max message length today
HANDSHAKE_MAX_PAYLOAD = 4096                # until the peer has proved who it is
READ_CHUNK = 256 << 10
STREAM_LIMIT = 1 << 20                      # asyncio's StreamReader pauses the socket at twice this
WRITE_HIGH_WATER = 1 << 20                  # drain() waits while more than this is unsent


class Kind(enum.IntEnum):
    HELLO = 1           # handshake frames, before anything else
    ONEWAY = 2          # a message that gets no answer (Raft)
    REQUEST = 3         # wants one RESPONSE or ERROR with the same id
    RESPONSE = 4
    ERROR = 5           # the handler failed: payload is a UTF-8 message
    PING = 6            # keepalive: the other side answers PONG
    PONG = 7
    BUSY = 8            # the request was not run: too many from this peer in progress; retry


_KINDS = frozenset(int(k) for k in Kind)
_NEEDS_ID = frozenset((Kind.REQUEST, Kind.RESPONSE, Kind.ERROR, Kind.BUSY))


class Frame(NamedTuple):
    kind: int
    method: int
    id: int
    payload: bytes


class FrameError(Exception):
    """The bytes are not a valid frame: the connection is closed, its peer is broken or hostile."""


class ConnectionClosed(Exception):
    """The other side closed the connection (or it broke) between or inside frames."""


def header(kind: int, method: int, id_: int, length: int) -> bytes:
    """Encode a header; raises FrameError (or struct.error) for values out of range."""
    if kind not in _KINDS:
        raise FrameError(f"unknown frame kind {kind}")
    return HEADER.pack(length, kind, method, id_)


def encode(frame: Frame) -> bytes:
    return header(frame.kind, frame.method, frame.id, len(frame.payload)) + frame.payload


class FrameDecoder:
    """Cuts frames out of a byte stream one at a time, checking each header as soon as its 15
    bytes are there. One at a time, so that a limit raised between two frames (at the end of the
    handshake) applies from the second on, even when both came in one read."""

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0                       # where the next frame starts in _buf
        self._need = HEADER_SIZE            # bytes the next frame needs from _pos, once known

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def wanted(self) -> int:
        """How many more bytes complete the frame being read (at least 1)."""
        return max(1, self._need - self.buffered)

    def append(self, data: bytes) -> None:
        if self._pos and self._pos * 2 >= len(self._buf):     # drop what was consumed, now and then
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def next(self) -> Frame | None:
        """The next complete frame, or None until more bytes come; FrameError for a bad header."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            self._need = HEADER_SIZE
            return None
        length, kind, method, id_ = HEADER.unpack_from(buf, pos)
        self._check(length, kind, id_)
        stop = pos + HEADER_SIZE + length
        if stop > len(buf):
            self._need = HEADER_SIZE + length
            return None
        with memoryview(buf) as view:       # one copy of the payload; released before buf changes
            payload = bytes(view[pos + HEADER_SIZE:stop])
        self._pos = stop
        self._need = HEADER_SIZE
        return Frame(kind, method, id_, payload)

    def feed(self, data: bytes) -> list[Frame]:
        """append, then every frame that is complete."""
        self.append(data)
        frames = []
        while (frame := self.next()) is not None:
            frames.append(frame)
        return frames

    def _check(self, length: int, kind: int, id_: int) -> None:
        if kind not in _KINDS:
            raise FrameError(f"unknown frame kind {kind}")
        if length > self.max_payload:
            raise FrameError(f"frame of {length} bytes is over the limit of {self.max_payload}")
        if (kind in _NEEDS_ID) != (id_ != 0):
            raise FrameError(f"frame kind {Kind(kind).name} with id {id_}")


class FrameStream:
    """Frames over one asyncio stream pair: `read` the next frame, `write` (buffered), `drain`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 decoder: FrameDecoder | None = None):
        self.reader = reader
        self.writer = writer
        self.decoder = decoder or FrameDecoder(HANDSHAKE_MAX_PAYLOAD)

    @property
    def peername(self) -> str:
        name = self.writer.get_extra_info("peername")
        return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)

    async def read(self) -> Frame:
        decoder = self.decoder
        while True:
            frame = decoder.next()
            if frame is not None:
                return frame
            try:
                data = await self.reader.read(max(READ_CHUNK, decoder.wanted()))
            except (ConnectionError, OSError) as e:
                raise ConnectionClosed(str(e) or type(e).__name__) from None
            if not data:
                raise ConnectionClosed("end of stream" + (" inside a frame" if decoder.buffered else ""))
            decoder.append(data)

    def write(self, frame: Frame) -> None:
        self.writer.writelines((header(frame.kind, frame.method, frame.id, len(frame.payload)), frame.payload))

    def write_many(self, frames) -> None:
        parts = []
        for f in frames:
            parts.append(header(f.kind, f.method, f.id, len(f.payload)))
            parts.append(f.payload)
        self.writer.writelines(parts)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            raise ConnectionClosed(str(e) or type(e).__name__) from None

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
