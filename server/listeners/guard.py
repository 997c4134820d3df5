"""Requests that do not decode, on the client gRPC port: INVALID_ARGUMENT and one log line.

gRPC decodes a request before any servicer code runs, and a request that is not the message its
method expects raised inside gRPC itself: a traceback in the log for every such request and
UNKNOWN for the caller. `GuardedRegistry` stands in for the server while the generated
`add_*Servicer_to_server` functions register their methods, and wraps each one: its decoder
returns a `Malformed` marker instead of raising, and the method answers a marker with
INVALID_ARGUMENT (`malformed request: not a dcli.v1.PutRequest`) and one rate-limited WARNING.
A streaming request (the coordination Session) gets the marker from `context.read()` and ends
its stream with its own error.

    registry = GuardedRegistry(server)
    kv_pb2_grpc.add_KVServicer_to_server(KVService(kv), registry)
"""
from __future__ import annotations

import logging

import grpc

from dcli_server.listeners.ratelimit import RateLimitedLog

log = logging.getLogger("dcli.server")
limited = RateLimitedLog(log)


class Malformed:
    """What a request that did not decode becomes."""

    __slots__ = ("type_name", "reason")

    def __init__(self, type_name: str, reason: str):
        self.type_name = type_name
        self.reason = reason

    def __str__(self) -> str:
        return f"malformed request: not a {self.type_name}"


def _decoder(decode):
    type_name = getattr(getattr(decode, "__self__", None), "DESCRIPTOR", None)
    type_name = type_name.full_name if type_name is not None else "request"

    def safe(data: bytes):
        try:
            return decode(data)
        except Exception as e:  # noqa: BLE001 - any failure to decode is the caller's problem
            return Malformed(type_name, str(e) or type(e).__name__)
    return safe


async def _refuse(method: str, request: Malformed, context) -> None:
    limited.warning(f"malformed:{method}", "%s: %s from %s (%s)", method, request, context.peer(), request.reason)
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))


def _unary(method: str, behaviour):
    async def guarded(request, context):
        if isinstance(request, Malformed):
            await _refuse(method, request, context)
        return await behaviour(request, context)
    return guarded


def _unary_stream(method: str, behaviour):
    async def guarded(request, context):
        if isinstance(request, Malformed):
            await _refuse(method, request, context)
        async for item in behaviour(request, context):
            yield item
    return guarded


def guard(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    handler = handler._replace(request_deserializer=_decoder(handler.request_deserializer))
    if handler.unary_unary is not None:
        return handler._replace(unary_unary=_unary(method, handler.unary_unary))
    if handler.unary_stream is not None:
        return handler._replace(unary_stream=_unary_stream(method, handler.unary_stream))
    return handler          # a streaming request: the servicer checks what context.read() gives


class GuardedRegistry:
    """The part of grpc.aio.Server the generated registration functions use."""

    def __init__(self, server: grpc.aio.Server):
        self._server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass        # the generated code registers the same methods by name next: see below

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        guarded = {name: guard(f"{service}/{name}", h) for name, h in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, guarded),))
        self._server.add_registered_method_handlers(service, guarded)
