"""What a client may cost the balancer: the limits of `dcli lb start`, and the listener that
enforces the cap on client connections.

Names and defaults follow the proxies they come from:

    client_header_timeout  60 s     nginx client_header_timeout: the whole request head, from the
                                    connection (or the next request's first byte) to its last line
    client_body_timeout    60 s     nginx client_body_timeout: between two reads of a request body
    keepalive_timeout      120 s    nginx keepalive_timeout: a kept-alive connection with no request
    send_timeout           60 s     nginx send_timeout: a client that takes nothing of its response
                                    for this long is closed
    max_headers            100      Envoy max_headers_count (431 beyond it)
    max_header_size        64 KiB   request line and headers together (Envoy max_request_headers_kb
                                    is 60 KiB; 431 beyond it)
    client_max_body_size   64 MiB   nginx client_max_body_size (413 beyond it; 0: no limit)
    max_connections        1024     HAProxy maxconn: client connections at once; one more is
                                    closed on accept
    idle_timeout           3600 s   Envoy tcp_proxy idle_timeout: tcp mode, no byte either way
                                    for this long closes both sides (0: never)

    limits = Limits(client_header_timeout=5.0, client_max_body_size=parse_size("8m", "--flag"))
    server = await ConnectionCap(limits.max_connections).serve(handler, "127.0.0.1", 8080)
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from dcli.wire import errors

SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}
REFUSED_REPORT_S = 10.0


@dataclass(frozen=True)
class Limits:
    client_header_timeout: float = 60.0
    client_body_timeout: float = 60.0
    keepalive_timeout: float = 120.0
    send_timeout: float = 60.0
    max_headers: int = 100
    max_header_size: int = 64 * 1024
    client_max_body_size: int = 64 * 2**20
    max_connections: int = 1024
    idle_timeout: float = 3600.0
    trusted_proxies: tuple = ()          # ipaddress networks whose X-Forwarded-* are kept

    def head_problem(self, request_line_size: int, headers: list) -> str | None:
        """Why a parsed request head is over the limits (answered 431), or None."""
        if len(headers) > self.max_headers:
            return f"{len(headers)} header fields, more than the {self.max_headers} allowed"
        size = request_line_size + sum(len(n) + len(v) + 4 for n, v in headers)
        if size > self.max_header_size:
            return f"request head of {size} bytes, more than the {self.max_header_size} allowed"
        return None

    def body_too_large(self, size: int) -> bool:
        return 0 < self.client_max_body_size < size

    def trusts(self, client_ip: str) -> bool:
        """Whether the client is a proxy whose X-Forwarded-* headers are passed on."""
        if not self.trusted_proxies:
            return False
        try:
            address = ipaddress.ip_address(client_ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted_proxies)


def parse_size(text: str, flag: str) -> int:
    """'65536', '64k', '8m', '1g' (nginx's sizes) as bytes; errors.UsageError otherwise."""
    m = SIZE.match(text.strip())
    if not m:
        raise errors.UsageError(f"invalid {flag} '{text}': expected a size such as 65536, 64k, 8m or 1g")
    return int(m.group(1)) * UNITS[m.group(2).lower()]


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """'10.0.0.0/8', '127.0.0.1' (a single address), '::1/128'; errors.UsageError otherwise."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise errors.UsageError(f"invalid --trusted-proxy '{text}': expected an address or CIDR "
                                f"such as 10.0.0.0/8") from None


class Refuse(asyncio.Protocol):
    """A connection beyond the cap: closed at once (no reader, no buffers, no task)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()


class ConnectionCap:
    """A stream listener that serves at most `limit` client connections at once. The count is
    taken when a connection is accepted, before anything is allocated for it, and given back
    when its handler returns. `on_refused(count)` hears of refused connections at most once every
    REFUSED_REPORT_S (count: those since the last report), so that a flood does not flood the log."""

    def __init__(self, limit: int, on_refused: Callable[[int], None] = lambda count: None):
        self.limit, self.on_refused = limit, on_refused
        self.active = 0
        self.refused = 0
        self._reported = 0
        self._report_at = float("-inf")

    async def serve(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                    host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                self.active -= 1
                writer.close()

        def protocol() -> asyncio.BaseProtocol:
            if self.active >= self.limit:
                self.refused += 1
                if loop.time() >= self._report_at:
                    self._report_at = loop.time() + REFUSED_REPORT_S
                    self.on_refused(self.refused - self._reported)
                    self._reported = self.refused
                return Refuse()
            self.active += 1
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), counted, loop=loop)

        return await loop.create_server(protocol, host, port, reuse_address=True)

    def stats(self) -> dict:
        return {"active": self.active, "refused": self.refused, "max": self.limit}
