"""The ZooKeeper protocol listener: zkCli.sh, kazoo and Curator on the node's own tree.

Jute over TCP, as ZooKeeper 3.8 speaks it to its clients: a 4-byte length before every packet,
a ConnectRequest first (no header), then requests with a RequestHeader (xid, opcode), answered
with a ReplyHeader (xid, zxid, err) and the reply's record. The sessions, the tree and the
watches are the node's (dcli_server.node): an ephemeral made here is seen over gRPC, a watch
set here fires for a change made there, and a session moves between the nodes of a cluster and
between the two protocols.

    listener = ZooKeeperListener(node, "127.0.0.1:2181")
    host, port = await listener.start()

What ZooKeeper does, this does: replies in request order (a ping's may pass them; the clients
expect that), notifications between them; a packet longer than `max_buffer` (jute.maxbuffer)
or one that does not decode closes the connection, with one rate-limited log line; an expired
or unknown session gets a ConnectResponse with a zero timeout; a client that has seen a newer
zxid than this node is refused. The first four bytes of a connection may be a four-letter word
(zk_words.py), answered and closed. With an ssl context it is ZooKeeper's secureClientPort.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import socket
import time

from dcli.v1 import coord_pb2 as pb
from dcli.wire import zk_records as rec
from dcli.wire.addresses import join_host_port, split_host_port
from dcli.wire.errors import DcliError, SessionExpiredError, TooFarBehindError
from dcli.wire.jute import JuteError, Reader, Writer
from dcli.wire.zk_protocol import MAX_PACKET, OpCode, read_connect_request, write_connect_response
from dcli.wire.zk_protocol import KeeperCode as Err
from dcli_server.auth.authenticator import Authenticator
from dcli_server.auth.store import refuse_reserved
from dcli_server.auth.tokens import Principal
from dcli_server.coord.acl import x509_id
from dcli_server.listeners.ratelimit import RateLimitedLog
from dcli_server.listeners.zk_auth import ConnectionAuth
from dcli_server.listeners.zk_ops import WATCHER_TYPES, Gather, Op, ZkRefusal, decode, fixed
from dcli_server.listeners.zk_words import DEFAULT_WHITELIST, FOUR_LETTER_WORDS, answer_word
from dcli_server.node import Conn, CoordNode, InTurn

log = logging.getLogger("dcli.server.zk")
limited = RateLimitedLog(log)

HANDSHAKE_TIMEOUT_S = 30.0
READ_CHUNK = 64 * 1024      # a connection that sends no ConnectRequest in this long is closed
NOTIFICATION = rec.ReplyHeader(xid=-1, zxid=-1, err=0)
SYNC_CONNECTED = 3
PING_XID, AUTH_XID, SET_WATCHES_XID = -2, -4, -8
_EXPIRED = rec.ConnectResponse(protocolVersion=0, timeOut=0, sessionId=0, passwd=bytes(16))


class _Raw:
    """A reply the listener wrote itself, queued in the session's outbox like the node's."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def ByteSize(self) -> int:
        return len(self.data)


