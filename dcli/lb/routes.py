"""Layer-7 routes: which pool of backends a request goes to (`--route`).

    route = parse_route("method=POST,path=/api:writers")
    route.matches(b"POST", b"/api/orders", headers)      # True: goes to the pool 'writers'
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dcli.wire import errors

POOL_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Route:
    """`--route MATCH[,MATCH...]:POOL`: requests matching every MATCH go to the backends whose
    meta `pool` is POOL. MATCH is one of
        method=POST          the request method (alternatives with |: method=PUT|PATCH)
        path=/api            the path is /api or below it (/api/orders; not /apix)
        header=X-Tier        the header is present
        header=X-Tier=gold   the header has exactly this value
    Routes are tried in order; the first that matches decides. Requests that match none go to
    the backends whose pool no route names (those without a pool among them)."""

    text: str
    pool: str
    methods: frozenset = frozenset()
    path: str | None = None
    headers: tuple = ()          # (lower-case name, value or None for "present")

    def matches(self, method: bytes, target: bytes, headers: list) -> bool:
        if self.methods and method.decode("latin-1").upper() not in self.methods:
            return False
        if self.path is not None:
            path = target.split(b"?", 1)[0].decode("latin-1")
            prefix = self.path.rstrip("/")
            if not (path == self.path or path == prefix or path.startswith(prefix + "/")):
                return False
        for name, value in self.headers:
            found = [v.decode("latin-1") for n, v in headers if n.decode("latin-1") == name]
            if not found or (value is not None and value not in found):
                return False
        return True


def parse_route(text: str) -> Route:
    """One --route; errors.UsageError naming what is wrong."""
    def bad(why: str):
        return errors.UsageError(f"invalid --route '{text}': {why} (expected MATCH[,MATCH...]:POOL, "
                                 f"MATCH one of method=M, path=/prefix, header=NAME[=VALUE])")
    matches, sep, pool = text.rpartition(":")
    if not sep or not matches:
        raise bad("no ':POOL' at the end")
    if not POOL_NAME.match(pool):
        raise bad(f"pool name '{pool}' is not [A-Za-z0-9._-]+")
    methods: set[str] = set()
    path = None
    headers = []
    for item in matches.split(","):
        kind, eq, value = item.strip().partition("=")
        if not eq or not value:
            raise bad(f"'{item}' is not KIND=VALUE")
        if kind == "method":
            names = [m.strip().upper() for m in value.split("|")]
            if not all(re.match(r"^[A-Z]+$", m) for m in names):
                raise bad(f"'{value}' is not a method")
            methods.update(names)
        elif kind == "path":
            if not value.startswith("/"):
                raise bad(f"path '{value}' does not start with /")
            path = value
        elif kind == "header":
            name, has_value, wanted = value.partition("=")
            if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", name):
                raise bad(f"'{name}' is not a header name")
            headers.append((name.lower(), wanted if has_value else None))
        else:
            raise bad(f"unknown match '{kind}'")
    return Route(text, pool, frozenset(methods), path, tuple(headers))
