"""A local cluster: N dcli server processes on this machine, with their ports, data dirs and logs.

`LocalCluster` owns one directory (default `~/.local/share/dcli/cluster`):

    DIR/cluster.json     the nodes: id, address, pid, data dir, log (replaced atomically)
    DIR/node-<i>/        node i's data dir
    DIR/node-<i>.log     node i's stdout and stderr, appended to across restarts
    DIR/cluster.secret   the secret the nodes prove to each other on their peer ports (0600)
    DIR/tls/             with --tls: the cluster's CA (ca.pem, ca-key.pem), each node's certificate
                         (node-<i>.pem, node-<i>-key.pem) and the clients' (client.pem, client-key.pem)

A cluster gets its id when it is made (as Kafka's `kafka-storage random-uuid`); every node is
started with it (--cluster-id) and its data dir remembers it. With --tls every node serves its
clients over TLS, asks them for a certificate of the cluster's CA, and talks to its peers over
mutual TLS with the same certificate; the CLI finds the client's files in cluster.json
(dcli.client.tls), so no command needs a flag for them.

Node processes run detached, in their own session, and outlive the process that started them;
any later LocalCluster on the same directory (the next `dcli cluster` command) finds them through
cluster.json. Only pids recorded there are ever signalled, and only after checking that each is
still the node it was (see `process.NodeProcess`). Nodes listen on 127.0.0.1 only.

    cluster = LocalCluster(tmp_path / "c")
    cluster.up(nodes=3, base_port=0, tls=True)  # 0: free ports; tls: a CA, certificates, TLS everywhere
    os.environ["DCLI_SERVER"] = cluster.servers  # "127.0.0.1:41235,127.0.0.1:41236,..."
    cluster.kill(1)                             # SIGKILL
    cluster.status(1).state                     # "down"
    cluster.start(1)
    cluster.down()                              # SIGTERM all; data stays for the next up()
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

from dcli.cluster import admin, credentials
from dcli.cluster import status as status_rpc
from dcli.cluster.process import NodeProcess
from dcli.cluster.state import ClusterRecord, Node, NodeState
from dcli.wire import errors
from dcli.wire.datadir import cluster_dir
from dcli.wire.peers import MAX_NODE_ID, PEER_PORT_OFFSET, format_peers, parse_node_id

HOST = "127.0.0.1"
DEFAULT_NODES = 3
DEFAULT_BASE_PORT = 7181
STATE_FILE = "cluster.json"
SECRET_FILE = "cluster.secret"
TLS_DIR = "tls"
LOCK_FILE = ".cluster.lock"
READY_LINE = "dcli server listening on "
ZK_PORT_OFFSET = -5000      # node N on 718N serves ZooKeeper's protocol on 218N
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


def default_directory() -> Path:
    """Beside the single node's data dir (dcli.wire.datadir: node-1, cluster)."""
    return cluster_dir()


def size_warning(nodes: int) -> str | None:
    """The server's own warning for an even cluster size (`dcli server start --peers`)."""
    if nodes >= 2 and nodes % 2 == 0:
        return (f"WARNING: a cluster of {nodes} nodes tolerates no more failures than one of "
                f"{nodes - 1}; use an odd number of nodes")
    return None


