"""`dcli cluster up|status|kill|stop|start|restart|pause|resume|logs|member|transfer-leader|env|down`:
a cluster of node processes on this machine, for learning and testing (dcli.cluster.LocalCluster
does the work); `member` and `transfer-leader` also act on any cluster given by --server."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from dcli.cli.common import WriteOutOption, apply_options, settings
from dcli.cluster.admin import PROMOTE_WAIT_S
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
                                                           "start` (repeat: --server-arg=--log-level --server-arg=info)."),
       tls: bool = typer.Option(False, "--tls", help="Make a CA and certificates for the nodes and the "
                                "clients (DIR/tls): clients connect with TLS and a certificate, nodes talk "
                                "to each other over mutual TLS. dcli commands find the files by themselves."),
       directory: Optional[Path] = DirOption,
       output: Optional[str] = WriteOutOption) -> None:
    """Start N node processes in the background, each with its own data dir and log, and wait
    until every one serves. A cluster already made in DIR that is down starts again as it was,
    with its data. With --tls, every connection to and between the nodes is TLS, with
    certificates of a CA made for the cluster; `dcli` commands against its nodes use them
    without any option (--cacert, --cert and --key, or DCLI_CACERT..., still win).

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
    started = cluster.up(nodes, base_port, server_arg, tls=tls)
    printers.nodes(fmt, started, "up")
    if fmt != "json":
        files = cluster.tls
        sys.stdout.write(f"cluster of {len(started)} nodes up in {cluster.directory} "
                         "(node-N: data, node-N.log: log)" + (", TLS on (tls: CA and certificates)" if files else "")
                         + "\n" + _exports(cluster))


def _exports(cluster) -> str:
    """`export` lines for the cluster's address list and, with --tls, its client's files."""
    lines = [f"export DCLI_SERVER={cluster.servers}"]
    files = cluster.tls or {}
    for name, var in (("cacert", "DCLI_CACERT"), ("cert", "DCLI_CERT"), ("key", "DCLI_KEY")):
        if name in files:
            lines.append(f"export {var}={files[name]}")
    return "\n".join(lines) + "\n"


@app.command("status")
def status(ctx: typer.Context,
           timeout: float = typer.Option(1.0, "--timeout", metavar="SECONDS",
                                         help="How long to wait for each node's answer."),
           directory: Optional[Path] = DirOption,
           output: Optional[str] = WriteOutOption) -> None:
    """Each node's address, Raft role and term, leader, commit index, last zxid, sessions,
    znodes, the broker controller it sees, and state: up, down (no process), paused (SIGSTOP)
    or unreachable (runs, does not answer). Nodes are asked side by side, so a frozen node
    costs one --timeout, not a hang.

    \b
    Example:
      $ dcli cluster status
      NODE  ADDRESS         ROLE      TERM  LEADER  COMMIT  LAST_ZXID  SESSIONS  ZNODES  CONTROLLER  STATE
      1     127.0.0.1:7181  leader       2       1      20       0x14         3      17           2  up
      2     127.0.0.1:7182  -            -       -       -          -         -       -           -  down
      3     127.0.0.1:7183  follower     2       1      20       0x14         3      17           2  up
      ZooKeeper protocol: 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183
      $ dcli cluster status -w json      # one object per node
    """
    from dcli.output import cluster as printers
    from dcli.wire import errors

    if timeout <= 0:
        raise errors.UsageError("--timeout must be positive")
    fmt = write_out(ctx, output)
    cluster = manager(directory)
    printers.status(fmt, cluster.status_all(timeout))
    zk = [n.zk_address for n in cluster.nodes if n.zk_address]
    files = cluster.tls
    if zk and fmt != "json":
        over = " (TLS)" if files else ""
        sys.stdout.write(f"ZooKeeper protocol{over}: {','.join(zk)}\n")
    if files and fmt != "json":
        sys.stdout.write(f"TLS on: clients (with certificates) and peers (mutual), CA {files['cacert']}\n")


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


