"""Who may call what on the client port: the gRPC server interceptor for authentication.

While auth is off (the default) every call passes, as before. While it is on, a call must carry
a valid token in the metadata `token` (etcd's name), else it ends UNAUTHENTICATED with
InvalidAuthTokenError; administrative calls (ADMIN: membership, users and the auth switch,
deleting topics, leader elections, keyspaces and rebalancing) also need root or a user with the
`admin` role, else PERMISSION_DENIED. OPEN calls need no token: logging in, asking whether auth
is on, a node's status, health checks. The caller is left in `tokens.caller` for the servicer,
which runs in the same task. A long stream (a coordination session, a rebalance) is checked when
it opens.

    server = grpc.aio.server(interceptors=[AuthInterceptor(authenticator)])
"""
from __future__ import annotations

import logging

import grpc

from dcli.wire.errors import DcliError, PermissionDeniedError, error_tag
from dcli_server.auth import Authenticator
from dcli_server.auth.tokens import Principal, caller
from dcli_server.listeners.ratelimit import RateLimitedLog

limited = RateLimitedLog(logging.getLogger("dcli.server"))

TOKEN = "token"
# a node's status is open, as etcd's Maintenance.Status: health checks and `dcli cluster` watch it
OPEN = frozenset({"/dcli.v1.Auth/Authenticate", "/dcli.v1.Auth/AuthStatus", "/dcli.v1.Cluster/Status"})
OPEN_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
ADMIN = frozenset({
    "/dcli.v1.Cluster/AddMember", "/dcli.v1.Cluster/RemoveMember", "/dcli.v1.Cluster/TransferLeader",
    "/dcli.v1.Auth/UserAdd", "/dcli.v1.Auth/UserDelete", "/dcli.v1.Auth/UserList",
    "/dcli.v1.Auth/AuthEnable", "/dcli.v1.Auth/AuthDisable",
    # Kafka asks for ALTER on the cluster for every ElectLeaders, preferred or unclean
    "/dcli.v1.Broker/DeleteTopics", "/dcli.v1.Broker/ElectLeaders",
    "/dcli.v1.KV/CreateKeyspace", "/dcli.v1.KV/Rebalance",
})


def _token(metadata) -> str:
    for key, value in metadata or ():
        if key == TOKEN:
            return value if isinstance(value, str) else value.decode("ascii", "replace")
    return ""


def _refusal(e: DcliError, method: str):
    """What a refused call does: end with the error's status and `dcli-error` tag (and one
    rate-limited log line per kind of refusal)."""
    code = getattr(grpc.StatusCode, e.grpc_status)
    limited.info(f"auth:{type(e).__name__}:{method}", "%s refused: %s", method, e)
    metadata = (("dcli-error", error_tag(e)),)

    async def abort(context):
        await context.abort(code, str(e), trailing_metadata=metadata)
    return abort


def _with_caller(handler: grpc.RpcMethodHandler, who: Principal) -> grpc.RpcMethodHandler:
    """The handler, with `caller` set for the servicer's code."""
    if handler.unary_unary is not None:
        inner = handler.unary_unary

        async def unary_unary(request, context):
            caller.set(who)
            return await inner(request, context)
        return handler._replace(unary_unary=unary_unary)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request, context):
            caller.set(who)
            async for item in inner_us(request, context):
                yield item
        return handler._replace(unary_stream=unary_stream)
    if handler.stream_stream is not None:
        inner_ss = handler.stream_stream

        async def stream_stream(request_iterator, context):
            caller.set(who)
            async for item in inner_ss(request_iterator, context):
                yield item
        return handler._replace(stream_stream=stream_stream)
    return handler


def _refused(handler: grpc.RpcMethodHandler, abort) -> grpc.RpcMethodHandler:
    """The handler, answering every call with `abort` (the request is still decoded by gRPC)."""
    if handler.unary_unary is not None:
        async def unary_unary(request, context):
            await abort(context)
        return handler._replace(unary_unary=unary_unary)
    if handler.unary_stream is not None:
        async def unary_stream(request, context):
            await abort(context)
            yield  # pragma: no cover - abort raises
        return handler._replace(unary_stream=unary_stream)
    if handler.stream_unary is not None:
        async def stream_unary(request_iterator, context):
            await abort(context)
        return handler._replace(stream_unary=stream_unary)

    async def stream_stream(request_iterator, context):
        await abort(context)
        yield  # pragma: no cover
    return handler._replace(stream_stream=stream_stream)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, auth: Authenticator):
        self._auth = auth

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        method = details.method
        if handler is None or method in OPEN or method.startswith(OPEN_PREFIXES) or not self._auth.enabled:
            return handler
        try:
            who = self._auth.principal(_token(details.invocation_metadata))
        except DcliError as e:
            return _refused(handler, _refusal(e, method))
        if method in ADMIN and not who.admin:
            denied = PermissionDeniedError("", f"permission denied: {method.rsplit('/', 1)[1]} needs root "
                                               f"or the admin role, and {who.name} has neither")
            return _refused(handler, _refusal(denied, method))
        return _with_caller(handler, who)

