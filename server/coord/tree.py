"""The znode tree: the deterministic state machine that applies logged Txns.

`DataTree` owns the nodes, their stats and the indexes that make per-session, container and TTL
work cheap (ephemerals by owner, the set of container paths, the set of TTL paths). It never
validates a request: `prep` does that against the tree before a Txn is logged, so applying a
Txn here cannot fail on a consistent log. Applying returns `Change`s, from which the watch
manager derives events; the tree itself knows nothing of sessions' liveness or watches.

    >>> tree = DataTree()
    >>> tree.create("/a", b"x", zxid=2, time_ms=1000)
    [Change(kind=<ChangeKind.CREATED: 1>, path='/a')]
    >>> tree.stat("/a").czxid, tree.get("/").cversion, tree.children("/")
    (2, 1, ['a', 'zookeeper'])
"""
from __future__ import annotations

from enum import IntEnum
from typing import Iterable, Iterator, NamedTuple

from dcli.v1 import coord_pb2 as pb, coordlog_pb2 as logpb
from dcli.wire.paths import join, name_of, parent_of
from dcli_server.coord.acl import OPEN, READ_ONLY, Acl, intern


class ChangeKind(IntEnum):
    CREATED = 1
    DELETED = 2
    DATA_CHANGED = 3


class Change(NamedTuple):
    kind: ChangeKind
    path: str


class InconsistentTxnError(Exception):
    """A Txn that does not fit the tree: the log is corrupt or a validation bug let it through."""


