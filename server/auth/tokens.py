"""Tokens: who a caller is, signed so that every node of the cluster can check it.

A token is `v1.<payload>.<signature>`: the payload (base64url JSON) names the user, the
generation of the user's record it was issued against (the record's mzxid: a new password or a
deleted user ends every token issued before) and the time it expires (Unix seconds); the
signature is HMAC-SHA-256 over the payload with the cluster's signing key, which lives in the
replicated tree (/dcli/auth/key) and is replaced each time auth is turned on. Any node holding
the tree can check any node's tokens; nobody without the key can make one.

    token = sign(key, Claims("alice", generation=42, expires=time.time() + 300))
    claims = verify(key, token, now=time.time())        # InvalidAuthTokenError when not good

The node's own services (the broker's membership agent, which still opens a client session on
the node's port) carry tokens of the principal `@node<ID>` (a name no user can have), minted in
process with the same key.
"""
from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
from dataclasses import dataclass

from dcli.wire.errors import InvalidAuthTokenError

PREFIX = "v1"
MAX_TOKEN_CHARS = 2048
NODE_PREFIX = "@node"           # internal principals; user names cannot start with '@'


@dataclass(frozen=True)
class Claims:
    user: str
    generation: int
    expires: float


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    admin: bool

    @property
    def internal(self) -> bool:
        return self.name.startswith(NODE_PREFIX)


# The caller of the call being served, set by the client listener's interceptor (None: auth off).
caller: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("dcli_auth_caller", default=None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def sign(key: bytes, claims: Claims) -> str:
    body = json.dumps({"u": claims.user, "g": claims.generation, "exp": int(claims.expires)},
                      separators=(",", ":"), sort_keys=True)
    payload = _b64(body.encode())
    return f"{PREFIX}.{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, now: float) -> Claims:
    """The token's claims if it is ours, intact and not expired."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidAuthTokenError()
    prefix, _, rest = token.partition(".")
    payload, _, mac = rest.partition(".")
    if prefix != PREFIX or not payload or not mac:
        raise InvalidAuthTokenError()
    if not hmac.compare_digest(_mac(key, payload).encode(), mac.encode("ascii", "replace")):
        raise InvalidAuthTokenError()
    try:
        doc = json.loads(_unb64(payload))
        claims = Claims(str(doc["u"]), int(doc["g"]), float(doc["exp"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidAuthTokenError() from None
    if claims.expires <= now:
        raise InvalidAuthTokenError("", "auth token expired")
    return claims
