"""Completion of dynamic values for the shells' completion scripts: znode paths, fetched from the
server with a short timeout, and nothing (at once) when no server answers."""
from __future__ import annotations

import os

DIAL_TIMEOUT_S = 0.5


def _server(ctx) -> str:
    from dcli.cli.common import DEFAULT_SERVER

    while ctx is not None:
        value = ctx.params.get("server") or ctx.params.get("server_")
        if value:
            return value
        ctx = ctx.parent
    return os.environ.get("DCLI_SERVER") or DEFAULT_SERVER


def znode_paths(ctx, param, incomplete: str):
    """Children of the path being typed whose names start with what is typed after the last '/'."""
    if not incomplete.startswith("/"):
        return ["/"] if incomplete == "" else []
    parent, _, prefix = incomplete.rpartition("/")
    parent = parent or "/"
    try:
        from dcli.client import CoordClient

        with CoordClient(_server(ctx), dial_timeout=DIAL_TIMEOUT_S) as zk:
            names = zk.get_children(parent)
    except Exception:       # no server, no such node: complete nothing rather than fail the shell
        return []
    base = "" if parent == "/" else parent
    return [f"{base}/{n}" for n in sorted(names) if n.startswith(prefix)]
