"""What the manager records of a cluster (cluster.json) and what it reports of a node (status).

    {"version": 1, "extra_args": [], "cluster_id": "q1XbT0...",
     "tls": {"cacert": ".../cluster/tls/ca.pem", "cert": ".../tls/client.pem", "key": ".../tls/client-key.pem"},
     "nodes": [{"id": 1, "address": "127.0.0.1:7181", "peer_address": "127.0.0.1:8181", "pid": 4242,
                "data_dir": ".../cluster/node-1", "log": ".../cluster/node-1.log"}, ...]}
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from dcli.wire import errors
from dcli.wire.addresses import split_host_port

VERSION = 1


@dataclass
class Node:
    """One node as recorded in cluster.json; pid is that of its last start (None: stopped)."""

    id: int
    address: str            # the client listener's
    data_dir: Path
    log: Path
    pid: int | None = None
    join: bool = False      # added to the running cluster (`member add`): starts with --join
    peer_address: str = ""  # the peer listener's ("": the client port + 1000, as --peers reads it)
    zk_address: str = ""    # the ZooKeeper-protocol listener's ("": none, a cluster made before it)

    def __post_init__(self) -> None:
        if not self.peer_address:
            from dcli.wire.peers import parse_member

            self.peer_address = parse_member(self.address).peer

    @property
    def member(self) -> str:
        """This node in --peers: CLIENT/PEER."""
        return f"{self.address}/{self.peer_address}"

    @property
    def peer_port(self) -> int:
        return split_host_port(self.peer_address)[1]

    @property
    def zk_port(self) -> int | None:
        return split_host_port(self.zk_address)[1] if self.zk_address else None

    @property
    def port(self) -> int:
        return split_host_port(self.address)[1]

    def to_json(self) -> dict:
        out = {"id": self.id, "address": self.address, "peer_address": self.peer_address, "pid": self.pid,
               "data_dir": str(self.data_dir), "log": str(self.log)}
        if self.join:
            out["join"] = True
        if self.zk_address:
            out["zk_address"] = self.zk_address
        return out

    @classmethod
    def from_json(cls, d: dict) -> Node:
        return cls(int(d["id"]), d["address"], Path(d["data_dir"]), Path(d["log"]), d.get("pid"),
                   bool(d.get("join", False)), d.get("peer_address", ""), d.get("zk_address", ""))


@dataclass
class NodeState:
    """What `status` knows of one node. state: up (answers), paused (SIGSTOP), unreachable (the
    process runs but does not answer in time), down (no process). The Raft fields are those of
    the node's Cluster.Status answer, and empty unless the node is up."""

    id: int
    address: str
    state: str
    pid: int | None = None
    role: str = ""
    term: int | None = None
    leader_id: int | None = None
    commit_index: int | None = None
    applied_index: int | None = None
    last_zxid: int | None = None
    sessions: int | None = None
    znodes: int | None = None
    controller_id: int | None = None
    error: str = ""
    tls: bool = False       # the cluster was made with --tls (clients and peers)

    @property
    def up(self) -> bool:
        return self.state == "up"

    def to_json(self) -> dict:
        out = {"node": self.id, **{k: v for k, v in dataclasses.asdict(self).items() if k not in ("id", "tls")}}
        if self.tls:
            out["tls"] = True
        return out


@dataclass
class ClusterRecord:
    """cluster.json: the nodes, the extra `dcli server start` options every node gets, the
    cluster's id (None: made before clusters had one) and, for a cluster made with --tls, the
    files a client connects with (TlsFiles' names: cacert, cert, key)."""

    nodes: list[Node]
    extra_args: list[str] = field(default_factory=list)
    cluster_id: str | None = None
    tls: dict[str, str] | None = None

    @classmethod
    def read(cls, path: Path) -> ClusterRecord:
        try:
            data = json.loads(path.read_text())
            tls = data.get("tls")
            return cls([Node.from_json(d) for d in data["nodes"]], list(data.get("extra_args", [])),
                       data.get("cluster_id"), {k: str(tls[k]) for k in ("cacert", "cert", "key")} if tls else None)
        except (ValueError, KeyError, TypeError) as e:
            raise errors.DcliError(message=f"cannot read {path}: {e}") from None

    def write(self, path: Path) -> None:
        """Replaced whole and durably (a reader never sees half a file, a power loss neither)."""
        from dcli_server.storage.files import write_atomically     # the cluster manager runs the server

        out = {"version": VERSION, "extra_args": self.extra_args}
        if self.cluster_id:
            out["cluster_id"] = self.cluster_id
        if self.tls:
            out["tls"] = self.tls
        out["nodes"] = [n.to_json() for n in self.nodes]
        write_atomically(path, json.dumps(out, indent=2) + "\n")
