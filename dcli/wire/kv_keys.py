"""The key-value store's limits and name rules, shared by client and server.

Keys are byte strings of 1 to 1024 bytes: long enough for composite keys (`user/42/cart`),
short enough that the index, the Merkle exchange and every replica's key list stay cheap
(DynamoDB caps a sort key at 1024 bytes too). Values are at most 1 MiB, the same cap as a znode's
data (DESIGN.md), and may be empty. Keyspaces are named like topics: `[a-zA-Z0-9._-]`, 1 to 128
characters, not `.` or `..`. The server enforces all three; the client checks early for a
friendlier error.

    >>> validate_key(b"user/42")
    b'user/42'
    >>> prefix_end(b"user/"), prefix_end(b"a\\xff")
    (b'user0', b'b')
"""
from __future__ import annotations

import re

from dcli.wire.errors import BadArgumentsError, DataTooLargeError

MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_KEYSPACE_LENGTH = 128
DEFAULT_KEYSPACE = "default"
_KEYSPACE = re.compile(r"[a-zA-Z0-9._-]+")


class InvalidKeyError(BadArgumentsError):
    """A key that is empty, too long or not bytes (travels as BAD_ARGUMENTS)."""


class ValueTooLargeError(DataTooLargeError):
    """A value over MAX_VALUE_BYTES (travels as DATA_TOO_LARGE)."""


class InvalidKeyspaceError(BadArgumentsError):
    """A keyspace name outside the rules above (travels as BAD_ARGUMENTS)."""


def key_problem(key: object) -> str | None:
    """Why `key` is not a legal key, or None when it is."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        return f"key must be bytes, not {type(key).__name__}"
    size = len(key)
    if size == 0:
        return "key must not be empty"
    if size > MAX_KEY_BYTES:
        return f"key is {size} bytes, more than the limit of {MAX_KEY_BYTES}"
    return None


def validate_key(key: object) -> bytes:
    problem = key_problem(key)
    if problem is not None:
        raise InvalidKeyError(message=f"Invalid key: {problem}")
    return bytes(key)  # type: ignore[arg-type]


def validate_value(value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidKeyError(message=f"Invalid value: value must be bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(
            message=f"Value too large: {len(value)} bytes, more than the limit of {MAX_VALUE_BYTES}")
    return bytes(value)


def keyspace_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return f"keyspace must be a string, not {type(name).__name__}"
    if not name:
        return "keyspace must not be empty"
    if name in (".", ".."):
        return f"'{name}' is not allowed"
    if len(name) > MAX_KEYSPACE_LENGTH:
        return f"'{name}' is longer than {MAX_KEYSPACE_LENGTH} characters"
    if not _KEYSPACE.fullmatch(name):
        return f"'{name}' contains characters other than ASCII alphanumerics, '.', '_' and '-'"
    return None


def validate_keyspace(name: object) -> str:
    problem = keyspace_problem(name)
    if problem is not None:
        raise InvalidKeyspaceError(message=f"Invalid keyspace: {problem}")
    return name  # type: ignore[return-value]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with `prefix` (the exclusive end of a
    prefix scan), or None when there is none (the prefix is empty or all 0xff bytes)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
