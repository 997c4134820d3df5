"""Domain errors to the wire, once for every servicer.

A DcliError raised while serving a call ends it with the error's gRPC status, its one-line
message and the `dcli-error` trailing metadata (`error_tag`: which error it is), from which the
client rebuilds the same error (dcli.client.rpc.error_from_rpc). Errors that belong to one topic,
partition or group travel in the answer itself as Kafka's `error_code` and `error_message`
(`kafka_fields`). Anything else is a bug or a request nothing expected: the call ends INTERNAL
with one line naming it, and the log gets one line too (rate-limited, so that a flood of bad
requests cannot flood the log; the traceback only at debug level). The server never goes down.

    class KVService(pb_grpc.KVServicer):
        @guarded
        async def Get(self, request, context): ...
"""
from __future__ import annotations

import asyncio
import functools
import logging

import grpc

from dcli.wire.errors import BrokerError, DcliError, error_tag
from dcli_server.listeners.ratelimit import RateLimitedLog

log = logging.getLogger("dcli.server")

unexpected = RateLimitedLog(log)


def status_of(e: BaseException, method: str) -> tuple[grpc.StatusCode, str, tuple]:
    """(status, details, trailing metadata) a call that failed with `e` ends with."""
    if isinstance(e, DcliError):
        return getattr(grpc.StatusCode, e.grpc_status), str(e), (("dcli-error", error_tag(e)),)
    unexpected.warning(f"{method}:{type(e).__name__}", "%s failed: %s: %s", method, type(e).__name__, e, exc_info=e)
    return grpc.StatusCode.INTERNAL, f"{method} failed: {type(e).__name__}: {e}", ()


async def abort(context: grpc.aio.ServicerContext, e: BaseException, method: str):
    status, details, metadata = status_of(e, method)
    await context.abort(status, details, trailing_metadata=metadata)


def kafka_fields(e: BrokerError | None) -> dict:
    """An answer's `error_code` and `error_message` for `e` (nothing for None: no error)."""
    return {"error_code": e.kafka_code, "error_message": e.message} if e is not None else {}


_PASS = (grpc.aio.AbortError, asyncio.CancelledError)


def guarded(method):
    """A unary servicer method whose failures end the call as `abort` says."""
    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except _PASS:
            raise
        except Exception as e:  # noqa: BLE001 - every failure becomes a status; bugs are logged
            await abort(context, e, method.__name__)
    return wrapper


def guarded_stream(method):
    """The same for a method that streams its answer."""
    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except _PASS:
            raise
        except Exception as e:  # noqa: BLE001
            await abort(context, e, method.__name__)
    return wrapper