class LocalCluster:
    """The node processes of one cluster directory; see the module's docstring."""

    def __init__(self, directory: Path | str | None = None, *, start_timeout: float = START_TIMEOUT_S,
                 stop_grace: float = STOP_GRACE_S):
        self.directory = Path(directory or default_directory()).expanduser().absolute()
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._children: dict[int, subprocess.Popen] = {}     # pid -> the Popen, when started here

    # ---- what is recorded ----

    @property
    def state_file(self) -> Path:
        return self.directory / STATE_FILE

    def exists(self) -> bool:
        return self.state_file.is_file()

    @property
    def nodes(self) -> list[Node]:
        return self._read().nodes

    def node(self, node_id: int | str) -> Node:
        return self._node(self._read(), node_id)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    @property
    def servers(self) -> str:
        """The address list for `--server` / DCLI_SERVER."""
        return ",".join(self.addresses)

    @property
    def peers(self) -> str:
        """The `--peers` list every node was started with."""
        return format_peers({n.id: n.member for n in self.nodes})

    # ---- the whole cluster ----

    def up(self, nodes: int | None = None, base_port: int | None = None,
           extra_args: Sequence[str] | None = None, tls: bool = False) -> list[Node]:
        """Start every node and wait until each serves. A new cluster gets `nodes` (default 3)
        on ports base_port, base_port+1, ... (default 7181; 0 picks free ports); a cluster already
        made in the directory and now down is started again as recorded, keeping its data.
        extra_args go to every node's `dcli server start`. tls: a new cluster gets a CA, node
        and client certificates, and TLS for its clients and between its nodes."""
        made_dir = not self.directory.exists()
        made_secret = not (self.directory / SECRET_FILE).exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        fresh: list[Path] = []       # data dirs this call makes: removed again if it fails
        try:
            with self._lock(create=True):
                if self.exists():
                    rec = self._read()
                    self._check_reusable(rec, nodes, base_port, tls)
                    if extra_args is not None:
                        rec.extra_args = list(extra_args)
                else:
                    rec = ClusterRecord(self._new_nodes(DEFAULT_NODES if nodes is None else nodes,
                                                    DEFAULT_BASE_PORT if base_port is None else base_port),
                                    list(extra_args or ()), cluster_id=credentials.new_cluster_id())
                    if tls:
                        rec.tls = credentials.make_ca(self.directory / TLS_DIR)
                    fresh = [n.data_dir for n in rec.nodes if not n.data_dir.exists()]
                for n in rec.nodes:
                    self._check_port(n)
                started = self._spawn_all(rec, rec.nodes)
            self._wait_brokers(len(rec.nodes))
            return started
        except BaseException:
            if fresh:   # a cluster that never came up is not kept; the logs are, for the error to point at
                self.state_file.unlink(missing_ok=True)
                if made_secret:
                    (self.directory / SECRET_FILE).unlink(missing_ok=True)
                if tls:
                    shutil.rmtree(self.directory / TLS_DIR, ignore_errors=True)
                for d in fresh:
                    shutil.rmtree(d, ignore_errors=True)
            if made_dir and not self.exists():
                (self.directory / LOCK_FILE).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.directory.rmdir()
            raise

    def down(self, purge: bool = False, grace: float | None = None) -> list[int]:
        """Stop every node (SIGTERM, then SIGKILL after grace seconds); returns the ids that were
        running. The data stays for the next up() unless purge, which also removes the node data
        dirs, logs and cluster.json (and nothing else of the directory)."""
        with self._lock():
            rec = self._read()
            procs = {n.id: p for n in rec.nodes if (p := self._find(n)) is not None}
            self._terminate(list(procs.values()), grace)
            for n in rec.nodes:
                n.pid = None
            self._write(rec)
            if purge:
                self._purge(rec)
        return sorted(procs)

    def close(self) -> list[int]:
        """SIGKILL every node process this LocalCluster object started that still runs, whatever
        cluster.json now says, and reap it (test teardown); returns their pids."""
        killed = []
        for pid, child in list(self._children.items()):
            if child.poll() is None:
                child.kill()
                killed.append(pid)
            child.wait()
            del self._children[pid]
        return killed

    # ---- one node ----

    def start(self, node_id: int | str) -> Node:
        """Start a node that is down; waits until it serves."""
        with self._lock():
            rec = self._read()
            node = self._node(rec, node_id)
            if self._is_running(node):
                raise errors.ClusterStateError(f"node {node.id} is already running (pid {node.pid})")
            self._check_port(node)
            self._spawn_all(rec, [node])
            return node

    def stop(self, node_id: int | str, grace: float | None = None) -> bool:
        """SIGTERM, and SIGKILL if it has not exited after grace seconds (a paused node is
        resumed so that it can stop). False when it was not running."""
        with self._lock():
            rec = self._read()
            node = self._node(rec, node_id)
            proc = self._find(node)
            if proc is not None:
                self._terminate([proc], grace)
            node.pid = None
            self._write(rec)
            return proc is not None

    def kill(self, node_id: int | str) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        with self._lock():
            rec = self._read()
            node = self._node(rec, node_id)
            with self._running(node) as proc:
                proc.signal(signal.SIGKILL)
                proc.wait(self.stop_grace)
            node.pid = None
            self._write(rec)

    def restart(self, node_id: int | str, kill: bool = False) -> Node:
        """stop() (or kill() with kill=True) if it runs, then start()."""
        if kill and self.process_state(node_id) != "down":
            self.kill(node_id)
        else:
            self.stop(node_id)
        return self.start(node_id)

    def pause(self, node_id: int | str) -> bool:
        """SIGSTOP: the process freezes with its connections open. False if it already was."""
        return self._stop_or_continue(node_id, signal.SIGSTOP, paused=True)

    def resume(self, node_id: int | str) -> bool:
        """SIGCONT. False if it was not paused."""
        return self._stop_or_continue(node_id, signal.SIGCONT, paused=False)

    def process_state(self, node_id: int | str) -> str:
        """running, paused or down, from the process alone (no RPC)."""
        node = self.node(node_id)
        proc = self._find(node)
        if proc is None:
            return "down"
        with proc:
            return "paused" if proc.paused else "running"

    def status(self, node_id: int | str, timeout: float = status_rpc.DEFAULT_TIMEOUT_S) -> NodeState:
        """The node's state and, when up, its answer to Cluster.Status (within timeout)."""
        node = self.node(node_id)
        return self._states([node], timeout)[0]

    def status_all(self, timeout: float = status_rpc.DEFAULT_TIMEOUT_S) -> list[NodeState]:
        """status() of every node, asked side by side: one timeout at worst."""
        return self._states(self.nodes, timeout)

    def log_path(self, node_id: int | str) -> Path:
        return self.node(node_id).log

    def tail(self, node_id: int | str, lines: int | None = None) -> str:
        """The node's log (its last `lines` lines), '' when it has none yet."""
        try:
            text = self.log_path(node_id).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        if lines is None:
            return text
        return "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""

    # ---- membership ----

    def add_node(self, promote_wait_s: float = admin.PROMOTE_WAIT_S) -> Node:
        """Start one more node (the next id, the next port) with --join, and have the leader add
        it to the cluster as a learner; it catches up from the leader's log or snapshot, and the
        leader then promotes it to voter. Returns once it votes; a node still a learner after
        `promote_wait_s` stays a member (it may yet catch up) and is reported as an error."""
        node = self._start_learner()
        if admin.wait_promoted(self.addresses, node.id, promote_wait_s) is None:
            raise errors.UnavailableError(node.address, (
                f"node {node.id} was added (pid {node.pid}) but is still a learner after {promote_wait_s:.0f} s: "
                f"`dcli cluster member list` shows ROLE voter once it has caught up; "
                f"`dcli cluster logs {node.id}` says why it has not"))
        return node

    def _start_learner(self) -> Node:
        with self._lock():
            rec = self._read()
            node_id = max(n.id for n in rec.nodes) + 1
            if node_id > MAX_NODE_ID:
                raise errors.ClusterStateError(f"a cluster has at most {MAX_NODE_ID} nodes")
            port = max(n.port for n in rec.nodes) + 1
            peer_port = max(n.peer_port for n in rec.nodes) + 1
            zk_ports = [n.zk_port for n in rec.nodes if n.zk_port]
            zk_port = max(zk_ports) + 1 if zk_ports else port + ZK_PORT_OFFSET
            if (max(port, peer_port) > 65535 or zk_port < 1
                    or not all(port_free(p) for p in (port, peer_port, zk_port))):
                port, peer_port, zk_port = free_ports(3)
            node = Node(node_id, f"{HOST}:{port}", self.directory / f"node-{node_id}",
                        self.directory / f"node-{node_id}.log", join=True, peer_address=f"{HOST}:{peer_port}",
                        zk_address=f"{HOST}:{zk_port}")
            shutil.rmtree(node.data_dir, ignore_errors=True)   # a new member starts empty
            members = [n.address for n in rec.nodes]
            rec.nodes.append(node)
            try:
                self._spawn_all(rec, [node])
                admin.add_member(members, node.id, node.member)
            except BaseException:
                proc = self._find(node)
                if proc is not None:
                    self._terminate([proc], 0)
                rec.nodes.remove(node)
                self._write(rec)
                raise
            return node

    def remove_node(self, node_id: int | str) -> Node:
        """Have the leader remove the node from the cluster, then stop it and forget it (its data
        dir goes too: a removed member can only come back empty, through add_node)."""
        node = self.node(node_id)
        if len(self.nodes) == 1:
            raise errors.ClusterStateError("cannot remove the last node: `dcli cluster down` stops it")
        admin.remove_member(self.addresses, node.id)
        self.stop(node.id)
        with self._lock():
            rec = self._read()
            rec.nodes = [n for n in rec.nodes if n.id != node.id]
            self._write(rec)
        shutil.rmtree(node.data_dir, ignore_errors=True)
        return node

    def transfer_leader(self, node_id: int | str) -> int:
        """Hand leadership to the node; returns the new leader's id."""
        return admin.transfer_leader(self.addresses, self.node(node_id).id)

    # ---- starting processes ----

    def _new_nodes(self, count: int, base_port: int) -> list[Node]:
        if not 1 <= count <= MAX_NODE_ID:
            raise errors.UsageError(f"invalid --nodes {count}: expected 1 to {MAX_NODE_ID}")
        if base_port == 0:
            free = free_ports(3 * count)
            ports, peer_ports, zk_ports = free[:count], free[count:2 * count], free[2 * count:]
        elif (1 <= base_port + ZK_PORT_OFFSET and base_port + count - 1 + PEER_PORT_OFFSET <= 65535):
            ports = list(range(base_port, base_port + count))
            peer_ports = [p + PEER_PORT_OFFSET for p in ports]
            zk_ports = [p + ZK_PORT_OFFSET for p in ports]       # 7181, 7182 ... serve ZooKeeper on 2181, 2182 ...
        else:
            raise errors.UsageError(f"invalid --base-port {base_port}: the {count} ports, their peer "
                                    f"ports (+{PEER_PORT_OFFSET}) and ZooKeeper ports ({ZK_PORT_OFFSET}) "
                                    "must be in 1-65535")
        return [Node(i, f"{HOST}:{port}", self.directory / f"node-{i}", self.directory / f"node-{i}.log",
                     peer_address=f"{HOST}:{peer}", zk_address=f"{HOST}:{zk}")
                for i, (port, peer, zk) in enumerate(zip(ports, peer_ports, zk_ports), start=1)]

    def _check_reusable(self, rec: ClusterRecord, nodes: int | None, base_port: int | None, tls: bool) -> None:
        running = [n.id for n in rec.nodes if self._is_running(n)]
        if running:
            raise errors.ClusterStateError(
                f"a cluster is already running in {self.directory} (node {', '.join(map(str, running))} up): "
                "`dcli cluster down` stops it, `dcli cluster start N` starts one node")
        if nodes is not None and nodes != len(rec.nodes):
            raise errors.ClusterStateError(
                f"the cluster in {self.directory} has {len(rec.nodes)} nodes, not {nodes}: "
                "`dcli cluster down --purge` removes it, or choose another --dir")
        if tls and not rec.tls:
            raise errors.ClusterStateError(
                f"the cluster in {self.directory} was made without --tls: `dcli cluster down --purge` "
                "removes it, or choose another --dir")
        if base_port and base_port != rec.nodes[0].port:
            raise errors.ClusterStateError(
                f"the cluster in {self.directory} uses ports from {rec.nodes[0].port}, not {base_port}: "
                "`dcli cluster down --purge` removes it, or choose another --dir")

    def _check_port(self, node: Node) -> None:
        for port in (node.port, node.peer_port, node.zk_port):
            if port is not None and not port_free(port):
                raise errors.NodeStartError(
                    f"cannot start node {node.id}: port {port} is in use "
                    "(choose another --base-port, or --base-port 0 for free ports)")

    def _spawn_all(self, rec: ClusterRecord, nodes: list[Node]) -> list[Node]:
        """Start the processes side by side, record their pids, then wait for each to serve; if
        one does not, the ones started here are killed again and the error raised."""
        peers = format_peers({n.id: n.member for n in rec.nodes})
        started: list[tuple[Node, subprocess.Popen, int]] = []
        try:
            for node in nodes:
                proc, offset = self._spawn(node, peers, rec)
                started.append((node, proc, offset))
                node.pid = proc.pid
            self._write(rec)
            deadline = time.monotonic() + self.start_timeout
            for node, proc, offset in started:
                self._wait_ready(node, proc, offset, deadline)
        except BaseException:
            for node, proc, _ in started:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                self._children.pop(proc.pid, None)
                node.pid = None
            self._write(rec)
            raise
        return [node for node, _, _ in started]

    def _wait_brokers(self, count: int) -> None:
        """Until every node's broker has joined the broker cluster (each sees a controller, which
        it follows only once registered), so that a topic created next can use every broker;
        at most the start timeout, and a cluster that is slow to get there is not an error."""
        if count < 2:
            return
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            states = self.status_all()
            if all(s.up and s.controller_id for s in states):
                return
            time.sleep(0.05)

    def _secret_file(self) -> Path:
        """DIR/cluster.secret, made on first use (32 random bytes, hex; readable by the owner
        only): the nodes prove it to each other before they talk on their peer ports."""
        path = self.directory / SECRET_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        return path

    def _spawn(self, node: Node, peers: str, rec: ClusterRecord) -> tuple[subprocess.Popen, int]:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = rec.cluster_id or credentials.remembered_id(rec)
        argv = [sys.executable, "-m", "dcli_server", "--node-id", str(node.id), "--peers", peers,
                "--data-dir", str(node.data_dir), "--cluster-secret-file", str(self._secret_file()),
                *([f"--cluster-id={cluster_id}"] if cluster_id else []),
                *credentials.node_tls_args(self.directory / TLS_DIR, rec, node),
                *(["--join"] if node.join else []),
                *_zk_args(node, bool(rec.tls)),
                *rec.extra_args]
        with open(node.log, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- dcli cluster: starting node {node.id} at {stamp}\n".encode())
            log.flush()
            offset = log.tell()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.directory, env=_child_env(), start_new_session=True)
        self._children[proc.pid] = proc
        return proc, offset

    def _wait_ready(self, node: Node, proc: subprocess.Popen, offset: int, deadline: float) -> None:
        """Until the node's ready line appears in its log after offset, it exits, or the deadline."""
        while True:
            text = _read_from(node.log, offset)
            if any(line.startswith(READY_LINE) for line in text.splitlines()):
                return
            if proc.poll() is not None:
                last = [line for line in text.splitlines() if line.strip()][-1:] or ["(no output)"]
                raise errors.NodeStartError(
                    f"node {node.id} exited (code {proc.returncode}) before serving: {last[0]} (log: {node.log})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.NodeStartError(
                    f"node {node.id} did not start serving within {self.start_timeout:g} s (log: {node.log})")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(min(0.02, remaining))     # wakes at once if it dies; else look at the log again

    # ---- signals ----

    def _find(self, node: Node) -> NodeProcess | None:
        child = self._children.get(node.pid) if node.pid else None
        proc = NodeProcess.find(node.pid, node.data_dir, child)
        if proc is None and child is not None:
            child.poll()            # reap it
            self._children.pop(node.pid, None)
        return proc

    def _is_running(self, node: Node) -> bool:
        proc = self._find(node)
        if proc is not None:
            proc.close()
        return proc is not None

    @contextlib.contextmanager
    def _running(self, node: Node) -> Iterator[NodeProcess]:
        proc = self._find(node)
        if proc is None:
            raise errors.ClusterStateError(f"node {node.id} is not running")
        with proc:
            yield proc

    def _terminate(self, procs: list[NodeProcess], grace: float | None = None) -> None:
        """SIGTERM all (SIGCONT too, else a paused one never sees it), wait, SIGKILL stragglers."""
        grace = self.stop_grace if grace is None else grace
        try:
            for p in procs:
                p.signal(signal.SIGTERM)
                p.signal(signal.SIGCONT)
            deadline = time.monotonic() + grace
            for p in procs:
                if not p.wait(max(deadline - time.monotonic(), 0.0)):
                    p.signal(signal.SIGKILL)
                    p.wait(self.stop_grace)
        finally:
            for p in procs:
                self._children.pop(p.pid, None)
                p.close()

    def _stop_or_continue(self, node_id: int | str, sig: int, paused: bool) -> bool:
        with self._lock():
            node = self._node(self._read(), node_id)
            with self._running(node) as proc:
                if proc.paused == paused:
                    return False
                proc.signal(sig)
                proc.wait_paused(paused)
                return True

    def _states(self, nodes: list[Node], timeout: float) -> list[NodeState]:
        states = {}
        for n in nodes:
            proc = self._find(n)
            if proc is None:
                states[n.id] = NodeState(n.id, n.address, "down")
                continue
            with proc:
                states[n.id] = NodeState(n.id, n.address, "paused" if proc.paused else "up", proc.pid)
        if self._read().tls:
            for s in states.values():
                s.tls = True
        ask = {i: s.address for i, s in states.items() if s.state == "up"}
        for i, answer in status_rpc.query(ask, timeout).items() if ask else ():
            s = states[i]
            if isinstance(answer, Exception):
                s.state, s.error = "unreachable", status_rpc.describe_failure(answer)
                continue
            s.role, s.term, s.leader_id = answer.role, answer.term, answer.leader_id
            s.commit_index, s.applied_index, s.last_zxid = answer.commit_index, answer.applied_index, answer.last_zxid
            s.sessions, s.znodes, s.controller_id = answer.sessions, answer.znodes, answer.controller_id
        return [states[n.id] for n in nodes]

    # ---- the state file ----

    def _read(self) -> ClusterRecord:
        if not self.exists():
            raise errors.NoClusterError(str(self.directory))
        rec = ClusterRecord.read(self.state_file)
        if rec.tls:             # this process's clients of the cluster (status, members) use its files
            from dcli.client.tls import TlsFiles, use_for

            use_for([n.address for n in rec.nodes], TlsFiles(**rec.tls))
        return rec

    @property
    def tls(self) -> dict[str, str] | None:
        """The files a client of this cluster connects with (cacert, cert, key), None without --tls."""
        return self._read().tls

    @property
    def cluster_id(self) -> str | None:
        return self._read().cluster_id

    def _write(self, rec: ClusterRecord) -> None:
        rec.write(self.state_file)

    @contextlib.contextmanager
    def _lock(self, create: bool = False) -> Iterator[None]:
        """One manager command at a time per directory (`up` in one terminal, `kill` in another)."""
        if not create and not self.exists():
            raise errors.NoClusterError(str(self.directory))
        with open(self.directory / LOCK_FILE, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _node(self, rec: ClusterRecord, node_id: int | str) -> Node:
        wanted = parse_node_id(node_id, "node id")
        for n in rec.nodes:
            if n.id == wanted:
                return n
        ids = ", ".join(str(n.id) for n in rec.nodes)
        raise errors.UnknownNodeError(message=f"no node {wanted} in the cluster in {self.directory} (nodes: {ids})")

    def _purge(self, rec: ClusterRecord) -> None:
        """Remove what this manager made, never anything else that sits in the directory."""
        for n in rec.nodes:
            shutil.rmtree(n.data_dir, ignore_errors=True)
            n.log.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        (self.directory / SECRET_FILE).unlink(missing_ok=True)
        if rec.tls:
            shutil.rmtree(self.directory / TLS_DIR, ignore_errors=True)
        (self.directory / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()          # only if nothing else is left in it


def _zk_args(node: Node, tls: bool) -> list[str]:
    """The node's ZooKeeper port: plaintext, or in a --tls cluster TLS only (secureClientPort)."""
    if not node.zk_address:
        return ["--zk-listen", "none"]
    if tls:
        return ["--zk-listen", "none", "--zk-secure-listen", node.zk_address]
    return ["--zk-listen", node.zk_address]


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (SO_REUSEADDR as gRPC's own listener sets it, so
    connections of a stopped node in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """count distinct ports that are free now (held together while choosing, so no repeats)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind((HOST, 0))
            ports.append(s.getsockname()[1])
        return ports


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _child_env() -> dict[str, str]:
    """The environment for a node: ours, with the directory dcli_server is imported from first
    on the path (so a node runs the same code as the manager, from any working directory)."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("dcli_server")
    if spec and spec.origin:
        root = str(Path(spec.origin).parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
