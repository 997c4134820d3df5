"""The Coordination service: one bidirectional stream per session, over the node's outboxes."""
from __future__ import annotations

import asyncio
import logging

import grpc

from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coord_pb2_grpc as pb_grpc
from dcli.wire.errors import (BadArgumentsError, ConnectionLossError, DcliError, MarshallingError,
                              RequestTooLargeError)
from dcli_server.api.errors import abort
from dcli_server.auth.store import refuse_reserved
from dcli_server.auth.tokens import caller
from dcli_server.listeners.guard import Malformed
from dcli_server.listeners.ratelimit import RateLimitedLog
from dcli_server.node import Conn, CoordNode, InTurn, session_frame

log = logging.getLogger("dcli.server")
limited = RateLimitedLog(log)

_MALFORMED = "malformed frame: not a dcli.v1.ClientFrame"


def client_host(peer: str) -> str:
    """The address part of gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition("]")[0].lstrip("[")
    return rest.rpartition(":")[0] if kind == "ipv4" else peer


def _certificate_subject(context) -> str:
    """The subject of the client's TLS certificate (RFC 2253, most specific first), or ""."""
    try:
        values = (context.auth_context() or {}).get("x509_subject") or ()
    except Exception:           # no TLS, or a context without one
        return ""
    return values[0].decode(errors="replace") if values else ""


def _screen(requests):
    """The requests as the node should take them: one on the identity store from a caller who may
    not touch it (auth on, not an administrator) becomes an InTurn, answered NoAuth in its turn."""
    who = caller.get()
    if who is None or who.admin:
        return requests
    return [InTurn(r.xid, problem) if (problem := refuse_reserved((r,), who)) is not None else r
            for r in requests]


class CoordinationService(pb_grpc.CoordinationServicer):
    def __init__(self, node: CoordNode, max_frame_bytes: int = 8 * 1024 * 1024, max_client_cnxns: int = 60):
        self._node = node
        self._max_frame_bytes = max_frame_bytes
        self._max_client_cnxns = max_client_cnxns     # session streams per client address; 0: no limit
        self._streams: dict[str, int] = {}

    def _too_large(self, frame: pb.ClientFrame) -> DcliError | None:
        size = frame.ByteSize()
        if size > self._max_frame_bytes:
            return RequestTooLargeError("", f"frame of {size} bytes exceeds the limit of {self._max_frame_bytes}")
        return None

    async def Session(self, request_iterator, context: grpc.aio.ServicerContext):
        host = client_host(context.peer() or "")
        count = self._streams.get(host, 0)
        if self._max_client_cnxns and count >= self._max_client_cnxns:
            # ZooKeeper's maxClientCnxns: refused before the stream is read or a session opened
            limited.warning(f"cnxns:{host}", "too many connections from %s - max is %d",
                            host, self._max_client_cnxns)
            yield pb.ServerFrame(error=ConnectionLossError(
                message=f"too many connections from {host}: the limit is {self._max_client_cnxns} "
                        "(--max-client-cnxns)").to_proto())
            return
        self._streams[host] = count + 1
        session = self._session(context)
        try:
            async for frame in session:
                yield frame
        finally:
            await session.aclose()      # its own cleanup (the node forgets the stream) now, not at GC
            left = self._streams.get(host, 1) - 1
            if left > 0:
                self._streams[host] = left
            else:
                self._streams.pop(host, None)

    async def _session(self, context: grpc.aio.ServicerContext):
        node = self._node
        try:
            first = await context.read()
        except Exception:
            await abort(context, MarshallingError("", _MALFORMED), "Session")
        if first is grpc.aio.EOF:
            return
        if isinstance(first, Malformed):
            await abort(context, MarshallingError("", _MALFORMED), "Session")
        if (problem := self._too_large(first)) is not None:
            await abort(context, problem, "Session")
        if not first.HasField("connect"):
            yield pb.ServerFrame(error=BadArgumentsError("", "the first frame must carry connect").to_proto())
            return
        try:
            conn, connected, gate = await node.connect(first.connect, client_host(context.peer() or ""))
            subject = _certificate_subject(context)
            if subject:         # a client certificate the CA vouched for: ZooKeeper's x509 id
                conn.auth_ids.append(("x509", subject))
        except DcliError as e:
            await node.wait_visible(node.gate())   # e.g. the close of an expired session
            yield pb.ServerFrame(error=e.to_proto())
            return
        # the answer leaves when the session's creation is committed and applied here
        conn.outbox.appendleft((gate, connected))
        node.submit(conn, _screen(first.requests))
        failure: list[DcliError] = []
        reader = asyncio.get_running_loop().create_task(self._read(context, conn, failure))
        try:
            while True:
                await conn.wake.wait()
                ready = node.take_ready(conn)
                if ready:
                    yield session_frame(conn, ready)
                if failure:
                    await abort(context, failure[0], "Session")
                if conn.closed or (conn.close_after_flush and not conn.outbox):
                    return
        finally:
            reader.cancel()
            node.disconnect(conn)

    async def _read(self, context, conn: Conn, failure: list[DcliError]) -> None:
        node = self._node
        limit = node.config.limits.max_outstanding_per_session
        try:
            while not conn.closed:
                while conn.outstanding >= limit and not conn.closed:
                    # back-pressure: a client that does not read its answers stops being read
                    # (gRPC's flow control then stops its sends), as ZooKeeper stops reading a
                    # connection past globalOutstandingLimit; the memory held stays bounded
                    conn.room.clear()
                    await conn.room.wait()
                frame = await context.read()
                if conn.closed:
                    return
                if frame is grpc.aio.EOF:
                    # the client is done sending: answer what it asked, then end the stream
                    conn.close_after_flush = True
                    conn.wake.set()
                    return
                if isinstance(frame, Malformed):
                    failure.append(MarshallingError("", _MALFORMED))
                    conn.wake.set()
                    return
                if (problem := self._too_large(frame)) is not None:
                    failure.append(problem)
                    conn.wake.set()
                    return
                node.submit(conn, _screen(frame.requests))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a frame that does not parse, or the stream broke
            log.debug("stream of session 0x%x ended: %s", conn.session_id, e)
            if not context.done():
                failure.append(MarshallingError("", _MALFORMED))
                conn.wake.set()
            else:
                node.disconnect(conn)
