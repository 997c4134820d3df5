"""SCRAM-SHA-256 (RFC 5802, RFC 7677): the credential a user is stored as, and both sides of the
exchange that proves a password without sending it.

A user is kept as Kafka keeps SCRAM credentials: a random salt, an iteration count and two keys
derived from the password (StoredKey, ServerKey); the password itself is never stored nor sent.
The client computes the credential when it adds a user or changes a password; to log in, it and
the server trade the four messages of RFC 5802 (client-first, server-first, client-final,
server-final), in their textual form, over two calls:

    client = ClientExchange("root", "secret")
    first = client.first()                                  # n,,n=root,r=<client nonce>
    server_first = server_first_message(credential, first_bare(first), nonce())   # on the server
    final = client.final(server_first)                      # c=biws,r=...,p=<proof>
    server_final = verify_client_final(credential, first_bare(first), server_first, final)
    client.verify(server_final)                             # the server knew the key too

Names are escaped as the RFC says (`=2C` for ',', `=3D` for '='); passwords are taken as UTF-8
without SASLprep (dcli's user names are plain ASCII; the client and the server agree either way,
since both sides of dcli apply the same rule). Channel binding is not used (gs2 header `n,,`).
Shared by the client and the server: imports nothing of dcli but the errors.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from dcli.wire.errors import AuthenticationFailedError, BadArgumentsError

MIN_ITERATIONS = 4096              # RFC 7677's floor
MAX_ITERATIONS = 1 << 20           # a stored count above this would let one login take seconds
DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16
KEY_BYTES = 32                     # SHA-256
GS2_HEADER = "n,,"                 # no channel binding, no authzid
MAX_MESSAGE_CHARS = 1024


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise BadArgumentsError("", f"invalid SCRAM message: {what} is not base64") from None


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC-SHA-256."""
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def nonce() -> str:
    """A fresh printable nonce (no ',')."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Credential:
    """What is stored for a user: enough to check a proof, not enough to make one."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, *, iterations: int = DEFAULT_ITERATIONS,
                      salt: bytes | None = None) -> Credential:
        salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
        salted = salted_password(password, salt, iterations)
        return cls(salt, iterations, _h(_hmac(salted, b"Client Key")), _hmac(salted, b"Server Key"))

    def check(self) -> Credential:
        """BadArgumentsError unless every part has a sane size (it came over the network)."""
        if not MIN_ITERATIONS <= self.iterations <= MAX_ITERATIONS:
            raise BadArgumentsError("", f"SCRAM iterations must be {MIN_ITERATIONS}..{MAX_ITERATIONS}, "
                                        f"not {self.iterations}")
        if not 8 <= len(self.salt) <= 64:
            raise BadArgumentsError("", "SCRAM salt must be 8 to 64 bytes")
        if len(self.stored_key) != KEY_BYTES or len(self.server_key) != KEY_BYTES:
            raise BadArgumentsError("", f"SCRAM keys must be {KEY_BYTES} bytes")
        return self

    def to_json(self) -> dict:
        return {"salt": _b64(self.salt), "iterations": self.iterations,
                "stored_key": _b64(self.stored_key), "server_key": _b64(self.server_key)}

    @classmethod
    def from_json(cls, doc: dict) -> Credential:
        return cls(_unb64(doc["salt"], "salt"), int(doc["iterations"]),
                   _unb64(doc["stored_key"], "stored_key"), _unb64(doc["server_key"], "server_key"))


def escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_name(text: str) -> str:
    return text.replace("=2C", ",").replace("=3D", "=")


def _attributes(message: str, what: str) -> dict[str, str]:
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadArgumentsError("", f"invalid SCRAM {what}: longer than {MAX_MESSAGE_CHARS} characters")
    out: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if len(key) != 1 or not sep:
            raise BadArgumentsError("", f"invalid SCRAM {what}: {part[:40]!r}")
        out.setdefault(key, value)
    return out


