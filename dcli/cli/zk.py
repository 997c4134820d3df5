"""`dcli zk ...` (and `zkCli ...`): zkCli's commands, one small function each.

A command parses, calls the client, and hands the result to the printer. One-shot commands open
a session and close it at the end (so an ephemeral made by `create -e` goes at once).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

from dcli.cli.common import DialTimeoutOption, ServerOption, WriteOutOption, apply_options, settings
from dcli.cli.zk_acl import USAGE as ACL_USAGE
from dcli.cli.zk_acl import parse_acl, register_acl_commands
from dcli.cli.zk_session import PathArg, parse_version, printer, session
from dcli.wire import errors
from dcli.wire.paths import validate_path

app = typer.Typer(name="zk", help="Coordination: the znode tree, as zkCli.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]}, add_completion=False,
                  rich_markup_mode=None)

MAX_TTL = 1099511627775

# zkCli's usage lines, printed when a command is missing an argument
USAGE = {
    "addWatch": "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    "create": "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
    "delete": "delete [-v version] path",
    "deleteall": "deleteall path [-b batch size]",
    "get": "get [-s] [-w] path",
    "getAllChildrenNumber": "getAllChildrenNumber path",
    "getEphemerals": "getEphemerals path",
    "ls": "ls [-s] [-w] [-R] path",
    "removewatches": "removewatches path [-c|-d|-a] [-l]",
    "set": "set [-s] [-v version] path data",
    "stat": "stat [-w] path",
    "sync": "sync path",
    "watch": "watch [--recursive] path [-- cmd ...]",
    **ACL_USAGE,
}


@app.callback()
def zk_options(ctx: typer.Context, server: Optional[str] = ServerOption,
               write_out: Optional[str] = WriteOutOption,
               dial_timeout: Optional[float] = DialTimeoutOption) -> None:
    apply_options(ctx, server, write_out, dial_timeout)


def read_data(data: Optional[str], data_file: Optional[Path]) -> bytes | None:
    if data is not None and data_file is not None:
        raise errors.UsageError("give the data as an argument or with --data-file, not both")
    if data_file is not None:
        if str(data_file) == "-":
            return sys.stdin.buffer.read()
        try:
            return data_file.read_bytes()
        except OSError as e:
            raise errors.UsageError(f"cannot read {data_file}: {e.strerror}") from None
    return None if data is None else data.encode()


class WatchWaiter:
    """Waits in a one-shot command for the event a -w watch set; --timeout gives up (exit 5)."""

    def __init__(self) -> None:
        self.event = None
        self._done = threading.Event()

    def __call__(self, event) -> None:
        if self.event is None:
            self.event = event
            self._done.set()

    def wait(self, timeout: Optional[float]):
        if not self._done.wait(timeout):
            raise errors.OperationTimeoutError("", "Timed out waiting for the watch to fire")
        return self.event


def watch_for(ctx: typer.Context, watch: bool):
    """(what to pass as watch=, a waiter or None). In the shell a watch goes to the shell's
    default watcher, which prints it when it fires; a one-shot command waits for it."""
    if not watch:
        return None, None
    if settings(ctx).client is not None:
        return True, None
    waiter = WatchWaiter()
    return waiter, waiter



TimeoutOption = typer.Option(None, "--timeout", metavar="SECONDS",
                             help="With -w: stop waiting for the event after this long (exit 5).")
DataFileOption = typer.Option(None, "--data-file", metavar="FILE", help="Read the data from FILE ('-' = stdin).")


@app.command("create")
def create(ctx: typer.Context, path: str = PathArg,
           data: Optional[str] = typer.Argument(None),
           acl: Optional[str] = typer.Argument(None, help="scheme:id:perms[,...], e.g. world:anyone:r"),
           sequential: bool = typer.Option(False, "-s", help="Sequential: append a 10-digit counter."),
           ephemeral: bool = typer.Option(False, "-e", help="Ephemeral: deleted when the session ends."),
           container: bool = typer.Option(False, "-c", help="Container: deleted once its last child goes."),
           ttl: Optional[str] = typer.Option(None, "-t", metavar="TTL", help="TTL node: milliseconds."),
           data_file: Optional[Path] = DataFileOption) -> None:
    """Create a znode: create [-s] [-e] [-c] [-t ttl] path [data] [acl]"""
    ttl_ms = 0
    if ttl is not None:
        try:
            ttl_ms = int(ttl)
        except ValueError:
            raise errors.UsageError("-t argument must be a long value") from None
        if ephemeral:
            raise errors.UsageError("TTLs cannot be used with Ephemeral znodes")
        if container:
            raise errors.UsageError("TTLs cannot be used with Container znodes")
        if not 0 < ttl_ms <= MAX_TTL:
            raise errors.UsageError(f"ttl must be positive and cannot be larger than: {MAX_TTL}")
    validate_path(path, sequential=sequential)
    value = read_data(data, data_file)
    entries = parse_acl(acl) if acl is not None else None
    with session(ctx) as zk:
        made = zk.create(path, value, ephemeral=ephemeral, sequence=sequential, container=container,
                         ttl=ttl_ms, include_stat=True, acl=entries)
    printer(ctx).created(*made)


@app.command("get")
def get(ctx: typer.Context, path: str = PathArg,
        stat: bool = typer.Option(False, "-s", help="Print the stat too."),
        watch: bool = typer.Option(False, "-w", help="Wait for the data watch to fire, print it."),
        timeout: Optional[float] = TimeoutOption) -> None:
    """Print a znode's data: get [-s] [-w] path"""
    validate_path(path)
    p = printer(ctx)
    watcher, waiter = watch_for(ctx, watch)
    with session(ctx) as zk:
        data, st = zk.get(path, watch=watcher)
        p.data(path, data, st if stat else None)
        if waiter:
            p.event(waiter.wait(timeout))


