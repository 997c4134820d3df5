"""Connections to backends: addresses, and the idle keep-alive connections kept per backend for
layer 7 (an Upstream is one connection with h11 speaking the client's side).

    pool = UpstreamPool(size=16, connect_timeout=2.0)
    up, reused = await pool.acquire(backend)      # Unreachable when it cannot be connected to
    ... up.send(h11.Request(...)); event = await up.next_event() ...
    pool.release(backend, up)                     # kept for the next request if both sides are done
"""
from __future__ import annotations

import asyncio
import os

import h11

from dcli.lb.strategies import Backend
from dcli.wire import errors

READ_SIZE = 64 * 1024


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

    async def acquire(self, backend: Backend, fresh: bool = False) -> tuple[Upstream, bool]:
        """A connection to `backend` and whether it was reused (never with `fresh`: a request that
        cannot be sent again must not meet a kept-alive connection the backend has just closed);
        Unreachable if none can be made."""
        idle = [] if fresh else self.idle.get(backend.address, [])
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
