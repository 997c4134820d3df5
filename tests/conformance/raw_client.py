"""A ZooKeeper client on a bare socket, for what kazoo hides: the order of replies and
notifications on one connection, the reply header's zxid, a notification's state. Records are
dcli's own jute records (dcli/wire/zk_records.py); every read is bounded by a deadline.
"""
from __future__ import annotations

import socket
import struct
import time

from dcli.wire import zk_records as rec
from dcli.wire.jute import Reader, encode
from dcli.wire.zk_protocol import OpCode, frame

TIMEOUT_S = 15.0


class RawSession:
    def __init__(self, address: str, timeout_ms: int = 10_000):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        self._buf = b""
        hello = encode(rec.ConnectRequest(0, 0, timeout_ms, 0, bytes(16))) + b"\x00"
        self.sock.sendall(frame(hello))
        self.connect_response = rec.ConnectResponse.read(Reader(self._frame(time.monotonic() + TIMEOUT_S)))
        self.session_id = self.connect_response.sessionId

    def request(self, xid: int, opcode: int, record=None) -> bytes:
        """One framed request (send several at once with `send`)."""
        return frame(struct.pack("!ii", xid, int(opcode)) + (encode(record) if record is not None else b""))

    def send(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(frames))

    def _frame(self, deadline: float) -> bytes:
        while True:
            if len(self._buf) >= 4:
                n = struct.unpack_from("!i", self._buf)[0]
                if len(self._buf) >= 4 + n:
                    out, self._buf = self._buf[4:4 + n], self._buf[4 + n:]
                    return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self._buf += chunk

    def frames_until(self, xids: set[int], timeout: float = TIMEOUT_S) -> list[tuple]:
        """Every frame, in arrival order, until the replies to all of `xids` are in:
        (xid, zxid, err, body) with a notification's body decoded as (type, state, path)."""
        deadline = time.monotonic() + timeout
        waiting, out = set(xids), []
        while waiting:
            data = self._frame(deadline)
            r = Reader(data)
            head = rec.ReplyHeader.read(r)
            body = data[r.offset:]
            if head.xid == -1:
                ev = rec.WatcherEvent.read(r)
                body = (ev.type, ev.state, ev.path)
            waiting.discard(head.xid)
            out.append((head.xid, head.zxid, head.err, body))
        return out

    def close(self) -> None:
        try:
            self.send(self.request(1_000_000, OpCode.CLOSE_SESSION))
            self.frames_until({1_000_000}, timeout=5)
        except OSError:
            pass
        finally:
            self.sock.close()