member_app = typer.Typer(name="member", help="The cluster's members: list, add or remove one at a time.",
                         no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                         context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(member_app)

ServerListOption = typer.Option(None, "--server", "-server", metavar="HOST:PORT[,...]",
                                help="Act on the cluster at these addresses instead of the local one in --dir.")


def _servers(server: Optional[str], directory: Optional[Path]) -> list[str]:
    if server is not None:
        from dcli.client.session import parse_servers

        return parse_servers(server)
    return manager(directory).addresses


@member_app.command("list")
def member_list(ctx: typer.Context, server: Optional[str] = ServerListOption,
                directory: Optional[Path] = DirOption, output: Optional[str] = WriteOutOption) -> None:
    """The members, as the leader sees them: client address, peer address (where the nodes
    reach each other), ROLE (voter, or learner: added, catching up, no vote until the leader
    promotes it), whether the leader reaches it, and how far its log matches the leader's.

    \b
    Example:
      $ dcli cluster member list
      NODE  ADDRESS         PEER            ROLE     REACHABLE  MATCH
      1     127.0.0.1:7181  127.0.0.1:8181  voter    yes           42
      2     127.0.0.1:7182  127.0.0.1:8182  voter    yes           42
      3     127.0.0.1:7183  127.0.0.1:8183  voter    yes           42
      4     127.0.0.1:7184  127.0.0.1:8184  learner  no             0
    """
    from dcli.cluster import admin, status as status_rpc
    from dcli.output import cluster as printers

    fmt = write_out(ctx, output)
    leader = admin.find_leader(_servers(server, directory))
    answer = status_rpc.query({0: leader})[0]
    if isinstance(answer, Exception):
        from dcli.wire import errors

        raise errors.UnavailableError(leader, f"the leader at {leader} did not answer: {status_rpc.describe_failure(answer)}")
    printers.members(fmt, answer.members)


@member_app.command("add")
def member_add(ctx: typer.Context,
               node_id: Optional[str] = typer.Argument(None, metavar="[ID", help="With --server: the new node's id."),
               address: Optional[str] = typer.Argument(None, metavar="HOST:PORT[/PEER]]",
                                                       help="With --server: the new node's client address and, "
                                                            "after /, its peer address (default: port + 1000)."),
               server: Optional[str] = ServerListOption,
               wait: bool = typer.Option(False, "--wait", help="With --server: return once the leader has "
                                         f"promoted the node to voter (at most {PROMOTE_WAIT_S:.0f} s)."),
               directory: Optional[Path] = DirOption, output: Optional[str] = WriteOutOption) -> None:
    """Add one node, as a learner: it gets the log but no vote, and the leader promotes it to
    voter once its log has caught up. A node that never answers stays a learner and the cluster
    keeps its quorum; remove it with `member remove`.

    On the local cluster: start node N+1 on the next ports with --join, have the leader add it,
    and return once it is a voter. With --server ID HOST:PORT[/PEER]: only ask the leader to add
    it, and return at once, as `etcdctl member add` does (start that node yourself with `dcli
    server start --node-id ID --peers ... --join`, before or after); `--wait` waits for the
    promotion, and `member list` shows it (ROLE).

    \b
    Example:
      $ dcli cluster member add
      node 4 added at 127.0.0.1:7184 (pid 12345), a voter
      $ dcli cluster member add --server 10.0.0.1:7181 4 10.0.0.4:7181/10.0.0.4:8181
    """
    from dcli.output import cluster as printers
    from dcli.wire import errors

    fmt = write_out(ctx, output)
    if server is None:
        if node_id is not None or address is not None:
            raise errors.UsageError("ID and HOST:PORT go with --server; the local cluster picks them itself")
        n = manager(directory).add_node()
        EventLines(fmt)("added", f"node {n.id} added at {n.address} (pid {n.pid}), a voter", node=n.id,
                        address=n.address, pid=n.pid, role="voter")
        return
    from dcli.cluster import admin
    from dcli.wire.peers import parse_member, parse_node_id

    if node_id is None or address is None:
        raise errors.UsageError("with --server, give the new node's ID and HOST:PORT[/PEER]")
    member = parse_member(address, "member address")        # its client and peer addresses
    servers, new_id = _servers(server, directory), parse_node_id(node_id)
    members = admin.add_member(servers, new_id, str(member))
    if wait:
        promoted = admin.wait_promoted(servers, new_id, PROMOTE_WAIT_S)
        if promoted is None:
            raise errors.UnavailableError(server, f"node {new_id} is still a learner after {PROMOTE_WAIT_S:.0f} s: "
                                                  "is it started, and does it reach the leader's peer port?")
        members = promoted
    printers.members(fmt, members)
    if not wait:
        sys.stderr.write(f"node {new_id} joins as a learner; the leader promotes it to voter once it has caught up "
                         f"(`dcli cluster member list` shows its ROLE)\n")


@member_app.command("remove")
def member_remove(ctx: typer.Context, node: str = NodeArgument, server: Optional[str] = ServerListOption,
                  directory: Optional[Path] = DirOption, output: Optional[str] = WriteOutOption) -> None:
    """Remove one node: the leader takes it out of the cluster (a leader removing itself steps
    down). On the local cluster the node is then stopped and its data deleted.

    \b
    Example:
      $ dcli cluster member remove 4
      node 4 removed
    """
    from dcli.output import cluster as printers
    from dcli.wire.peers import parse_node_id

    fmt = write_out(ctx, output)
    if server is None:
        n = manager(directory).remove_node(node)
        EventLines(fmt)("removed", f"node {n.id} removed", node=n.id)
        return
    from dcli.cluster import admin

    printers.members(fmt, admin.remove_member(_servers(server, directory), parse_node_id(node)))


@app.command("transfer-leader")
def transfer_leader(ctx: typer.Context, node: str = NodeArgument, server: Optional[str] = ServerListOption,
                    directory: Optional[Path] = DirOption, output: Optional[str] = WriteOutOption) -> None:
    """Hand leadership to NODE (Raft's leader transfer: the leader brings it up to date, then
    tells it to campaign at once). Writes pause for the moment it takes.

    \b
    Example:
      $ dcli cluster transfer-leader 2
      node 2 leads now
    """
    from dcli.cluster import admin
    from dcli.wire.peers import parse_node_id

    fmt = write_out(ctx, output)
    leader = admin.transfer_leader(_servers(server, directory), parse_node_id(node, "node id"))
    EventLines(fmt)("leader", f"node {leader} leads now", node=leader)


@app.command("env")
def env(directory: Optional[Path] = DirOption) -> None:
    """Print the lines that point every dcli command at the cluster: its addresses and, for a
    cluster made with --tls, the client's CA, certificate and key.

    \b
    Example:
      $ eval "$(dcli cluster env)"
      $ dcli zk create /hello world       # served by the cluster's nodes
    """
    sys.stdout.write(_exports(manager(directory)))


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
