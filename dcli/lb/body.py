"""A request's body as it comes from the client: read in chunks of at most READ_SIZE bytes, each
read within `client_body_timeout`, counted against `client_max_body_size`, and never held whole.

The first REPLAY_SIZE bytes are held before a backend is chosen: a body that ends within them
(most requests) can be sent again to another backend if the first fails; a longer one is streamed
to one backend as it arrives, so memory stays bounded whatever its size.

    body = ClientBody(conn, reader, writer, request, limits)
    await body.hold()                 # ClientError(413) when the declared length is over the maximum
    framing = body.framing(request.method)
    for chunk in body.held: ...
    while (chunk := await body.next_chunk()) is not None: ...   # the rest, if not body.complete
"""
from __future__ import annotations

import asyncio

import h11

from dcli.lb.limits import Limits

READ_SIZE = 64 * 1024
REPLAY_SIZE = 64 * 1024
BODY_METHODS = (b"POST", b"PUT", b"PATCH")


class ClientError(Exception):
    """The client, not a backend, ended the exchange: it is answered `status` (None: it has gone,
    or has been answered already) and its connection closed."""

    def __init__(self, status: int | None, text: str = ""):
        super().__init__(text)
        self.status, self.text = status, text


def declared_length(request: h11.Request) -> int | None:
    """Content-Length (h11 has checked it is one number), None when the body is chunked."""
    for name, value in request.headers:
        if name == b"transfer-encoding":
            return None
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)
    return 0


class ClientBody:
    def __init__(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 request: h11.Request, limits: Limits):
        self.conn, self.reader, self.writer, self.limits = conn, reader, writer, limits
        self.declared = declared_length(request)
        self.held: list[bytes] = []
        self.held_size = 0
        self.received = 0
        self.complete = False
        self.streamed = False          # bytes beyond the held ones were read: it cannot be sent again

    async def hold(self) -> None:
        """Check the declared length, then read until the end or REPLAY_SIZE bytes are held."""
        if self.declared is not None and self.limits.body_too_large(self.declared):
            raise ClientError(413, f"request body of {self.declared} bytes, more than the "
                                   f"{self.limits.client_max_body_size} allowed")
        if self.conn.they_are_waiting_for_100_continue:
            self.writer.write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        while self.held_size < REPLAY_SIZE:
            chunk = await self._read()
            if chunk is None:
                return
            self.held.append(chunk)
            self.held_size += len(chunk)

    @property
    def replayable(self) -> bool:
        return self.complete

    def framing(self, method: bytes) -> list[tuple[bytes, bytes]]:
        """The framing header the body is sent with: its length when known, chunked otherwise."""
        if self.complete:
            if self.held_size or method in BODY_METHODS:
                return [(b"content-length", str(self.held_size).encode())]
            return []
        if self.declared is not None:
            return [(b"content-length", str(self.declared).encode())]
        return [(b"transfer-encoding", b"chunked")]

    async def next_chunk(self) -> bytes | None:
        """The next bytes after the held ones, None at the end."""
        if self.complete:
            return None
        self.streamed = True
        return await self._read()

    async def _read(self) -> bytes | None:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as e:
                raise ClientError(e.error_status_hint, f"bad request body: {e}") from None
            if event is h11.NEED_DATA:
                try:
                    data = await asyncio.wait_for(self.reader.read(READ_SIZE), self.limits.client_body_timeout)
                except asyncio.TimeoutError:
                    raise ClientError(408, "request body not received in time") from None
                except OSError:
                    raise ClientError(None) from None
                self.conn.receive_data(data)
            elif isinstance(event, h11.Data):
                self.received += len(event.data)
                if self.limits.body_too_large(self.received):
                    raise ClientError(413, f"request body more than the {self.limits.client_max_body_size} "
                                           f"bytes allowed")
                if event.data:
                    return event.data
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
                return None
            else:                        # ConnectionClosed
                raise ClientError(None)