@app.command("set")
def set_(ctx: typer.Context, path: str = PathArg, data: Optional[str] = typer.Argument(None),
         stat: bool = typer.Option(False, "-s", help="Print the new stat."),
         version: Optional[str] = typer.Option(None, "-v", metavar="VERSION", help="Only if the data version is this."),
         data_file: Optional[Path] = DataFileOption) -> None:
    """Set a znode's data: set [-s] [-v version] path data"""
    validate_path(path)
    value = read_data(data, data_file)
    if value is None:
        raise errors.UsageError(USAGE["set"])
    v = parse_version(version)
    with session(ctx) as zk:
        st = zk.set(path, value, v)
    printer(ctx).set(path, st, stat)


@app.command("delete")
def delete(ctx: typer.Context, path: str = PathArg,
           version: Optional[str] = typer.Option(None, "-v", metavar="VERSION",
                                                 help="Only if the data version is this.")) -> None:
    """Delete a znode without children: delete [-v version] path"""
    validate_path(path)
    v = parse_version(version)
    with session(ctx) as zk:
        zk.delete(path, v)
    printer(ctx).deleted(path)


@app.command("deleteall")
def deleteall(ctx: typer.Context, path: str = PathArg,
              batch: Optional[int] = typer.Option(None, "-b", metavar="N",
                                                  help="Accepted for zkCli compatibility; deletes are pipelined.")) -> None:
    """Delete a znode and everything under it: deleteall path"""
    validate_path(path)
    if path == "/":
        raise errors.BadArgumentsError("/")
    with session(ctx) as zk:
        zk.delete(path, recursive=True)
    printer(ctx).deleted(path)


@app.command("ls")
def ls(ctx: typer.Context, path: str = PathArg,
       stat: bool = typer.Option(False, "-s", help="Print the stat too."),
       watch: bool = typer.Option(False, "-w", help="Wait for the child watch to fire, print it."),
       recursive: bool = typer.Option(False, "-R", help="Every path below, breadth first."),
       timeout: Optional[float] = TimeoutOption) -> None:
    """List a znode's children: ls [-s] [-w] [-R] path"""
    validate_path(path)
    p = printer(ctx)
    watcher, waiter = watch_for(ctx, watch)
    with session(ctx) as zk:
        if recursive:
            paths = list_tree(zk, path)
            p.tree(path, paths)
            if watcher:
                zk.get_children(path, watch=watcher)
        else:
            kids, st = zk.get_children(path, watch=watcher, include_data=True)
            p.children(path, sorted(kids), st if stat else None)
        if waiter:
            p.event(waiter.wait(timeout))


def list_tree(zk, path: str) -> list[str]:
    """zkCli's ls -R: breadth first, children sorted within each level, the path itself first."""
    order = [path]
    i = 0
    while i < len(order):
        level_start, level_end = i, len(order)
        futures = [zk.get_children_async(p) for p in order[level_start:level_end]]
        for p, f in zip(order[level_start:level_end], futures):
            try:
                kids = f.result()
            except errors.NoNodeError:
                if p == path:
                    raise
                kids = []
            prefix = "" if p == "/" else p
            order.extend(f"{prefix}/{k}" for k in sorted(kids))
        i = level_end
    return order


@app.command("stat")
def stat(ctx: typer.Context, path: str = PathArg,
         watch: bool = typer.Option(False, "-w", help="Wait for the exists watch to fire, print it."),
         timeout: Optional[float] = TimeoutOption) -> None:
    """Print a znode's stat: stat [-w] path"""
    validate_path(path)
    p = printer(ctx)
    watcher, waiter = watch_for(ctx, watch)
    with session(ctx) as zk:
        st = zk.exists(path, watch=watcher)
        if st is None:
            if not waiter:
                raise errors.NoNodeError(path)
            # zkCli prints the error and keeps the exists watch: wait for the node to appear
            sys.stderr.write(str(errors.NoNodeError(path)) + "\n")
        else:
            p.stat(path, st)
        if waiter:
            p.event(waiter.wait(timeout))


@app.command("sync")
def sync(ctx: typer.Context, path: str = PathArg) -> None:
    """Bring the connected server up to date with the leader: sync path"""
    validate_path(path)
    with session(ctx) as zk:
        zk.sync(path)
    printer(ctx).synced(path)


@app.command("getEphemerals")
def get_ephemerals(ctx: typer.Context, path: Optional[str] = typer.Argument(None)) -> None:
    """This session's ephemeral znodes (under path): getEphemerals [path]"""
    prefix = path or "/"
    validate_path(prefix)
    with session(ctx) as zk:
        paths = zk.get_ephemerals(prefix)
    printer(ctx).ephemerals(prefix, paths)


@app.command("getAllChildrenNumber")
def get_all_children_number(ctx: typer.Context, path: str = PathArg) -> None:
    """The number of znodes below path: getAllChildrenNumber path"""
    validate_path(path)
    with session(ctx) as zk:
        n = zk.get_all_children_number(path)
    printer(ctx).count(path, n)


@app.command("addWatch")
def add_watch(ctx: typer.Context, path: str = PathArg,
              mode: str = typer.Option("PERSISTENT_RECURSIVE", "-m", metavar="MODE",
                                       help="PERSISTENT or PERSISTENT_RECURSIVE."),
              count: Optional[int] = typer.Option(None, "--count", help="Stop after this many events."),
              timeout: Optional[float] = TimeoutOption) -> None:
    """Add a persistent watch and print its events until interrupted: addWatch [-m mode] path"""
    modes = {"PERSISTENT": "persistent", "PERSISTENT_RECURSIVE": "persistent_recursive"}
    if mode.upper() not in modes:
        raise errors.UsageError(f"{mode} is not a valid mode: PERSISTENT or PERSISTENT_RECURSIVE")
    if settings(ctx).client is not None:     # in the shell, as in zkCli: the shell prints its events
        validate_path(path)
        with session(ctx) as zk:
            zk.add_watch(path, True, modes[mode.upper()])
        return
    stream_events(ctx, path, modes[mode.upper()], [], count, timeout)


