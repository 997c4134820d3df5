"""Health checks: every `interval` seconds each backend is probed, all at once.

A probe is a TCP connect, or with a health path an HTTP GET of it on a connection of its own
(answered below 400 is healthy). A failed probe ejects an up backend (it does not count as a
request error); a passed one brings an ejected backend back before its retry time. The time a
GET takes feeds the backend's response-time average (response-time strategy), so a backend that
gets few requests is still measured.
"""
from __future__ import annotations

import asyncio

import h11

from dcli.lb.proxy import Proxy
from dcli.lb.upstream import describe, split_address
from dcli.lb.strategies import Backend


class HealthError(Exception):
    pass


class HealthChecker:
    def __init__(self, proxy: Proxy, interval: float, path: str | None = None, timeout: float = 2.0):
        self.proxy, self.interval, self.path, self.timeout = proxy, interval, path, timeout

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check_all()

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(b) for b in self.proxy.backends.all()))

    async def check(self, b: Backend) -> None:
        clock = self.proxy.clock
        started = clock()
        try:
            await asyncio.wait_for(self.probe(b), self.timeout)
        except (OSError, asyncio.TimeoutError, HealthError, h11.ProtocolError) as e:
            if b.address in self.proxy.backends.backends:
                self.proxy.report_failure(b, f"health check: {describe(e)}", count=False)
            return
        if b.address not in self.proxy.backends.backends:    # it left while being checked
            return
        if self.path:
            self.proxy.backends.observe(b, clock() - started, sample=False)
        self.proxy.report_success(b)

    async def probe(self, b: Backend) -> None:
        host, port = split_address(b.address)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            if not self.path:
                return
            conn = h11.Connection(h11.CLIENT)
            writer.write(conn.send(h11.Request(method="GET", target=self.path, headers=[
                ("host", b.address), ("user-agent", "dcli-lb-health"), ("connection", "close")])))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            answered = False
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    answered = True
                    if event.status_code >= 400:
                        raise HealthError(f"{self.path} answered {event.status_code}")
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    if not answered:
                        raise HealthError("closed without answering")
                    return
        finally:
            writer.close()
