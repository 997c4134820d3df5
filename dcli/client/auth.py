"""Logging in and carrying the token: every channel to a dcli server gets it here.

With a user name and password (`--user`/`--password`, or `DCLI_USER`/`DCLI_PASSWORD`; etcd's
`NAME:PASSWORD` in one also works), `open_channel` (dcli.client.tls) wraps each channel in
`TokenInterceptor`: before a call it makes sure it holds a token, logging in once by a SCRAM
exchange (the password never leaves this process: dcli.wire.scram) and again shortly before the
token expires; the token goes with the call as the metadata `token`. A unary call refused for
its token (revoked, or expired early by a clock) is sent once more with a fresh one. One token
serves every channel and every node of the cluster, so CoordClient, KVClient, the producer,
consumer and admin clients share it. A server with auth off answers the login with no token:
calls then go without one.

    configure("root", "secret")           # what the CLI's --user does
    channel = open_channel("127.0.0.1:7181")

Inside a server process the node's own clients carry node tokens instead (`use_token_source`).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

import grpc

from dcli.wire import errors

TOKEN = "token"
ENV_USER, ENV_PASSWORD = "DCLI_USER", "DCLI_PASSWORD"
LOGIN_TIMEOUT_S = 10.0
NO_AUTH_RECHECK_S = 60.0        # a server with auth off is asked again after this long


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


_configured: Credentials | None = None
_token_source: Callable[[], str | None] | None = None
_lock = threading.Lock()
_tokens: dict[Credentials, tuple[str, float]] = {}     # credentials -> (token, refresh after, monotonic)


def configure(user: str | None, password: str | None) -> None:
    """The credentials every channel opened from now on logs in with (None: from the environment)."""
    global _configured
    _configured = Credentials(user, password or "") if user else None
    forget_tokens()


def use_token_source(source: Callable[[], str | None] | None) -> None:
    """Tokens from `source()` instead of logging in (a server's own clients)."""
    global _token_source
    _token_source = source


def split_user(value: str, password: str | None) -> tuple[str, str | None]:
    """etcd's `--user NAME:PASSWORD`, or NAME alone (the password given apart, or asked for)."""
    if password is None and ":" in value:
        value, password = value.split(":", 1)
    return value, password


def credentials() -> Credentials | None:
    if _configured is not None:
        return _configured
    user = os.environ.get(ENV_USER, "")
    if not user:
        return None
    user, password = split_user(user, os.environ.get(ENV_PASSWORD) or None)
    return Credentials(user, password or "")


def forget_tokens() -> None:
    """Log in again before the next call (a token was refused)."""
    with _lock:
        _tokens.clear()


def login(channel: grpc.Channel, creds: Credentials, timeout: float = LOGIN_TIMEOUT_S) -> tuple[str, int]:
    """(token, seconds it lasts) by SCRAM exchange on `channel`; ("", 0) when auth is off."""
    from dcli.v1 import auth_pb2 as apb
    from dcli.v1 import auth_pb2_grpc as apb_grpc
    from dcli.wire.scram import ClientExchange

    stub = apb_grpc.AuthStub(channel)
    exchange = ClientExchange(creds.user, creds.password)
    try:
        first = stub.Authenticate(apb.AuthenticateRequest(client_first=exchange.first()), timeout=timeout)
        if not first.server_first:
            return "", 0
        final = stub.Authenticate(apb.AuthenticateRequest(client_final=exchange.final(first.server_first),
                                                          exchange_id=first.exchange_id), timeout=timeout)
    except grpc.RpcError as e:
        raise _login_error(e) from None
    exchange.verify(final.server_final)
    return final.token, final.ttl_s


def _login_error(e: grpc.RpcError) -> errors.DcliError:
    """The server's error (its `dcli-error` tag), or UnavailableError when there was no answer.
    (dcli.client.rpc says more, but it imports this module: the tag is all a login needs.)"""
    for key, value in (e.trailing_metadata() or ()):
        if key == "dcli-error":
            return errors.from_tag(value, e.details() or "")
    if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.UnavailableError("", f"Cannot connect: {e.details() or e.code().name}")
    return errors.SystemError_("", f"{e.code().name}: {e.details()}")


class TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                       grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token to each call on a channel; `raw` is the same channel unwrapped (to log in)."""

    def __init__(self, raw: grpc.Channel):
        self._raw = raw

    def _token(self) -> str | None:
        if _token_source is not None:
            return _token_source()
        creds = credentials()
        if creds is None:
            return None
        now = time.monotonic()
        with _lock:
            held = _tokens.get(creds)
        if held is not None and held[1] > now:
            return held[0]
        try:
            token, ttl = login(self._raw, creds)
        except errors.UnavailableError:
            return None         # no server to log in to: the call itself says so
        # refreshed a little before it expires; a server with auth off is asked again later
        keep = ttl - min(30.0, ttl / 5) if token else NO_AUTH_RECHECK_S
        with _lock:
            _tokens[creds] = (token, now + keep)
        return token

    @staticmethod
    def _details(details, token: str | None):
        if not token:
            return details
        metadata = [m for m in (details.metadata or ()) if m[0] != TOKEN] + [(TOKEN, token)]
        return _Details(details.method, details.timeout, metadata, details.credentials,
                        getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        token = self._token()
        outcome = continuation(self._details(details, token), request)
        if _token_source is None and credentials() is not None and _refused_token(outcome):
            forget_tokens()         # revoked, or the clocks disagree: once more with a new one
            outcome = continuation(self._details(details, self._token()), request)
        return outcome

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details, self._token()), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details, self._token()), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details, self._token()), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression


def _refused_token(outcome) -> bool:
    """A finished call that the server refused for its token (a future still running: no)."""
    try:
        if not outcome.done() or outcome.code() != grpc.StatusCode.UNAUTHENTICATED:
            return False
        return any(k == "dcli-error" and v.endswith("InvalidAuthTokenError")
                   for k, v in (outcome.trailing_metadata() or ()))
    except Exception:  # noqa: BLE001 - an outcome without these is not a refusal
        return False


def wrap(channel: grpc.Channel) -> grpc.Channel:
    """`channel` with tokens, when this process has credentials or a token source; else itself."""
    if _token_source is None and credentials() is None:
        return channel
    return grpc.intercept_channel(channel, TokenInterceptor(channel))
