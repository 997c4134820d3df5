"""PeerTransport: this node's one peer listener and one connection to every other node.

All node-to-node traffic goes through here: Raft's one-way messages, and requests with an answer
(forwarded writes, KV replica calls, follower fetches, membership changes). The domain registers
a handler per method number and calls `post`, `send` or `request` with a node id; it never sees
a socket. The frame format, the socket, the handshake and one connection's behaviour live in
`peer_frames`, `peer_stream`, `peer_handshake` and `peer_connection`.

One connection per pair of nodes, used both ways: the node with the lower id dials (and redials
with backoff, 50 ms doubling to 1 s, jittered), the other accepts; a higher id dialling in is
refused. A lower id that dials in without being configured here (a member this node has not
heard of yet) is accepted after the handshake and can be answered. The side that waits can
reach its peer only once that peer knows its address and has dialled.

With `tls` (a PeerTLS, peer_tls.py) every connection runs TLS both ways before the handshake:
the dialler checks the listener's certificate, the listener the dialler's. A connection that
fails it is refused like one that fails the handshake: one rate-limited line, nothing read.

    transport = PeerTransport(ClusterSecretHandshake(node_id=1, secret=secret))
    transport.handle_message(RAFT, lambda peer, payload: node.step(decode(payload)))
    transport.handle_request(FORWARD, forward_handler)          # async (peer, payload) -> bytes
    transport.handle_request(EPOCH_END, epoch_end)              # plain (peer, payload) -> bytes
    await transport.listen("127.0.0.1", 7190)
    transport.add_peer(2, "127.0.0.1:7191", user="raft")       # each user registers its own
    transport.post(2, RAFT, encode(message))                    # dropped if down or full
    answer = await transport.request(2, FORWARD, payload, timeout=5)
    await transport.close()
"""
from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from dcli.wire.addresses import split_host_port
from dcli_server.listeners.peer_connection import (
    DEAD_AFTER_S, KEEPALIVE_S, MAX_HANDLERS, QUEUE_LIMIT, PeerConnection, PeerUnreachable, limited)
from dcli_server.listeners.peer_frames import HANDSHAKE_MAX_PAYLOAD, MAX_PAYLOAD
from dcli_server.listeners.peer_stream import FrameStream, open_frame_stream, serve_frames
from dcli_server.listeners.peer_handshake import Handshake, HandshakeError
from dcli_server.listeners.peer_tls import PeerTLS, describe

log = logging.getLogger("dcli.server.peer")

MAX_HANDSHAKING = 64            # connections accepted but not yet authenticated, at once


@dataclass(frozen=True)
class PeerOptions:
    max_payload: int = MAX_PAYLOAD
    queue_limit: int = QUEUE_LIMIT
    max_handlers: int = MAX_HANDLERS
    keepalive_s: float = KEEPALIVE_S
    dead_after_s: float = DEAD_AFTER_S
    connect_timeout_s: float = 2.0          # TCP connect and handshake, each
    backoff_min_s: float = 0.05
    backoff_max_s: float = 1.0
    request_timeout_s: float = 5.0


