"""ZooKeeper's path rules (PathUtils.validatePath), with its exact messages.

    >>> validate_path("/parent//x")
    Traceback (most recent call last):
    ...
    dcli.wire.errors.InvalidPathError: Invalid path string "/parent//x" caused by empty node name specified @8
"""
from __future__ import annotations

import re

from dcli.wire.errors import InvalidPathError


def _bad_char(c: str) -> bool:
    o = ord(c)
    # Java's rule, on UTF-16 units: characters beyond the BMP are surrogate pairs there
    return (0 < o <= 0x1F or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xF8FF
            or 0xFFF0 <= o or o > 0xFFFF)


# A name of allowed characters (none of NUL, controls, surrogates and above, or "/"): a path
# made of such names, none starting with ".", is valid; anything else goes to the full check,
# which also says what is wrong with it.
_NAME = "[^/\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff]+"
_PLAIN = re.compile(f"/|(?:/{_NAME})+")


def path_problem(path: str, sequential: bool = False) -> str | None:
    """The message zkCli prints for an invalid path, or None when the path is valid.

    A sequential create may end with "/": the server appends the counter (`create -s /p/`).
    """
    if sequential:
        path = path + "1"
    if _PLAIN.fullmatch(path) and "/." not in path:
        return None             # the common case, without a loop over every character
    if not path:
        return "Path length must be > 0"
    if path[0] != "/":
        return "Path must start with / character"
    if len(path) == 1:
        return None
    if path[-1] == "/":
        return "Path must not end with / character"
    reason = None
    last = "/"
    for i in range(1, len(path)):
        c = path[i]
        if c == "\0":
            reason = f"null character not allowed @{i}"
        elif c == "/" and last == "/":
            reason = f"empty node name specified @{i}"
        elif c == "." and last == ".":
            if path[i - 2] == "/" and (i + 1 == len(path) or path[i + 1] == "/"):
                reason = f"relative paths not allowed @{i}"
        elif c == ".":
            if path[i - 1] == "/" and (i + 1 == len(path) or path[i + 1] == "/"):
                reason = f"relative paths not allowed @{i}"
        elif _bad_char(c):
            reason = f"invalid character @{i}"
        if reason:
            shown = path[:-1] if sequential else path
            return f'Invalid path string "{shown}" caused by {reason}'
        last = c
    return None


def validate_path(path: str, sequential: bool = False) -> str:
    """Return `path` if valid, else raise InvalidPathError with zkCli's message."""
    problem = path_problem(path, sequential)
    if problem:
        raise InvalidPathError(path, problem)
    return path


def parent_of(path: str) -> str:
    i = path.rfind("/")
    return "/" if i == 0 else path[:i]


def name_of(path: str) -> str:
    return path[path.rfind("/") + 1:]


def join(parent: str, name: str) -> str:
    return parent + name if parent == "/" else f"{parent}/{name}"
