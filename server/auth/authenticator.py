"""Authenticator: logging in by SCRAM exchange, tokens out, tokens checked.

Logging in takes two calls on the same node (RFC 5802's four messages): `begin` answers the
client-first-message with the user's salt and iteration count and remembers the exchange for
EXCHANGE_TTL_S under a random id; `finish` checks the client's proof against the stored key and
answers the server signature and a signed token (tokens.py). An unknown user gets a made-up salt
(the same one every time, derived from the signing key) and fails at the proof, so the answer
does not say which names exist. Wrong proofs count against the FailureLimiter.

`principal(token)` says who a token stands for, on any node: the signature with the tree's key,
the expiry, and the user's record still being the one the token was issued against.

    auth = Authenticator(store, token_ttl_s=300)
    exchange_id, server_first = auth.begin("n,,n=root,r=abc", host="127.0.0.1")
    server_final, token = auth.finish(exchange_id, client_final, host="127.0.0.1")
    auth.principal(token)           # Principal("root", admin=True), or InvalidAuthTokenError
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from dcli.wire import scram
from dcli.wire.errors import AuthenticationFailedError, AuthStateError, InvalidAuthTokenError
from dcli_server.auth import tokens
from dcli_server.auth.limiter import FailureLimiter, keys_for
from dcli_server.auth.store import AuthStore
from dcli_server.auth.tokens import Claims, Principal

DEFAULT_TOKEN_TTL_S = 300       # etcd's simple tokens: 5 minutes
EXCHANGE_TTL_S = 30.0
MAX_EXCHANGES = 1024


@dataclass
class _Exchange:
    user: str
    credential: scram.Credential
    known: bool                 # a real user (an unknown one fails whatever the proof)
    bare: str
    server_first: str
    deadline: float


class Authenticator:
    def __init__(self, store: AuthStore, *, token_ttl_s: int = DEFAULT_TOKEN_TTL_S,
                 limiter: FailureLimiter | None = None, clock=time.monotonic, wall=time.time):
        self.store = store
        self.token_ttl_s = token_ttl_s
        self._limiter = limiter or FailureLimiter(clock=clock)
        self._clock = clock
        self._wall = wall
        self._exchanges: OrderedDict[str, _Exchange] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.store.enabled()

    # -- logging in -----------------------------------------------------------------------------

    def _decoy(self, user: str, key: bytes) -> scram.Credential:
        """A credential for a user that does not exist: stable salt, no key anyone can match."""
        salt = hmac.new(key, b"decoy-salt:" + user.encode(), hashlib.sha256).digest()[:scram.SALT_BYTES]
        return scram.Credential(salt, scram.DEFAULT_ITERATIONS, secrets.token_bytes(32), secrets.token_bytes(32))

    def begin(self, client_first: str, host: str) -> tuple[str, str]:
        """(exchange id, server-first-message)."""
        user, client_nonce, bare = scram.parse_client_first(client_first)
        self._limiter.check(keys_for(host, user))
        key = self.store.key()
        if key is None:         # auth is on only once the key is written: this node lags
            raise AuthStateError("", "the token signing key is not readable yet: try again")
        record = self.store.user(user)
        credential = record.credential if record is not None else self._decoy(user, key)
        server_first = scram.server_first_message(credential, client_nonce, scram.nonce())
        now = self._clock()
        for stale in [i for i, x in self._exchanges.items() if x.deadline <= now]:
            del self._exchanges[stale]
        while len(self._exchanges) >= MAX_EXCHANGES:
            self._exchanges.popitem(last=False)
        exchange_id = secrets.token_urlsafe(16)
        self._exchanges[exchange_id] = _Exchange(user, credential, record is not None, bare, server_first,
                                                 now + EXCHANGE_TTL_S)
        return exchange_id, server_first

    def finish(self, exchange_id: str, client_final: str, host: str) -> tuple[str, str]:
        """(server-final-message, token); AuthenticationFailedError for a wrong proof."""
        exchange = self._exchanges.pop(exchange_id, None)
        if exchange is None or exchange.deadline <= self._clock():
            raise AuthenticationFailedError("", "authentication failed: the exchange expired or is unknown; "
                                                "start again")
        keys = keys_for(host, exchange.user)
        self._limiter.check(keys)
        try:
            server_final = scram.verify_client_final(exchange.credential, exchange.bare, exchange.server_first,
                                                     client_final)
            record = self.store.user(exchange.user)
            if not exchange.known or record is None or record.credential != exchange.credential:
                raise AuthenticationFailedError()
        except AuthenticationFailedError:
            self._limiter.failed(keys)
            raise
        self._limiter.succeeded(keys)
        return server_final, self.issue(record.name, record.generation)

    def check_password(self, user: str, password: str, host: str) -> Principal:
        """A password sent in the clear (ZooKeeper's `addauth digest user:password`; TLS keeps it
        from the wire) checked against the user's stored SCRAM credential, with the same limit
        on guessing as a login. AuthenticationFailedError when it does not match."""
        keys = keys_for(host, user)
        self._limiter.check(keys)
        record = self.store.user(user)
        if record is None:
            self._limiter.failed(keys)
            raise AuthenticationFailedError()
        stored = record.credential
        offered = scram.Credential.from_password(password, iterations=stored.iterations, salt=stored.salt)
        if not hmac.compare_digest(offered.stored_key, stored.stored_key):
            self._limiter.failed(keys)
            raise AuthenticationFailedError()
        self._limiter.succeeded(keys)
        return Principal(record.name, admin=record.admin)

    def issue(self, user: str, generation: int, ttl_s: float | None = None) -> str:
        key = self.store.key()
        if key is None:
            raise AuthStateError("", "the token signing key is not readable yet: try again")
        expires = self._wall() + (ttl_s if ttl_s is not None else self.token_ttl_s)
        return tokens.sign(key, Claims(user, generation, expires))

    # -- checking tokens ------------------------------------------------------------------------

    def principal(self, token: str) -> Principal:
        key = self.store.key()
        if not token:
            raise InvalidAuthTokenError("", "authentication required: give --user NAME (DCLI_USER)")
        if key is None:
            raise InvalidAuthTokenError()
        claims = tokens.verify(key, token, self._wall())
        record = self.store.user(claims.user)
        if record is None or record.generation != claims.generation:
            raise InvalidAuthTokenError("", "auth token revoked: the user was deleted or its password changed")
        return Principal(record.name, admin=record.admin)
