"""`dcli lock NAME [-- CMD ...]`: etcdctl lock's counterpart on dcli.recipes.Lock."""
from __future__ import annotations

import os
import queue
import threading
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.cli.recipe_support import (SessionTimeoutOption, exit_status, new_client, recipe_path,
                                     sigterm_as_interrupt, start_child, stop_child)
from dcli.output.recipes import EventLines
from dcli.wire import errors

app = typer.Typer(add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})
BASE = "/locks"


@app.command("lock")
def lock(ctx: typer.Context,
         name: str = typer.Argument(..., metavar="NAME", help=f"Lock name (under {BASE}) or path."),
         command: Optional[list[str]] = typer.Argument(None, metavar="[-- CMD ...]"),
         ident: Optional[str] = typer.Option(None, "--id", metavar="ID",
                                             help="This holder's identifier (default host:pid)."),
         read: bool = typer.Option(False, "--read", help="A shared (read) lock: readers do not exclude each other."),
         timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS",
                                                 help="Give up waiting for the lock after this long (exit 5)."),
         session_timeout: float = SessionTimeoutOption) -> None:
    """Acquire the lock NAME, run CMD while holding it and exit with CMD's exit code; without CMD,
    hold it until interrupted."""
    from dcli.recipes import Lock, ReadLock

    path = recipe_path(name, BASE)
    if timeout is not None and timeout < 0:
        raise errors.UsageError("--timeout must not be negative")
    out = EventLines(settings(ctx).resolved_write_out())
    sigterm_as_interrupt()
    ident = ident or f"{os.uname().nodename}:{os.getpid()}"
    happenings: queue.SimpleQueue = queue.SimpleQueue()
    client = new_client(ctx, session_timeout)
    child = None
    try:
        held = (ReadLock if read else Lock)(client, path, ident,
                                            on_lost=lambda reason: happenings.put(("lost", reason)))
        if not held.acquire(timeout=timeout):
            raise errors.OperationTimeoutError(path, f"Timed out waiting for the lock {path}")
        out("acquired", f"acquired {path} as {held.znode.rsplit('/', 1)[1]}" if held.znode else f"acquired {path}",
            path=path, id=ident)
        if not command:
            happenings.get()            # until Ctrl-C, SIGTERM, or the lock is lost
            raise errors.ConnectionLossError(path)
        child = start_child(command, {"DCLI_LOCK": path})
        threading.Thread(target=lambda c=child: happenings.put(("exit", c.wait())), daemon=True).start()
        what, arg = happenings.get()
        if what == "lost":
            stop_child(child)
            raise errors.ConnectionLossError(path, f"Lost the lock {path} ({arg}): the command was stopped")
        child = None
        held.release()
        raise typer.Exit(exit_status(arg))
    finally:
        if child is not None:
            stop_child(child)
        client.close()
