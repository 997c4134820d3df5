"""What every `dcli zk` command shares: its session (the shell's, or its own for one command),
its printer, the path argument with completion, and a version option's parsing."""
from __future__ import annotations

import contextlib
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.output.zk import printer_for
from dcli.wire import errors


@contextlib.contextmanager
def session(ctx: typer.Context, default_watcher=None):
    """The session a command runs in: the shell's when there is one, else its own, closed at the
    end (so a one-shot `create -e` leaves nothing behind)."""
    s = settings(ctx)
    if s.client is not None:
        yield s.client
        return
    from dcli.client import CoordClient

    client = CoordClient(s.resolved_server(), dial_timeout=s.dial_timeout, default_watcher=default_watcher)
    client.start()
    try:
        yield client
    finally:
        client.close()


def printer(ctx: typer.Context):
    return printer_for(settings(ctx).resolved_write_out())


def _complete_path(ctx: typer.Context, incomplete: str) -> list[str]:
    from dcli.cli.complete import znode_paths

    return znode_paths(ctx, None, incomplete)


PathArg = typer.Argument(..., metavar="PATH", autocompletion=_complete_path)


def parse_version(version: Optional[str]) -> int:
    if version is None:
        return -1
    try:
        v = int(version)
    except ValueError:
        raise errors.UsageError(f"version must be an integer: {version}") from None
    if not -1 <= v <= 2**31 - 1:
        raise errors.UsageError(f"version out of range: {version}")
    return v