class PeerLink:
    """The way to one peer: its current connection and, on the dialling side, the redialling."""

    def __init__(self, peer_id: int, address: str, handshake: Handshake, *, dials: bool = True,
                 options: PeerOptions = PeerOptions(), tls=None,
                 on_message: Callable[[int, int, bytes], None] | None = None,
                 on_request: Callable[[int, int, bytes], bytes | Awaitable[bytes]] | None = None,
                 on_state: Callable[[int, bool], None] = lambda peer_id, up: None):
        self.peer_id = peer_id
        self.address = address
        self.dials = dials
        self.options = options
        self.connection: PeerConnection | None = None
        self._handshake = handshake
        self._tls = tls                         # the ssl.SSLContext to dial with, or None
        self._handlers = {k: v for k, v in (("on_message", on_message), ("on_request", on_request)) if v}
        self._on_state = on_state
        self._up = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.closing = False

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.closed

    def start(self) -> None:
        if self.dials and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._dial())

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # -- traffic ------------------------------------------------------------------------------------

    def post(self, method: int, payload: bytes) -> bool:
        conn = self.connection
        return conn is not None and conn.post(method, payload)

    async def send(self, method: int, payload: bytes) -> None:
        conn = self.connection
        if conn is None:
            raise PeerUnreachable(f"node {self.peer_id}: not connected")
        await conn.send(method, payload)

    async def request(self, method: int, payload: bytes, timeout: float | None = None) -> bytes:
        """Wait (within `timeout`) for a connection if there is none, then ask."""
        timeout = self.options.request_timeout_s if timeout is None else timeout
        conn = self.connection
        if conn is None or conn.closed:
            start = time.monotonic()
            if self.closing or not await self.wait_connected(timeout):
                raise PeerUnreachable(f"node {self.peer_id}: not connected")
            timeout = max(0.001, timeout - (time.monotonic() - start))
            conn = self.connection
            if conn is None:
                raise PeerUnreachable(f"node {self.peer_id}: not connected")
        return await conn.request(method, payload, timeout)

    # -- connections --------------------------------------------------------------------------------

    def attach(self, stream: FrameStream) -> PeerConnection:
        """Make an authenticated stream this peer's connection, replacing (closing) any older one."""
        o = self.options
        old = self.connection
        conn = self.connection = PeerConnection(
            stream, self.peer_id, on_closed=self._lost, queue_limit=o.queue_limit, max_handlers=o.max_handlers,
            keepalive_s=o.keepalive_s, dead_after_s=o.dead_after_s, max_payload=o.max_payload,
            **self._handlers)
        conn.start()
        if old is not None:
            old.abort("replaced by a newer connection")
        self._up.set()
        log.info("node %d (%s): connected", self.peer_id, stream.peername)
        self._on_state(self.peer_id, True)
        return conn

    def _lost(self, conn: PeerConnection, reason: str) -> None:
        if conn is not self.connection:
            return
        self.connection = None
        self._up.clear()
        if not self.closing:
            limited.info(f"lost:{self.peer_id}", "node %d: %s", self.peer_id, reason)
        self._on_state(self.peer_id, False)

    async def _connect(self) -> FrameStream:
        host, port = split_host_port(self.address, "peer address")
        t = self.options.connect_timeout_s
        try:
            stream = await asyncio.wait_for(open_frame_stream(host, port, HANDSHAKE_MAX_PAYLOAD, tls=self._tls), t)
        except ssl.SSLError as e:
            raise ConnectionError(describe(e)) from None
        try:
            await asyncio.wait_for(self._handshake.dial(stream, expect=self.peer_id), t)
        except BaseException:
            stream.abort()
            raise
        stream.decoder.max_payload = self.options.max_payload
        return stream

    async def _dial(self) -> None:
        o = self.options
        backoff = o.backoff_min_s
        while not self.closing:
            try:
                stream = await self._connect()
            except Exception as e:              # refused, unreachable, or a bug: one line, then retry
                limited.warning(f"dial:{self.peer_id}", "node %d (%s): cannot connect: %s", self.peer_id,
                                self.address, str(e) or type(e).__name__)
            else:
                since = time.monotonic()
                conn = self.attach(stream)
                await conn.wait_closed()
                if time.monotonic() - since > o.backoff_max_s:
                    backoff = o.backoff_min_s       # it held a while: redial at once, not after a pause
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, o.backoff_max_s)

    async def close(self) -> None:
        self.closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.connection is not None:
            await self.connection.close()