class Node:
    """One znode. `ephemeral_owner` is the owning session for ephemerals and 0 otherwise
    (containers and TTL nodes carry their own flags; ZooKeeper shows them as owner 0 too)."""

    __slots__ = ("data", "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "ephemeral_owner", "pzxid", "container", "ttl_ms", "child_creates", "children", "acl")

    def __init__(self, data: bytes | None, zxid: int, time_ms: int, ephemeral_owner: int = 0,
                 container: bool = False, ttl_ms: int = 0, acl: Acl = OPEN):
        self.data = data
        self.acl = acl                  # (perms, scheme, id) entries, shared between nodes (acl.intern)
        self.czxid = self.mzxid = self.pzxid = zxid
        self.ctime = self.mtime = time_ms
        self.version = self.cversion = self.aversion = 0
        self.ephemeral_owner = ephemeral_owner
        self.container = container
        self.ttl_ms = ttl_ms
        self.child_creates = 0          # the sequence counter: child creates only
        self.children: set[str] = set()

    def stat(self) -> pb.Stat:
        return pb.Stat(czxid=self.czxid, mzxid=self.mzxid, ctime=self.ctime, mtime=self.mtime,
                       version=self.version, cversion=self.cversion, aversion=self.aversion,
                       ephemeral_owner=self.ephemeral_owner,
                       data_length=len(self.data) if self.data else 0,
                       num_children=len(self.children), pzxid=self.pzxid)


def _acl(entries) -> Acl:
    """A logged list as the tree keeps it (empty, as logged before ACLs existed: open)."""
    return intern((e.perms, e.scheme, e.id) for e in entries) if entries else OPEN


# ZooKeeper's DataTree builds these at start-up with zxid 0 and empty data, without counting
# them as child creates of their parents (so the root's first sequential child is 0000000000).
_BUILTIN = ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota")


class DataTree:
    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._ephemerals: dict[int, set[str]] = {}
        self._containers: set[str] = set()
        self._ttls: set[str] = set()
        for path in _BUILTIN:
            # as ZooKeeper: /zookeeper/config is readable by anyone, writable by nobody
            self._nodes[path] = Node(b"", 0, 0, acl=READ_ONLY if path == "/zookeeper/config" else OPEN)
            if path != "/":
                self._nodes[parent_of(path)].children.add(name_of(path))

    # ---- reads ----

    def get(self, path: str) -> Node | None:
        return self._nodes.get(path)

    def __contains__(self, path: str) -> bool:
        return path in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def stat(self, path: str) -> pb.Stat | None:
        node = self._nodes.get(path)
        return node.stat() if node is not None else None

    def children(self, path: str) -> list[str]:
        return sorted(self._nodes[path].children)

    def count_descendants(self, path: str) -> int:
        """All nodes below `path` (ZooKeeper's getAllChildrenNumber), the node itself excluded."""
        if path == "/":
            return len(self._nodes) - 1
        return sum(1 for _ in self._walk_below(path))

    def _walk_below(self, path: str) -> Iterator[str]:
        stack = [path]
        while stack:
            current = stack.pop()
            for name in self._nodes[current].children:
                child = join(current, name)
                yield child
                stack.append(child)

    def ephemerals(self, session_id: int) -> list[str]:
        return sorted(self._ephemerals.get(session_id, ()))

    def containers(self) -> list[str]:
        return sorted(self._containers)

    def ttl_nodes(self) -> list[str]:
        return sorted(self._ttls)

    # ---- applying txns ----

    def apply_op(self, txn: logpb.Txn, zxid: int, time_ms: int,
                 changes: list[Change]) -> pb.Stat | None:
        """Apply one node op (create, delete, set_data, check) of a Txn or of a MultiTxn.

        Appends what changed to `changes` and returns the stat a client sees for this op at
        this moment (create and set_data), else None.
        """
        kind = txn.WhichOneof("op")
        if kind == "create":
            op = txn.create
            data = op.data if op.HasField("data") else None
            changes += self.create(op.path, data, zxid, time_ms, op.ephemeral_owner,
                                   op.container, op.ttl_ms, _acl(op.acl))
            return self._nodes[op.path].stat()
        if kind == "set_acl":
            changes += self.set_acl(txn.set_acl.path, _acl(txn.set_acl.acl))
            return self._nodes[txn.set_acl.path].stat()
        if kind == "delete":
            changes += self.delete(txn.delete.path, zxid)
            return None
        if kind == "set_data":
            op = txn.set_data
            changes += self.set_data(op.path, op.data if op.HasField("data") else None,
                                     zxid, time_ms)
            return self._nodes[op.path].stat()
        if kind == "check":
            if txn.check.path not in self._nodes:
                raise InconsistentTxnError(f"check of missing node {txn.check.path}")
            return None
        raise InconsistentTxnError(f"not a node op: {kind}")

    def create(self, path: str, data: bytes | None, zxid: int, time_ms: int,
               ephemeral_owner: int = 0, container: bool = False, ttl_ms: int = 0,
               acl: Acl = OPEN) -> list[Change]:
        parent = self._nodes.get(parent_of(path))
        if parent is None or path in self._nodes or path == "/":
            raise InconsistentTxnError(f"cannot create {path}")
        self._nodes[path] = Node(data, zxid, time_ms, ephemeral_owner, container, ttl_ms, acl)
        parent.children.add(name_of(path))
        parent.cversion += 1
        parent.child_creates += 1
        parent.pzxid = zxid
        self._index(path, self._nodes[path])
        return [Change(ChangeKind.CREATED, path)]

    def delete(self, path: str, zxid: int) -> list[Change]:
        node = self._nodes.get(path)
        if node is None or node.children or path == "/":
            raise InconsistentTxnError(f"cannot delete {path}")
        del self._nodes[path]
        parent = self._nodes[parent_of(path)]
        parent.children.discard(name_of(path))
        parent.cversion += 1             # deletes count in cversion, not in child_creates
        parent.pzxid = zxid
        self._unindex(path, node)
        return [Change(ChangeKind.DELETED, path)]

    def set_data(self, path: str, data: bytes | None, zxid: int, time_ms: int) -> list[Change]:
        node = self._nodes.get(path)
        if node is None:
            raise InconsistentTxnError(f"cannot set {path}")
        node.data = data
        node.mzxid = zxid
        node.mtime = time_ms
        node.version += 1
        return [Change(ChangeKind.DATA_CHANGED, path)]

    def set_acl(self, path: str, acl: Acl) -> list[Change]:
        """A new ACL: aversion + 1 and nothing else (ZooKeeper fires no watch for it)."""
        node = self._nodes.get(path)
        if node is None:
            raise InconsistentTxnError(f"cannot set the ACL of {path}")
        node.acl = acl
        node.aversion += 1
        return []

    def kill_session(self, session_id: int, zxid: int) -> list[Change]:
        """Delete the session's ephemerals, in path order (they never have children)."""
        changes: list[Change] = []
        for path in self.ephemerals(session_id):
            changes += self.delete(path, zxid)
        return changes

    def _index(self, path: str, node: Node) -> None:
        if node.ephemeral_owner:
            self._ephemerals.setdefault(node.ephemeral_owner, set()).add(path)
        if node.container:
            self._containers.add(path)
        if node.ttl_ms:
            self._ttls.add(path)

    def _unindex(self, path: str, node: Node) -> None:
        owned = self._ephemerals.get(node.ephemeral_owner)
        if owned is not None:
            owned.discard(path)
            if not owned:
                del self._ephemerals[node.ephemeral_owner]
        self._containers.discard(path)
        self._ttls.discard(path)

    # ---- snapshots ----

    def snapshot_nodes(self) -> Iterable[logpb.SnapshotNode]:
        # A parent's path is a prefix of its children's, so sorted order is parents-first.
        for path in sorted(self._nodes):
            n = self._nodes[path]
            snap = logpb.SnapshotNode(
                path=path, czxid=n.czxid, mzxid=n.mzxid, ctime=n.ctime, mtime=n.mtime,
                version=n.version, cversion=n.cversion, aversion=n.aversion,
                ephemeral_owner=n.ephemeral_owner, pzxid=n.pzxid, container=n.container,
                ttl_ms=n.ttl_ms, child_creates=n.child_creates)
            if n.data is not None:
                snap.data = n.data
            if n.acl != OPEN:
                snap.acl.extend(logpb.LogAcl(perms=p, scheme=s, id=i) for p, s, i in n.acl)
            yield snap

    @classmethod
    def from_snapshot_nodes(cls, nodes: Iterable[logpb.SnapshotNode]) -> DataTree:
        tree = cls.__new__(cls)
        tree._nodes, tree._ephemerals, tree._containers, tree._ttls = {}, {}, set(), set()
        for snap in nodes:
            node = Node(snap.data if snap.HasField("data") else None, snap.czxid, snap.ctime,
                        snap.ephemeral_owner, snap.container, snap.ttl_ms)
            node.mzxid, node.mtime, node.pzxid = snap.mzxid, snap.mtime, snap.pzxid
            node.version, node.cversion, node.aversion = snap.version, snap.cversion, snap.aversion
            node.child_creates = snap.child_creates
            node.acl = _acl(snap.acl)
            if snap.path != "/":
                parent = tree._nodes.get(parent_of(snap.path))
                if parent is None:
                    raise InconsistentTxnError(f"snapshot lists {snap.path} before its parent")
                parent.children.add(name_of(snap.path))
            tree._nodes[snap.path] = node
            tree._index(snap.path, node)
        if "/" not in tree._nodes:
            raise InconsistentTxnError("snapshot has no root")
        return tree
