"""`dcli cluster up|status|kill|stop|start|restart|pause|resume|logs|env|down`: a cluster of node
processes on this machine, for learning and testing (dcli.cluster.LocalCluster does the work)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from dcli.cli.common import WriteOutOption, apply_options, settings
from dcli.output.recipes import EventLines

app = typer.Typer(name="cluster", help="A local cluster: start, inspect, kill and restart node processes.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})



@app.callback()
def group(ctx: typer.Context, write_out: Optional[str] = WriteOutOption) -> None:
    apply_options(ctx, None, write_out, None)


DirOption = typer.Option(None, "--dir", metavar="DIR", envvar="DCLI_CLUSTER_DIR", show_envvar=False,
                         help="The cluster's directory: state, data dirs, logs (env DCLI_CLUSTER_DIR; "
                              "default ~/.local/share/dcli/cluster).")
NodeArgument = typer.Argument(..., metavar="NODE", help="A node id (1, 2, ...).")


def manager(directory: Optional[Path]):
    from dcli.cluster import LocalCluster

    return LocalCluster(directory)


def write_out(ctx: typer.Context, given: Optional[str]) -> str:
    """-w after the command (`dcli cluster status -w json`) as before it (`dcli -w json cluster ...`)."""
    apply_options(ctx, None, given, None)
    return settings(ctx).resolved_write_out()


@app.command("up")
def up(ctx: typer.Context,
       nodes: Optional[int] = typer.Option(None, "--nodes", "-n", metavar="N",
                                           help="How many nodes (default 3; odd sizes tolerate failures best)."),
       base_port: Optional[int] = typer.Option(None, "--base-port", metavar="PORT",
                                               help="Node i listens on 127.0.0.1:PORT+i-1 (default 7181; "
                                                    "0 picks free ports)."),
       server_arg: Optional[list[str]] = typer.Option(None, "--server-arg", metavar="ARG",
                                                      help="An extra option for every node's `dcli server "
                                                           "start` (repeat: --server-arg=--fsync --server-arg=batch)."),
       directory: Optional[Path] = DirOption,
       output: Optional[str] = WriteOutOption) -> None:
    """Start N node processes in the background, each with its own data dir and log, and wait
    until every one serves. A cluster already made in DIR that is down starts again as it was,
    with its data.

    \b
    Example:
      $ dcli cluster up --nodes 3
      NODE  ADDRESS          PID
      1     127.0.0.1:7181  41230
      2     127.0.0.1:7182  41231
      3     127.0.0.1:7183  41232
      cluster of 3 nodes up in /home/me/.local/share/dcli/cluster (node-N: data, node-N.log: log)
      export DCLI_SERVER=127.0.0.1:7181,127.0.0.1:7182,127.0.0.1:7183
      $ eval "$(dcli cluster env)"       # every dcli command now uses the cluster
    """
    from dcli.cluster.manager import DEFAULT_NODES, size_warning
    from dcli.output import cluster as printers

    warning = size_warning(DEFAULT_NODES if nodes is None else nodes)
    if warning:
        sys.stderr.write(warning + "\n")
    fmt = write_out(ctx, output)
    cluster = manager(directory)
    started = cluster.up(nodes, base_port, server_arg)
    printers.nodes(fmt, started, "up")
    if fmt != "json":
        sys.stdout.write(f"cluster of {len(started)} nodes up in {cluster.directory} "
                         "(node-N: data, node-N.log: log)\n"
                         f"export DCLI_SERVER={cluster.servers}\n")


@app.command("status")
def status(ctx: typer.Context,
           timeout: float = typer.Option(1.0, "--timeout", metavar="SECONDS",
                                         help="How long to wait for each node's answer."),
           directory: Optional[Path] = DirOption,
           output: Optional[str] = WriteOutOption) -> None:
    """Each node's address, Raft role and term, leader, commit index, last zxid, sessions,
    znodes and state: up, down (no process), paused (SIGSTOP) or unreachable (runs, does not
    answer). Nodes are asked side by side, so a frozen node costs one --timeout, not a hang.

    \b
    Example:
      $ dcli cluster status
      NODE  ADDRESS         ROLE      TERM  LEADER  COMMIT  LAST_ZXID  SESSIONS  ZNODES  STATE
      1     127.0.0.1:7181  leader       2       1      14        0xe         1       6  up
      2     127.0.0.1:7182  -            -       -       -          -         -       -  down
      3     127.0.0.1:7183  follower     2       1      14        0xe         0       6  up
      $ dcli cluster status -w json      # one object per node
    """
    from dcli.output import cluster as printers
    from dcli.wire import errors

    if timeout <= 0:
        raise errors.UsageError("--timeout must be positive")
    fmt = write_out(ctx, output)
    printers.status(fmt, manager(directory).status_all(timeout))


@app.command("kill")
def kill(ctx: typer.Context, node: str = NodeArgument, directory: Optional[Path] = DirOption,
         output: Optional[str] = WriteOutOption) -> None:
    """SIGKILL one node: it dies at once, as in a crash (no shutdown code runs).

    \b
    Example:
      $ dcli cluster kill 2
      node 2 killed (SIGKILL)
    """
    out = EventLines(write_out(ctx, output))
    cluster = manager(directory)
    n = cluster.node(node)
    cluster.kill(n.id)
    out("killed", f"node {n.id} killed (SIGKILL)", node=n.id)


@app.command("stop")
def stop(ctx: typer.Context, node: str = NodeArgument,
         grace: float = typer.Option(10.0, "--grace", metavar="SECONDS",
                                     help="SIGKILL it if it has not exited this long after SIGTERM."),
         directory: Optional[Path] = DirOption,
         output: Optional[str] = WriteOutOption) -> None:
    """Stop one node cleanly: SIGTERM, then SIGKILL if it has not exited within --grace.

    \b
    Example:
      $ dcli cluster stop 2
      node 2 stopped
    """
    out = EventLines(write_out(ctx, output))
    cluster = manager(directory)
    n = cluster.node(node)
    if cluster.stop(n.id, grace):
        out("stopped", f"node {n.id} stopped", node=n.id)
    else:
        out("not-running", f"node {n.id} was not running", node=n.id)


@app.command("start")
def start(ctx: typer.Context, node: str = NodeArgument, directory: Optional[Path] = DirOption,
          output: Optional[str] = WriteOutOption) -> None:
    """Start one node that is down, on its address and data dir, and wait until it serves.

    \b
    Example:
      $ dcli cluster start 2
      node 2 started on 127.0.0.1:7182 (pid 41388)
    """
    out = EventLines(write_out(ctx, output))
    n = manager(directory).start(node)
    out("started", f"node {n.id} started on {n.address} (pid {n.pid})", node=n.id,
                address=n.address, pid=n.pid)


@app.command("restart")
def restart(ctx: typer.Context, node: str = NodeArgument,
            kill_: bool = typer.Option(False, "--kill", help="SIGKILL it instead of stopping it cleanly."),
            directory: Optional[Path] = DirOption,
            output: Optional[str] = WriteOutOption) -> None:
    """Stop one node (SIGTERM; SIGKILL with --kill) if it runs, and start it again.

    \b
    Example:
      $ dcli cluster restart 1 --kill
      node 1 restarted on 127.0.0.1:7181 (pid 41420)
    """
    out = EventLines(write_out(ctx, output))
    n = manager(directory).restart(node, kill=kill_)
    out("restarted", f"node {n.id} restarted on {n.address} (pid {n.pid})", node=n.id,
                address=n.address, pid=n.pid)


@app.command("pause")
def pause(ctx: typer.Context, node: str = NodeArgument, directory: Optional[Path] = DirOption,
          output: Optional[str] = WriteOutOption) -> None:
    """SIGSTOP one node: it freezes with its connections open, as a node stuck in a long GC
    pause or behind a dead link. Its peers and clients see it stop answering.

    \b
    Example:
      $ dcli cluster pause 1
      node 1 paused (SIGSTOP): `dcli cluster resume 1` continues it
    """
    out = EventLines(write_out(ctx, output))
    cluster = manager(directory)
    n = cluster.node(node)
    if cluster.pause(n.id):
        out("paused", f"node {n.id} paused (SIGSTOP): `dcli cluster resume {n.id}` continues it",
                    node=n.id)
    else:
        out("paused", f"node {n.id} was already paused", node=n.id)


@app.command("resume")
def resume(ctx: typer.Context, node: str = NodeArgument, directory: Optional[Path] = DirOption,
           output: Optional[str] = WriteOutOption) -> None:
    """SIGCONT a paused node: it carries on where it froze.

    \b
    Example:
      $ dcli cluster resume 1
      node 1 resumed (SIGCONT)
    """
    out = EventLines(write_out(ctx, output))
    cluster = manager(directory)
    n = cluster.node(node)
    if cluster.resume(n.id):
        out("resumed", f"node {n.id} resumed (SIGCONT)", node=n.id)
    else:
        out("resumed", f"node {n.id} was not paused", node=n.id)


@app.command("logs")
def logs(node: str = NodeArgument,
         lines: Optional[int] = typer.Option(None, "--tail", "-n", metavar="LINES",
                                             help="Only the last LINES lines (default: all)."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing what is added, until Ctrl-C."),
         path: bool = typer.Option(False, "--path", help="Print the log file's path instead."),
         directory: Optional[Path] = DirOption) -> None:
    """One node's log: what it printed (stdout and stderr) over all its starts, each start
    marked by a `--- dcli cluster: starting node N` line.

    \b
    Example:
      $ dcli cluster logs 2 -n 2
      --- dcli cluster: starting node 2 at 2026-11-25 10:02:11
      dcli server listening on 127.0.0.1:7182, data in .../cluster/node-2 (fsync always)
      $ dcli cluster logs 2 -f            # follow; Ctrl-C stops
    """
    from dcli.wire import errors

    if lines is not None and lines < 0:
        raise errors.UsageError("--tail must not be negative")
    cluster = manager(directory)
    log = cluster.log_path(node)
    if path:
        sys.stdout.write(f"{log}\n")
        return
    sys.stdout.write(cluster.tail(node, lines))
    sys.stdout.flush()
    if follow:
        follow_file(log)


def follow_file(path: Path, interval: float = 0.2) -> None:
    """tail -f: print what is appended to path until Ctrl-C (exit 130, quietly, as tail)."""
    try:
        position = path.stat().st_size if path.exists() else 0
        while True:
            try:
                with open(path, "rb") as f:
                    if path.stat().st_size < position:      # replaced or truncated: from the start
                        position = 0
                    f.seek(position)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                position += len(chunk)
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("env")
def env(directory: Optional[Path] = DirOption) -> None:
    """Print the line that points every dcli command at the cluster.

    \b
    Example:
      $ eval "$(dcli cluster env)"
      $ dcli zk create /hello world       # served by the cluster's nodes
    """
    sys.stdout.write(f"export DCLI_SERVER={manager(directory).servers}\n")


@app.command("down")
def down(ctx: typer.Context,
         purge: bool = typer.Option(False, "--purge", help="Also delete the nodes' data, logs and cluster.json."),
         directory: Optional[Path] = DirOption,
         output: Optional[str] = WriteOutOption) -> None:
    """Stop every node (SIGTERM, SIGKILL after 10 s). The data stays: `dcli cluster up` brings the
    same cluster back with it, as `docker compose down` keeps volumes. --purge deletes it.

    \b
    Example:
      $ dcli cluster down
      stopped node 1, 2, 3; data kept in /home/me/.local/share/dcli/cluster
      $ dcli cluster down --purge
      removed the cluster in /home/me/.local/share/dcli/cluster
    """
    out = EventLines(write_out(ctx, output))
    cluster = manager(directory)
    stopped = cluster.down(purge)
    what = f"stopped node {', '.join(map(str, stopped))}; " if stopped else "no node was running; "
    if purge:
        text = what + f"removed the cluster in {cluster.directory}"
    else:
        text = what + f"data kept in {cluster.directory}"
    out("down", text, nodes=stopped, purged=purge, dir=str(cluster.directory))