def first_bare(client_first: str) -> str:
    """client-first-message-bare: the client's first message without its gs2 header."""
    if not client_first.startswith(GS2_HEADER):
        raise BadArgumentsError("", "invalid SCRAM client-first-message: channel binding is not supported")
    return client_first[len(GS2_HEADER):]


def parse_client_first(client_first: str) -> tuple[str, str, str]:
    """(user name, client nonce, client-first-message-bare)."""
    bare = first_bare(client_first)
    attrs = _attributes(bare, "client-first-message")
    if "n" not in attrs or not attrs.get("r"):
        raise BadArgumentsError("", "invalid SCRAM client-first-message: n= and r= are required")
    return unescape_name(attrs["n"]), attrs["r"], bare


def server_first_message(credential: Credential, client_nonce: str, server_nonce: str) -> str:
    return f"r={client_nonce}{server_nonce},s={_b64(credential.salt)},i={credential.iterations}"


def _without_proof(client_final: str) -> str:
    head, sep, _ = client_final.rpartition(",p=")
    if not sep:
        raise BadArgumentsError("", "invalid SCRAM client-final-message: no proof")
    return head


def verify_client_final(credential: Credential, bare: str, server_first: str, client_final: str) -> str:
    """server-final-message (`v=...`) when the proof is right; AuthenticationFailedError if not."""
    attrs = _attributes(client_final, "client-final-message")
    expected_nonce = _attributes(server_first, "server-first-message")["r"]
    if attrs.get("c") != _b64(GS2_HEADER.encode()) or attrs.get("r") != expected_nonce or "p" not in attrs:
        raise AuthenticationFailedError()
    proof = _unb64(attrs["p"], "proof")
    auth_message = f"{bare},{server_first},{_without_proof(client_final)}".encode()
    signature = _hmac(credential.stored_key, auth_message)
    if len(proof) != KEY_BYTES:
        raise AuthenticationFailedError()
    client_key = bytes(a ^ b for a, b in zip(proof, signature))
    if not hmac.compare_digest(_h(client_key), credential.stored_key):
        raise AuthenticationFailedError()
    return "v=" + _b64(_hmac(credential.server_key, auth_message))


class ClientExchange:
    """The client's side: `first()`, then `final(server_first)`, then `verify(server_final)`."""

    def __init__(self, user: str, password: str, client_nonce: str | None = None):
        self.user = user
        self._password = password
        self._nonce = client_nonce or nonce()
        self._bare = f"n={escape_name(user)},r={self._nonce}"
        self._auth_message = b""
        self._server_key = b""

    def first(self) -> str:
        return GS2_HEADER + self._bare

    def final(self, server_first: str) -> str:
        attrs = _attributes(server_first, "server-first-message")
        combined, salt = attrs.get("r", ""), _unb64(attrs.get("s", ""), "salt")
        try:
            iterations = int(attrs.get("i", ""))
        except ValueError:
            raise BadArgumentsError("", "invalid SCRAM server-first-message: i= is not a number") from None
        if not combined.startswith(self._nonce) or len(combined) == len(self._nonce):
            raise AuthenticationFailedError("", "the server's SCRAM nonce does not extend ours")
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise AuthenticationFailedError("", f"the server asks for {iterations} SCRAM iterations")
        salted = salted_password(self._password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        without_proof = f"c={_b64(GS2_HEADER.encode())},r={combined}"
        self._auth_message = f"{self._bare},{server_first},{without_proof}".encode()
        signature = _hmac(_h(client_key), self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self._server_key = _hmac(salted, b"Server Key")
        return f"{without_proof},p={_b64(proof)}"

    def verify(self, server_final: str) -> None:
        """AuthenticationFailedError unless the server proved it holds our ServerKey."""
        expected = "v=" + _b64(_hmac(self._server_key, self._auth_message))
        if not self._auth_message or not hmac.compare_digest(server_final.encode(), expected.encode()):
            raise AuthenticationFailedError("", "the server's SCRAM signature is wrong")
