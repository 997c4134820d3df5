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
    decoder.append(data)                         # or: recv_into(decoder.get_buffer()), buffer_updated(n)
    frame = decoder.next()                       # None until a whole frame is there
    decoder.max_payload = 64 << 20
"""
from __future__ import annotations

import enum
import struct
from typing import NamedTuple

HEADER = struct.Struct(">IBHQ")
HEADER_SIZE = HEADER.size                   # 15
MAX_PAYLOAD = 64 << 20                      # as the gRPC channels' max message length today
HANDSHAKE_MAX_PAYLOAD = 4096                # until the peer has proved who it is
RECV_BUFFER = 256 << 10                     # a connection's receive buffer, unless a frame needs more
MIN_RECV = 64 << 10                         # room offered to each receive
KEEP_BUFFER = 8 << 20                       # a buffer grown for big frames is kept up to this size


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
    handshake) applies from the second on, even when both came in one read.

    Bytes come in either by `append(data)` or, without a copy, by receiving straight into
    `get_buffer()` and reporting with `buffer_updated(n)` (asyncio's BufferedProtocol). The
    buffer grows only to hold a frame whose header has passed the checks; grown beyond
    `KEEP_BUFFER`, it shrinks back once that frame is out.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray(RECV_BUFFER)
        self._pos = 0                       # unread bytes are _buf[_pos:_end]
        self._end = 0
        self._need = HEADER_SIZE            # bytes the next frame needs from _pos, once known

    @property
    def buffered(self) -> int:
        return self._end - self._pos

    @property
    def complete(self) -> bool:
        """A whole frame (or a header that fails the checks) is waiting: `next` will not say None."""
        return self._end - self._pos >= self._need

    def wanted(self) -> int:
        """How many more bytes complete the frame being read (at least 1)."""
        return max(1, self._need - self.buffered)

    def _make_room(self, at_least: int) -> None:
        buf, pos, end = self._buf, self._pos, self._end
        if len(buf) - end >= at_least and pos + self._need <= len(buf):
            return
        size = max(RECV_BUFFER, self._need, end - pos + at_least)
        if size <= len(buf) <= KEEP_BUFFER:
            buf[:end - pos] = buf[pos:end]         # same size: moves the unread bytes to the front
        else:                                       # grow for a big frame, or shrink after one
            self._buf = bytearray(size)
            self._buf[:end - pos] = buf[pos:end]
        self._pos, self._end = 0, end - pos

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        self._make_room(MIN_RECV)
        return memoryview(self._buf)[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes

    def append(self, data: bytes) -> None:
        self._make_room(len(data))
        self._buf[self._end:self._end + len(data)] = data
        self._end += len(data)

    def next(self) -> Frame | None:
        """The next complete frame, or None until more bytes come; FrameError for a bad header."""
        buf, pos, end = self._buf, self._pos, self._end
        if end - pos < HEADER_SIZE:
            self._need = HEADER_SIZE
            return None
        length, kind, method, id_ = HEADER.unpack_from(buf, pos)
        self._check(length, kind, id_)
        stop = pos + HEADER_SIZE + length
        if stop > end:
            self._need = HEADER_SIZE + length
            return None
        with memoryview(buf) as view:       # one copy of the payload
            payload = bytes(view[pos + HEADER_SIZE:stop])
        if stop == end:
            self._pos = self._end = 0
            if len(buf) > KEEP_BUFFER:              # a very big frame has gone: give its room back
                self._buf = bytearray(RECV_BUFFER)
        else:
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