class PeerTransport:
    def __init__(self, handshake: Handshake, *, options: PeerOptions = PeerOptions(),
                 on_state: Callable[[int, bool], None] = lambda peer_id, up: None, tls: PeerTLS | None = None):
        self.node_id = handshake.node_id
        self.tls = tls
        self._accept_tls, self._dial_tls = tls.contexts() if tls is not None else (None, None)
        self.options = options
        self.on_state = on_state
        self._handshake = handshake
        self._links: dict[int, PeerLink] = {}
        self._users: dict[int, dict[str, str]] = {}     # peer -> {user: address}, who needs the link
        self._messages: dict[int, Callable[[int, bytes], None]] = {}
        self._requests: dict[int, Callable[[int, bytes], bytes | Awaitable[bytes]]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._closing: set[asyncio.Task] = set()
        self._accepting: set[asyncio.Task] = set()
        self._handshaking = 0
        self.refused = 0                    # connections refused: busy, or the handshake failed
        self.port = 0

    # -- what the domain registers and calls --------------------------------------------------------

    def handle_message(self, method: int, handler: Callable[[int, bytes], None]) -> None:
        """One-way messages of `method` go to handler(peer_id, payload), in arrival order per peer."""
        self._messages[method] = handler

    def handle_request(self, method: int, handler: Callable[[int, bytes], bytes | Awaitable[bytes]]) -> None:
        """Requests of `method` go to handler(peer_id, payload); what it returns (or, for a coroutine
        function, what its awaitable returns) is the answer, what it raises reaches the caller as
        PeerError(str(exception)). A plain function answers in order, without a task of its own:
        the cheap way for what needs no waiting (a KV replica read, OffsetForLeaderEpoch)."""
        self._requests[method] = handler

    def post(self, to: int, method: int, payload: bytes) -> bool:
        link = self._links.get(to)
        return link is not None and link.post(method, payload)

    async def send(self, to: int, method: int, payload: bytes) -> None:
        await self._link(to).send(method, payload)

    async def request(self, to: int, method: int, payload: bytes, timeout: float | None = None) -> bytes:
        return await self._link(to).request(method, payload, timeout)

    async def wait_connected(self, peer_id: int, timeout: float) -> bool:
        """Whether a connection to `peer_id` is up within `timeout` (False for an unknown peer)."""
        link = self._links.get(peer_id)
        return link is not None and await link.wait_connected(timeout)

    def reachable(self, peer_id: int) -> bool:
        link = self._links.get(peer_id)
        return link is not None and link.connected

    def peers(self) -> dict[int, str]:
        return {i: link.address for i, link in self._links.items()}

    def _link(self, peer_id: int) -> PeerLink:
        link = self._links.get(peer_id)
        if link is None:
            raise PeerUnreachable(f"node {peer_id} is not a known peer")
        return link

    def _on_message(self, peer_id: int, method: int, payload: bytes) -> None:
        handler = self._messages.get(method)
        if handler is None:
            raise LookupError(f"no handler for one-way method {method}")
        handler(peer_id, payload)

    def _on_request(self, peer_id: int, method: int, payload: bytes) -> bytes | Awaitable[bytes]:
        handler = self._requests.get(method)
        if handler is None:
            raise LookupError(f"no handler for method {method}")
        return handler(peer_id, payload)

    # -- membership of the transport ----------------------------------------------------------------

    def _new_link(self, peer_id: int, address: str) -> PeerLink:
        link = self._links[peer_id] = PeerLink(
            peer_id, address, self._handshake, dials=self.node_id < peer_id, options=self.options, tls=self._dial_tls,
            on_message=self._on_message, on_request=self._on_request, on_state=self.on_state)
        return link

    def add_peer(self, peer_id: int, address: str, user: str = "") -> None:
        """Know a peer's address for `user` (Raft, the KV store, ...); the lower id of the two
        dials. Each user registers and removes its peers on its own: a link lives while any user
        holds it, so one user's removal never cuts another's peer. When two users give different
        addresses the latest given is dialled; an address change redials."""
        if peer_id == self.node_id:
            return
        split_host_port(address, "peer address")
        users = self._users.setdefault(peer_id, {})
        users.pop(user, None)
        users[user] = address                   # last: the address in force
        self._use(peer_id, address)

    def remove_peer(self, peer_id: int, user: str = "") -> None:
        """`user` no longer needs `peer_id`; the link goes when no user holds it any more."""
        users = self._users.get(peer_id)
        if users is None or users.pop(user, None) is None:
            return
        if users:
            self._use(peer_id, next(reversed(users.values())))
            return
        del self._users[peer_id]
        link = self._links.pop(peer_id, None)
        if link is not None:
            task = asyncio.get_running_loop().create_task(link.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def users(self, peer_id: int) -> list[str]:
        """Who holds a link to `peer_id` (in registration order)."""
        return list(self._users.get(peer_id, ()))

    def _use(self, peer_id: int, address: str) -> None:
        link = self._links.get(peer_id)
        if link is not None:
            if link.address == address or (not link.dials and not link.address):
                link.address = address
                return
            self._links.pop(peer_id)
            task = asyncio.get_running_loop().create_task(link.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._new_link(peer_id, address).start()

    # -- the listener -------------------------------------------------------------------------------

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await serve_frames(self._accept, host, port, HANDSHAKE_MAX_PAYLOAD,
                                          tls=self._accept_tls is not None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, stream: FrameStream) -> None:
        if self._handshaking >= MAX_HANDSHAKING:
            self.refused += 1
            limited.warning("accept:busy", "peer listener: %d connections are authenticating, refusing %s",
                            self._handshaking, stream.peername)
            stream.abort()
            return
        self._handshaking += 1
        task = asyncio.current_task()
        self._accepting.add(task)
        try:
            peer = await asyncio.wait_for(self._authenticate(stream), self.options.connect_timeout_s)
            if peer > self.node_id:           # by the rule it waits for us: its view or its id is wrong
                raise HandshakeError(f"node {peer} dialled in, but the lower id ({self.node_id}) dials")
            link = self._links.get(peer)
        except asyncio.CancelledError:      # the transport is closing
            stream.abort()
            return
        except Exception as e:     # timeout, TLS, bad frame, failed handshake, socket error (or a bug)
            self.refused += 1
            limited.warning(f"accept:{stream.peername.rpartition(':')[0]}", "peer listener: refused %s: %s",
                            stream.peername, describe(e))
            stream.abort()
            return
        finally:
            self._handshaking -= 1
            self._accepting.discard(task)
        if self._server is None:            # closed meanwhile
            stream.abort()
            return
        stream.decoder.max_payload = self.options.max_payload
        if link is None:                    # not configured here (yet): it may be answered all the same
            link = self._new_link(peer, "")
        link.attach(stream)

    async def _authenticate(self, stream: FrameStream) -> int:
        if self._accept_tls is not None:
            try:
                await stream.start_tls(self._accept_tls, server_side=True, timeout=self.options.connect_timeout_s)
            except ConnectionError as e:
                raise ConnectionError(f"TLS: closed in the handshake ({str(e) or type(e).__name__}): it does "
                                      "not trust this node's certificate?") from None
        return await self._handshake.accept(stream)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._accepting):
            task.cancel()
        links = list(self._links.values())
        self._links.clear()
        self._users.clear()
        await asyncio.gather(*(link.close() for link in links), *self._closing, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