class ZooKeeperListener:
    def __init__(self, node: CoordNode, listen: str, *, max_buffer: int = MAX_PACKET,
                 max_client_cnxns: int = 60, version: str = "3.8.4", auth: Authenticator | None = None,
                 ssl=None, whitelist: tuple[str, ...] = DEFAULT_WHITELIST, super_digest: str | None = None):
        self.node = node
        self.whitelist = whitelist  # the four-letter words answered (4lw.commands.whitelist)
        self.super_digest = super_digest    # user:base64(sha1(user:password)) that bypasses every ACL
        self.live: set[_Connection] = set()
        self.started = time.monotonic()
        self.ssl = ssl            # an ssl.SSLContext: ZooKeeper's secureClientPort
        self.auth = auth          # dcli's users: with auth on, a connection must `addauth digest` as one
        self.listen = listen
        self.max_buffer = max_buffer
        self.max_client_cnxns = max_client_cnxns      # per client address; 0: no limit
        self.version = version
        self._server: asyncio.base_events.Server | None = None
        self.connections: dict[str, int] = {}      # per client address
        self._tasks: set[asyncio.Task] = set()
        self.received = 0       # packets, for `srvr`
        self.sent = 0

    async def start(self) -> tuple[str, int]:
        host, port = split_host_port(self.listen, "--zk-listen", allow_zero=True)
        self._server = await asyncio.start_server(self._accept, host, port, reuse_address=True,
                                                  limit=64 * 1024, ssl=self.ssl,
                                                  ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if self.ssl else None)
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    @property
    def address(self) -> str:
        host, port = self._server.sockets[0].getsockname()[:2]
        return join_host_port(host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        host = peer[0]
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        count = self.connections.get(host, 0)
        if self.max_client_cnxns and count >= self.max_client_cnxns:
            limited.warning(f"cnxns:{host}", "Too many connections from %s - max is %d", host,
                            self.max_client_cnxns)
            writer.close()
            return
        self.connections[host] = count + 1
        task = asyncio.current_task()
        self._tasks.add(task)
        connection = _Connection(self, reader, writer, host, peer[1] if len(peer) > 1 else 0)
        self.live.add(connection)
        try:
            await connection.run()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:       # a bug: one line, the connection closed, the node serving
            limited.exception(f"bug:{host}", "ZooKeeper connection from %s failed", host)
        finally:
            self.live.discard(connection)
            self._tasks.discard(task)
            left = self.connections.get(host, 1) - 1
            if left > 0:
                self.connections[host] = left
            else:
                self.connections.pop(host, None)
            writer.close()


class _Connection:
    def __init__(self, listener: ZooKeeperListener, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, host: str, port: int = 0):
        self.listener = listener
        self.port = port
        self.established = time.time()
        self.received = self.sent = 0
        self.node = listener.node
        self.reader = reader
        self.writer = writer
        self.host = host
        self.conn: Conn | None = None
        self.read_only: bool | None = None
        self.auth = ConnectionAuth(host, listener.super_digest)
        tls = writer.get_extra_info("ssl_object")
        cert = tls.getpeercert() if tls is not None else None
        if cert:            # a client certificate the CA vouched for: ZooKeeper's x509 id
            self.auth.ids.append(("x509", x509_id(cert.get("subject"))))
        self.user: Principal | None = None      # the dcli user it proved to be (auth on)
        self._ids = itertools.count(1)          # the node's xids: the client's may repeat (-2, -4, -8)
        self._waiting: dict[int, tuple[int, Op]] = {}
        self._failed: str | None = None

    def describe(self) -> str:
        """This connection as ZooKeeper's `cons` and `stat` list one."""
        sid = self.conn.session_id if self.conn is not None else 0
        return (f" /{self.host}:{self.port}[1](queued=0,recved={self.received},sent={self.sent},"
                f"sid=0x{sid:x},est={int(self.established * 1000)})")

    def _bad(self, what: str) -> None:
        limited.warning(f"bad:{self.host}", "ZooKeeper client %s: %s, closing the connection", self.host, what)

    async def run(self) -> None:
        head = await asyncio.wait_for(self.reader.readexactly(4), HANDSHAKE_TIMEOUT_S)
        if head in FOUR_LETTER_WORDS:
            self.writer.write(answer_word(head.decode(), self.listener))
            await self.writer.drain()
            return
        length = int.from_bytes(head, "big", signed=True)
        if not 0 < length <= self.listener.max_buffer:
            self._bad(f"connect packet length {length} outside 1..{self.listener.max_buffer}")
            return
        body = await asyncio.wait_for(self.reader.readexactly(length), HANDSHAKE_TIMEOUT_S)
        try:
            request, self.read_only = read_connect_request(body)
        except JuteError as e:
            self._bad(f"bad ConnectRequest: {e}")
            return
        if not await self._connect(request):
            return
        reading = asyncio.get_running_loop().create_task(self._read())
        try:
            await self._write()
        finally:
            reading.cancel()
            self.node.disconnect(self.conn)

    async def _connect(self, request) -> bool:
        try:
            self.conn, connected, gate = await self.node.connect(pb.Connect(
                session_id=request.sessionId, password=request.passwd or b"", timeout_ms=request.timeOut,
                last_zxid_seen=request.lastZxidSeen))
        except SessionExpiredError:
            # ZooKeeper's answer to an expired, unknown or wrongly authenticated session: a zero
            # timeout (the client then reports the session expired), then the close
            self.writer.write(_framed(write_connect_response(_EXPIRED, self.read_only)))
            await self.writer.drain()
            return False
        except TooFarBehindError:
            self._bad(f"it has seen zxid 0x{request.lastZxidSeen:x}, this node is behind it")
            return False
        except DcliError as e:       # no leader, no quorum: the client tries another server
            limited.info(f"connect:{self.host}", "ZooKeeper client %s not served: %s", self.host, e)
            return False
        self.conn.auth_ids = self.auth.ids       # the node checks ACLs against what addauth adds
        self.conn.outbox.appendleft((gate, connected))
        self.conn.wake.set()
        return True

    # ---- requests ----

    async def _read(self) -> None:
        """Read what the client sends, and hand every complete request of a read to the node at
        once (a pipelining client's requests then cost the node one pass, not one each)."""
        conn, node = self.conn, self.node
        limit = node.config.limits.max_outstanding_per_session
        buffered = bytearray()
        try:
            while not conn.closed:
                while conn.outstanding >= limit and not conn.closed:
                    conn.room.clear()       # back-pressure, as ZooKeeper's globalOutstandingLimit
                    await conn.room.wait()
                chunk = await self.reader.read(READ_CHUNK)
                if not chunk or conn.closed:
                    break
                buffered += chunk
                batch: list = []
                ok = self._frames(buffered, batch)
                if batch:
                    node.submit(conn, batch)
                    if conn.wake.is_set():
                        self._send_ready()      # answered at once (reads): out now, not next turn
                if not ok:
                    break
        except ConnectionError:
            pass        # the client went away; the session lives until its timeout
        self._failed = self._failed or "closed"
        conn.wake.set()

    def _frames(self, buffered: bytearray, batch: list) -> bool:
        """Take the complete packets off `buffered` into `batch`; False: close the connection.
        What stays buffered is at most one packet's length (jute.maxbuffer) plus one read."""
        at = 0
        try:
            while len(buffered) - at >= 4:
                length = int.from_bytes(buffered[at:at + 4], "big", signed=True)
                if not 0 <= length <= self.listener.max_buffer:
                    # ZooKeeper's "Len error": the connection is closed, the body never read
                    self._bad(f"packet length {length} outside 0..{self.listener.max_buffer} (jute.maxbuffer)")
                    return False
                if len(buffered) - at - 4 < length:
                    break
                packet = bytes(buffered[at + 4:at + 4 + length])
                at += 4 + length
                self.listener.received += 1
                self.received += 1
                if not self._take(packet, batch):
                    return False
            return True
        finally:
            del buffered[:at]

    def _take(self, packet: bytes, batch: list) -> bool:
        """Decode one request into `batch`, the node's requests; False: the connection must close."""
        r = Reader(packet)
        try:
            header = rec.RequestHeader.read(r)
            xid, opcode = header.xid, header.type
            if opcode == OpCode.AUTH:
                return self._authenticate(rec.AuthPacket.read(r))
            if opcode == OpCode.PING:
                # answered in its turn, as ZooKeeper's pipeline does (the node's own gRPC
                # streams have theirs answered at once); the submit itself keeps the session alive
                op = Op(InTurn(0), fixed(Err.OK))
            elif opcode == OpCode.WHO_AM_I:
                op = Op(InTurn(0), lambda resp: (Err.OK, self.auth.who_am_i()))
            elif self._locked_out() and opcode not in (OpCode.PING, OpCode.CLOSE_SESSION):
                op = Op(InTurn(0), fixed(Err.NO_AUTH))      # auth on: nothing before addauth
            elif opcode in (OpCode.SET_WATCHES, OpCode.SET_WATCHES2):
                self._set_watches(opcode, r)
                op = Op(InTurn(0), fixed(Err.OK))
            elif opcode == OpCode.CHECK_WATCHES:
                op = self._check_watches(rec.CheckWatchesRequest.read(r))
            else:
                try:
                    op = decode(xid, opcode, r)
                except ZkRefusal as refusal:
                    op = Op(InTurn(0), fixed(refusal.code))
                if self.user is not None and refuse_reserved(_requests(op), self.user) is not None:
                    op = Op(InTurn(0), fixed(Err.NO_AUTH))      # the user store is for administrators
        except JuteError as e:
            self._bad(f"malformed request: {e}")
            return False
        if isinstance(op, Gather):
            gathered = _Gathered(xid, op)
            for index, request in enumerate(op.requests):
                own = next(self._ids)
                request.xid = own
                self._waiting[own] = (xid, gathered, index)
            batch.extend(op.requests)
            return True
        own = next(self._ids)
        op.request.xid = own
        self._waiting[own] = (xid, op, None)
        batch.append(op.request)
        return True

    def _check_watches(self, record) -> Op:
        kind = WATCHER_TYPES.get(record.type)
        if record.path is None or kind is None:
            return Op(InTurn(0), fixed(Err.BAD_ARGUMENTS))
        coordinator, session_id, path = self.node.coordinator, self.conn.session_id, record.path

        def encode(resp: pb.Response) -> tuple[int, bytes]:        # asked in its turn
            return (Err.OK if coordinator.holds_watch(session_id, path, kind) else Err.NO_WATCHER), b""
        return Op(InTurn(0), encode)

    def _locked_out(self) -> bool:
        """Auth is on and this connection has not proved it is one of dcli's users."""
        users = self.listener.auth
        return users is not None and self.user is None and users.enabled

    def _authenticate(self, packet) -> bool:
        code = self.auth.add(packet.scheme, packet.auth)
        users = self.listener.auth
        if code == Err.OK and packet.scheme == "digest" and users is not None and users.enabled:
            # with auth on, a digest is one of dcli's users and their password, checked
            name, _, password = (packet.auth or b"").decode("utf-8", errors="replace").partition(":")
            try:
                self.user = users.check_password(name, password, self.host)
            except DcliError as e:
                limited.info(f"auth:{self.host}", "ZooKeeper client %s: addauth as %r refused: %s",
                             self.host, name, e)
                code = Err.AUTH_FAILED
        self._queue(rec.ReplyHeader(xid=AUTH_XID, zxid=0, err=code), b"")
        if code != Err.OK:
            self.conn.close_after_flush = True      # ZooKeeper closes after AuthFailed
        return code == Err.OK

    def _set_watches(self, opcode: int, r: Reader) -> None:
        record = (rec.SetWatches if opcode == OpCode.SET_WATCHES else rec.SetWatches2).read(r)
        persistent = getattr(record, "persistentWatches", None) or []
        recursive = getattr(record, "persistentRecursiveWatches", None) or []
        try:
            self.node.coordinator.set_watches(self.conn.session_id, record.relativeZxid,
                                              record.dataWatches or [], record.existWatches or [],
                                              record.childWatches or [], persistent, recursive)
        except DcliError:
            pass        # the session is gone: the next request says so

    def _queue(self, header, body: bytes) -> None:
        self.conn.outbox.append((0, _Raw(_framed(_encode(header) + body))))
        self.conn.wake.set()

    # ---- answers ----

    async def _write(self) -> None:
        conn, writer = self.conn, self.writer
        while True:
            await conn.wake.wait()
            if self._send_ready():
                await writer.drain()
            # the reader stopped: at once for bad bytes or a client gone, but after what is
            # queued when it asked for a close (AuthFailed, closeSession): those answers go first
            if conn.closed or (self._failed and not conn.close_after_flush) or (
                    conn.close_after_flush and not conn.outbox):
                return

    def _send_ready(self) -> bool:
        """Write what the node has ready for this connection, in order; True if anything was
        written. Called by the writer task, and by the reader right after it hands requests to
        the node, so a read answered at once leaves in the same turn of the loop."""
        conn = self.conn
        ready = self.node.take_ready(conn)
        out = bytearray()
        for item in ready:
            if isinstance(item, pb.ServerItem):
                if item.HasField("response"):
                    out += self._reply(item.response)
                else:
                    out += self._notification(item.event)
            elif isinstance(item, _Raw):
                out += item.data
            elif isinstance(item, pb.Connected):
                out += _framed(write_connect_response(rec.ConnectResponse(
                    protocolVersion=0, timeOut=item.timeout_ms, sessionId=item.session_id,
                    passwd=item.password), self.read_only))
            else:                   # an error that ends the stream: the session expired here
                conn.closed = True
                conn.wake.set()     # the writer task sees it and ends the connection
                break
        if out:
            self.writer.write(out)
            self.listener.sent += len(ready)
            self.sent += len(ready)
        return bool(out)

    def _reply(self, response: pb.Response) -> bytes:
        xid, op, index = self._waiting.pop(response.xid, (None, None, None))
        if op is None:
            return b""
        if isinstance(op, _Gathered):
            op.responses[index] = response
            op.missing -= 1
            if op.missing:
                return b""
            err, body = op.gather.encode(op.responses)
            return _framed(_encode(rec.ReplyHeader(xid=xid, zxid=response.zxid, err=int(err))) + body)
        err, body = op.encode(response)
        zxid = response.zxid
        if op.request.WhichOneof("op") == "close_session" and err == Err.OK:
            self.conn.close_after_flush = True
        return _framed(_encode(rec.ReplyHeader(xid=xid, zxid=zxid, err=int(err))) + (body if err == Err.OK else b""))

    def _notification(self, event: pb.WatchEvent) -> bytes:
        kind = -1 if event.type == pb.NONE else int(event.type)
        return _framed(_encode(NOTIFICATION) + _encode(rec.WatcherEvent(type=kind, state=SYNC_CONNECTED,
                                                                        path=event.path)))


class _Gathered:
    """A multiRead's answers as they come back; the reply leaves with the last one."""

    __slots__ = ("xid", "gather", "responses", "missing")

    def __init__(self, xid: int, gather: Gather):
        self.xid = xid
        self.gather = gather
        self.responses: list = [None] * len(gather.requests)
        self.missing = len(gather.requests)


def _requests(op) -> tuple:
    """The node requests of an op, for the identity store's rule (an InTurn has none)."""
    if isinstance(op, Gather):
        return tuple(op.requests)
    return (op.request,) if isinstance(op.request, pb.Request) else ()


def _encode(record) -> bytes:
    w = Writer()
    record.write(w)
    return w.getvalue()


def _framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload
