"""`dcli kv ...`: the Dynamo-style key-value store.

Each command parses, calls KVClient and hands the result to dcli.output.kv. Every result that
involved a quorum prints R, W, N and what each replica did (for `get` and `scan` that line goes to
stderr, so stdout holds only the values); `-w json` prints one object per result.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.wire import errors

app = typer.Typer(name="kv", help="Key-value store: quorum reads and writes on a consistent-hash ring.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})
KeyspaceOption = typer.Option("default", "--keyspace", "-k", metavar="NAME", help="The keyspace.")


def client(ctx: typer.Context, keyspace: str = "default"):
    from dcli.client.kv import KVClient

    s = settings(ctx)
    return KVClient(s.resolved_server(), keyspace=keyspace, timeout=max(s.dial_timeout, 10.0))


def fmt(ctx: typer.Context) -> str:
    return settings(ctx).resolved_write_out()


def parse_context(text: Optional[str]) -> Optional[bytes]:
    import base64
    import binascii

    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise errors.UsageError(f"invalid --context '{text}': expected the base64 context a get printed") from None


@app.command("put")
def put(ctx: typer.Context, key: str = typer.Argument(..., metavar="KEY"),
        value: Optional[str] = typer.Argument(None, metavar="VALUE"),
        w: Optional[int] = typer.Option(None, "-w", "--w", metavar="W", help="Replicas that must store it first."),
        file: Optional[Path] = typer.Option(None, "--file", metavar="FILE", help="Read the value from FILE (- for stdin)."),
        context: Optional[str] = typer.Option(None, "--context", metavar="BASE64",
                                              help="A get's context: supersede what it returned ('' : nothing)."),
        keyspace: str = KeyspaceOption) -> None:
    """Store VALUE under KEY.

    Example: dcli kv put user/42 alice -w 2
    """
    if (value is None) == (file is None):
        raise errors.UsageError("give a VALUE or --file, not both")
    if file is not None:
        data = sys.stdin.buffer.read() if str(file) == "-" else _read(file)
    else:
        data = value.encode()
    from dcli.output import kv as printers

    with client(ctx, keyspace) as kv:
        result = kv.put(key.encode(), data, w=w, context=parse_context(context))
    printers.write_result(result, fmt(ctx))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise errors.UsageError(f"cannot read --file {path}: {e.strerror or e}") from None


@app.command("get")
def get(ctx: typer.Context, key: str = typer.Argument(..., metavar="KEY"),
        r: Optional[int] = typer.Option(None, "-r", "--r", metavar="R", help="Replicas that must answer."),
        stats: bool = typer.Option(False, "-s", "--stats", help="Print version, context and every replica's answer."),
        keyspace: str = KeyspaceOption) -> None:
    """Print KEY's value (every sibling after concurrent writes).

    Example: dcli kv get user/42 -r 2 -s
    """
    from dcli.output import kv as printers

    with client(ctx, keyspace) as kv:
        result = kv.get(key.encode(), r=r)
    if not result.found and fmt(ctx) != "json":
        raise errors.KeyNotFoundError(key, f"Key not found: {key} ({printers.quorum_line(result.quorum, write=False)})")
    printers.get_result(result, fmt(ctx), stats)
    if not result.found:
        raise typer.Exit(errors.ExitCode.NOT_FOUND)


@app.command("delete")
def delete(ctx: typer.Context, key: str = typer.Argument(..., metavar="KEY"),
           w: Optional[int] = typer.Option(None, "-w", "--w", metavar="W", help="Replicas that must store the tombstone."),
           context: Optional[str] = typer.Option(None, "--context", metavar="BASE64"),
           keyspace: str = KeyspaceOption) -> None:
    """Delete KEY (a tombstone, removed after the grace period)."""
    from dcli.output import kv as printers

    with client(ctx, keyspace) as kv:
        result = kv.delete(key.encode(), w=w, context=parse_context(context))
    printers.write_result(result, fmt(ctx), deleted=True)


@app.command("scan")
def scan(ctx: typer.Context, prefix: Optional[str] = typer.Option(None, "--prefix", metavar="P"),
         start: Optional[str] = typer.Option(None, "--from", metavar="A", help="First key (inclusive)."),
         end: Optional[str] = typer.Option(None, "--to", metavar="B", help="Last key (exclusive)."),
         limit: int = typer.Option(100, "--limit", metavar="N"),
         keyspace: str = KeyspaceOption) -> None:
    """List keys and values in byte order, by prefix or range.

    Example: dcli kv scan --prefix user/ --limit 10
    """
    if prefix is not None and (start is not None or end is not None):
        raise errors.UsageError("give --prefix or --from/--to, not both")
    if limit < 1:
        raise errors.UsageError("--limit must be positive")
    from dcli.output import kv as printers

    with client(ctx, keyspace) as kv:
        result = kv.scan(prefix.encode() if prefix is not None else None,
                         start=(start or "").encode(), end=end.encode() if end is not None else None, limit=limit)
    printers.scan_result(result, fmt(ctx))


@app.command("ring")
def ring(ctx: typer.Context, keyspace: str = typer.Option("", "--keyspace", "-k", metavar="NAME")) -> None:
    """The ring: nodes, weights, virtual nodes, share of the key space, keys held, up/down."""
    from dcli.output import kv as printers

    with client(ctx) as kv:
        printers.ring(kv.ring(keyspace), fmt(ctx), keyspace)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Every node's state, load and ownership, as `nodetool status` prints them."""
    from dcli.output import kv as printers

    with client(ctx) as kv:
        printers.status(kv.ring(), fmt(ctx))


@app.command("create-keyspace")
def create_keyspace(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME"),
                    n: int = typer.Option(0, "-n", "--n", metavar="N", help="Replicas per key (default min(3, nodes))."),
                    r: int = typer.Option(0, "-r", "--r", metavar="R", help="Default R (default: a majority of N)."),
                    w: int = typer.Option(0, "-w", "--w", metavar="W", help="Default W (default: a majority of N)."),
                    eventual: bool = typer.Option(False, "--eventual",
                                                  help="Asynchronous replication, sloppy quorum, R=W=1 by default."),
                    range_splits: Optional[str] = typer.Option(None, "--range", metavar="SPLIT,...",
                                                               help="Range sharding, shards starting at these keys.")) -> None:
    """Create a keyspace with its own N, R, W, consistency and sharding.

    Example: dcli kv create-keyspace carts -n 3 --eventual
    """
    from dcli.output import kv as printers

    splits = [s.encode() for s in range_splits.split(",") if s] if range_splits is not None else []
    with client(ctx) as kv:
        answer = kv.create_keyspace(name, n=n, r=r, w=w, consistency="eventual" if eventual else "strict",
                                    sharding="range" if range_splits is not None else "hash", splits=splits)
    printers.ring(answer, fmt(ctx), name)


@app.command("rebalance")
def rebalance(ctx: typer.Context,
              add: Optional[list[str]] = typer.Option(
                  None, "--add", metavar="ID=HOST:PORT[/PEER]",
                  help="A node to add, with its client address and its peer address (HOST:PORT or a PORT on "
                       "the same host; left out: the one in the server's --peers, else the client port + 1000). "
                       "Repeat for more."),
              remove: Optional[list[str]] = typer.Option(None, "--remove", metavar="ID", help="A node to remove (repeat)."),
              weight: Optional[list[str]] = typer.Option(None, "--weight", metavar="ID=W", help="A node's new weight (repeat)."),
              dry_run: bool = typer.Option(False, "--dry-run", help="Show which ranges would move, move nothing.")) -> None:
    """Add or remove nodes or change weights, streaming only the ranges that change owners.

    Example: dcli kv rebalance --add 4=127.0.0.1:7184/8184
    """
    from dcli.output import kv as printers
    from dcli.wire.peers import parse_member, parse_node_id

    adds = {}
    for item in add or []:
        ident, sep, address = item.partition("=")
        if not sep:
            raise errors.UsageError(f"invalid --add '{item}': expected ID=HOST:PORT[/PEER]")
        parse_member(address, "--add address")          # checked here, sent as given
        adds[str(parse_node_id(ident, "node id"))] = address.strip()
    weights = {}
    for item in weight or []:
        ident, sep, value = item.partition("=")
        try:
            weights[str(parse_node_id(ident, "node id"))] = float(value)
        except ValueError:
            raise errors.UsageError(f"invalid --weight '{item}': expected ID=WEIGHT") from None
    removes = [str(parse_node_id(x, "node id")) for x in remove or []]
    output = fmt(ctx)
    with client(ctx) as kv:
        stream = kv.rebalance(add=adds, remove=removes, weights=weights, dry_run=dry_run)
        bar = _Bar() if output != "json" and sys.stdout.isatty() else None
        try:
            for p in stream:
                if p.phase == "plan":
                    printers.rebalance_plan(p, output)
                elif p.phase == "stream" and bar is not None:
                    bar.update(p)
                else:
                    if bar is not None and p.phase == "done":
                        bar.finish(p)
                    if output == "json" or p.phase != "stream":
                        printers.progress_line(p, output)
        finally:
            if bar is not None:
                bar.close()


class _Bar:
    """rich's progress bar over the ranges moved (a terminal only; pipes get the lines)."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("streaming ranges"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[keys]} keys · {task.fields[note]}"), TimeElapsedColumn())
        self.task = None

    def update(self, p) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("move", total=max(p.ranges_total, 1), keys=0, note="")
        self.progress.update(self.task, total=max(p.ranges_total, 1), completed=p.ranges_done,
                             keys=p.keys_moved, note=p.message)

    def finish(self, p) -> None:
        if self.task is not None:
            done = max(p.ranges_done, 1)
            self.progress.update(self.task, total=done, completed=done, keys=p.keys_moved, note="committed")

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