@app.command("watch")
def watch(ctx: typer.Context, path: str = PathArg,
          recursive: bool = typer.Option(False, "--recursive", "-R", help="The whole subtree."),
          command: Optional[list[str]] = typer.Argument(None, metavar="[-- CMD ...]"),
          count: Optional[int] = typer.Option(None, "--count", help="Stop after this many events."),
          timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS",
                                                  help="Stop after this long (exit 0).")) -> None:
    """Print every change under a path as it happens; with `-- CMD`, run CMD per event with
    DCLI_WATCH_TYPE, DCLI_WATCH_PATH, DCLI_WATCH_STATE and DCLI_WATCH_ZXID set."""
    stream_events(ctx, path, "persistent_recursive" if recursive else "persistent", command or [],
                  count, timeout, timeout_ok=True)


def stream_events(ctx, path, mode, command, count, timeout, timeout_ok=False) -> None:
    import queue

    validate_path(path)
    p = printer(ctx)
    events: queue.SimpleQueue = queue.SimpleQueue()
    with session(ctx, default_watcher=events.put) as zk:
        zk.add_watch(path, events.put, mode)
        kind = "recursive watch" if mode == "persistent_recursive" else "watch"
        sys.stderr.write(f"Watching {path} ({kind}); Ctrl-C stops\n")
        sys.stderr.flush()
        try:
            print_events(p, events, path, command, count, timeout, timeout_ok)
        finally:
            if settings(ctx).client is not None and zk.connected:   # the shell's session lives on
                zk.remove_watch(path, events.put, mode)


def print_events(p, events, path, command, count, timeout, timeout_ok) -> None:
    """Print (and run `command` for) each event until `count` of them, or `timeout` seconds."""
    import queue
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    while count is None or seen < count:
        try:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            ev = events.get(timeout=left)
        except queue.Empty:
            if timeout_ok:
                return
            raise errors.OperationTimeoutError("", "Timed out waiting for events") from None
        if ev.path is None:          # a connection state change
            if ev.state.value == "Expired":
                raise errors.SessionExpiredError(path)
            continue
        seen += 1
        p.event(ev)
        if command:
            env = dict(os.environ, DCLI_WATCH_TYPE=ev.type.value, DCLI_WATCH_PATH=ev.path,
                       DCLI_WATCH_STATE=ev.state.value, DCLI_WATCH_ZXID=hex(ev.zxid))
            subprocess.run(command, env=env, check=False)


@app.command("removewatches")
def remove_watches(ctx: typer.Context, path: str = PathArg,
                   children: bool = typer.Option(False, "-c", help="Child watches."),
                   data: bool = typer.Option(False, "-d", help="Data watches."),
                   any_: bool = typer.Option(False, "-a", help="Any watch (the default)."),
                   local: bool = typer.Option(False, "-l", help="Accepted for zkCli compatibility.")) -> None:
    """Remove this session's watches on path: removewatches path [-c|-d|-a] [-l]"""
    validate_path(path)
    if sum((children, data, any_)) > 1:
        raise errors.UsageError(USAGE["removewatches"])
    kind = "children" if children else "data" if data else "any"
    with session(ctx) as zk:
        removed = zk.remove_watches(path, kind)
    printer(ctx).watches_removed(path, removed)


@app.command("help")
def help_() -> None:
    """zkCli's command list."""
    lines = ["ZooKeeper -server host:port cmd args"] + [f"\t{USAGE[k]}" for k in sorted(USAGE, key=str.lower)]
    sys.stdout.write("\n".join(lines) + "\n")


@app.command("version")
def version() -> None:
    """The client's version."""
    from importlib.metadata import version as v

    print(f"dcli CLI version: {v('dcli')}")


register_acl_commands(app)
