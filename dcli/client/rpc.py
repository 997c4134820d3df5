"""A failed gRPC call as one of the project's errors: the one place the client maps them back.

    try:
        stub.Get(request, timeout=5)
    except grpc.RpcError as e:
        raise error_from_rpc(e, address) from None

The server names its error in the `dcli-error` trailing metadata (dcli.wire.errors.error_tag):
that error is rebuilt, with the server's one-line message. A call that failed without an answer
is told apart by whether it may have reached the server: no connection could be made (nothing
was sent: safe to send again), the connection broke or the deadline passed (it may have been
applied). Broker calls (`kafka=True`) get Kafka's classes for these (BrokerUnreachableError,
NetworkError, RequestTimedOutError, each retriable and saying the leader may have moved); the
others get UnavailableError, in the reference tools' words.
"""
from __future__ import annotations

import grpc

from dcli.wire import errors

# How gRPC's core says a call failed because no connection could be made (its pick-first policy
# found no ready address, or the name did not resolve): the call never left the client.
# tests/unit/test_broker_errors.py checks the installed gRPC still says so.
NOT_CONNECTED_DETAILS = ("failed to connect to all addresses", "DNS resolution failed")
TAG = "dcli-error"


def error_from_rpc(e: grpc.RpcError, server: str, *, kafka: bool = False) -> errors.DcliError:
    code, details = e.code(), e.details() or ""
    for key, value in (e.trailing_metadata() or ()):
        if key == TAG:
            error = errors.from_tag(value, details)
            if isinstance(error, errors.InvalidAuthTokenError):
                from dcli.client.auth import forget_tokens

                forget_tokens()         # the next call logs in again
            return error
    if code == grpc.StatusCode.UNAVAILABLE:
        from dcli.client.tls import explain

        details = explain(server) or details      # TLS on one side only: say so
        if not kafka:
            return errors.UnavailableError(server, f"Cannot connect to {server}: {details or code.name}")
        if details.startswith(NOT_CONNECTED_DETAILS):
            return errors.BrokerUnreachableError(server, f"Connection to {server} could not be established. "
                                                 f"Broker may not be available. ({details})")
        return errors.NetworkError(server, f"The connection to {server} broke before a response was received "
                                   f"({details or code.name})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if kafka:
            return errors.RequestTimedOutError(server, f"No response from {server} in time ({details or code.name})")
        return errors.UnavailableError(server, f"Cannot connect to {server}: {details or code.name}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return errors.UnimplementedError("", f"The server at {server} does not offer this: {details}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.BadArgumentsError("", details or "invalid request")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return errors.InvalidAuthTokenError("", details or None)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return errors.PermissionDeniedError("", details or None)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.RequestTooLargeError("", details or "request too large")
    return errors.SystemError_("", f"{code.name}: {details}")
