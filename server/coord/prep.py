"""Write requests into Txns: validation against the tree, as ZooKeeper's PrepRequestProcessor.

Everything a Txn needs is decided here — the final sequential name, the ephemeral owner — so
that applying it is deterministic. Validation reads a `PendingView`: the tree as the earlier ops
of the same multi would leave it (ZooKeeper's outstanding ChangeRecords), so `create /a` then
`create /a/b`, or `delete /a` then `create /a`, work inside one multi. A single op is a multi of
one. Nothing here changes the tree.

    >>> view = PendingView(DataTree())
    >>> txn = prepare(view, Limits(), 1, pb.Request(create=pb.CreateRequest(path="/j-", sequential=True)))
    >>> txn.create.path
    '/j-0000000000'
    >>> prepare(view, Limits(), 1, pb.Request(create=pb.CreateRequest(path="/j-0000000000")))
    Traceback (most recent call last):
    ...
    dcli.wire.errors.NodeExistsError: Node already exists: /j-0000000000
"""
from __future__ import annotations

from dataclasses import dataclass

from dcli.v1 import coord_pb2 as pb, coordlog_pb2 as logpb
from dcli.wire.errors import (BadArgumentsError, BadVersionError, DataTooLargeError,
                              NoAuthError, NoChildrenForEphemeralsError, NodeExistsError,
                              NoNodeError, NotEmptyError, UnimplementedError)
from dcli.wire.paths import parent_of, validate_path

from dcli_server.coord.acl import ADMIN, CREATE, DELETE, OPEN, READ, WRITE, Acl, Ids, check, fixup
from dcli_server.coord.limits import (CONTAINER_MODE_MESSAGE, MAX_TTL_MS, TTL_CONTAINER_MESSAGE,
                                      TTL_EPHEMERAL_MESSAGE, TTL_RANGE_MESSAGE, Limits,
                                      in_system_tree)
from dcli_server.coord.tree import DataTree

MULTI_OPS = ("create", "delete", "set_data", "check")


@dataclass
class _Record:
    """What validation needs to know of a node."""
    version: int
    ephemeral_owner: int
    num_children: int
    child_creates: int
    acl: Acl = OPEN
    aversion: int = 0


class PendingView:
    """The tree plus the not yet applied effects of earlier ops of one multi."""

    def __init__(self, tree: DataTree):
        self._tree = tree
        self._records: dict[str, _Record | None] = {}   # None: deleted by an earlier op

    def get(self, path: str) -> _Record | None:
        if path in self._records:
            return self._records[path]
        node = self._tree.get(path)
        if node is None:
            return None
        record = _Record(node.version, node.ephemeral_owner, len(node.children),
                         node.child_creates, node.acl, node.aversion)
        self._records[path] = record       # later ops of the multi change this copy
        return record

    def created(self, path: str, ephemeral_owner: int, acl: Acl = OPEN) -> None:
        parent = self.get(parent_of(path))
        assert parent is not None
        parent.num_children += 1
        parent.child_creates += 1
        self._records[path] = _Record(0, ephemeral_owner, 0, 0, acl)

    def deleted(self, path: str) -> None:
        parent = self.get(parent_of(path))
        assert parent is not None
        parent.num_children -= 1
        self._records[path] = None

    def data_set(self, path: str) -> None:
        record = self.get(path)
        assert record is not None
        record.version += 1


def prepare(view: PendingView, limits: Limits, session_id: int, request: pb.Request,
            ids: Ids = ()) -> logpb.Txn:
    """The Txn body (no zxid, time or session) for one create/delete/set_data/check/set_acl
    request, validated against `view`, which is updated as if the op had been applied. `ids`
    are the caller's (its connection's address, its digests): the ACLs are checked against them
    where ZooKeeper checks them."""
    kind = request.WhichOneof("op")
    if kind == "create":
        return logpb.Txn(create=_create(view, limits, session_id, request.create, ids))
    if kind == "delete":
        return logpb.Txn(delete=_delete(view, request.delete, ids))
    if kind == "set_data":
        return logpb.Txn(set_data=_set_data(view, limits, request.set_data, ids))
    if kind == "check":
        return logpb.Txn(check=_check(view, request.check, ids))
    if kind == "set_acl":
        return logpb.Txn(set_acl=_set_acl(view, request.set_acl, ids))
    raise BadArgumentsError(op_path(request),
                            f"Only {', '.join(MULTI_OPS)} can be used in a multi, not {kind}")


def op_path(request: pb.Request) -> str:
    """The path a request names, or "" for those that name none."""
    kind = request.WhichOneof("op")
    body = getattr(request, kind) if kind else None
    if body is None:
        return ""
    if kind == "get_ephemerals":
        return body.prefix
    return getattr(body, "path", "")


def _check_data(path: str, data: bytes | None, limits: Limits) -> None:
    size = len(data) if data else 0
    if size > limits.max_data_bytes:
        raise DataTooLargeError(
            path, f"Data too large for {path}: {size} bytes, limit {limits.max_data_bytes}")


def _check_mode(req: pb.CreateRequest, limits: Limits) -> None:
    # Order as zkCli, whose checks of the flags run before the server is asked at all.
    path = req.path
    if req.container and (req.ephemeral or req.sequential):
        raise BadArgumentsError(path, CONTAINER_MODE_MESSAGE)
    if req.ttl_ms == 0:
        return
    if req.ephemeral:
        raise BadArgumentsError(path, TTL_EPHEMERAL_MESSAGE)
    if req.container:
        raise BadArgumentsError(path, TTL_CONTAINER_MESSAGE)
    if not 0 < req.ttl_ms <= MAX_TTL_MS:
        raise BadArgumentsError(path, TTL_RANGE_MESSAGE)
    if not limits.ttl_enabled:
        raise UnimplementedError(path)


def _requested_acl(path: str, entries, ids: Ids) -> Acl:
    """A request's list as stored; an empty one (dcli's own clients) is world:anyone, all."""
    return fixup(path, ((e.perms, e.scheme, e.id) for e in entries), ids) if entries else OPEN


def _create(view: PendingView, limits: Limits, session_id: int,
            req: pb.CreateRequest, ids: Ids) -> logpb.CreateTxn:
    path = validate_path(req.path, sequential=req.sequential)
    if path == "/" and not req.sequential:
        raise NodeExistsError(path)
    _check_mode(req, limits)
    data = req.data if req.HasField("data") else None
    _check_data(path, data, limits)
    acl = _requested_acl(path, req.acl, ids)     # INVALIDACL before the parent is looked at
    parent = view.get(parent_of(path))
    if parent is None:
        raise NoNodeError(path)                  # the path being created, as zkCli reports it
    check(parent.acl, CREATE, ids, path)
    final = f"{path}{parent.child_creates:010d}" if req.sequential else path
    # We have no ACLs; the /zookeeper subtree acts as if world could only read it (ZooKeeper's
    # /zookeeper/config is read-only; quota nodes are the server's). So a create below
    # /zookeeper is refused like a create without CREATE permission on the parent: after the
    # parent check, before the exists check (`create /zookeeper` itself is NodeExists).
    if in_system_tree(parent_of(final)):
        raise NoAuthError(final)
    if view.get(final) is not None:
        raise NodeExistsError(final)
    if parent.ephemeral_owner:
        raise NoChildrenForEphemeralsError(final)
    owner = session_id if req.ephemeral else 0
    view.created(final, owner, acl)
    txn = logpb.CreateTxn(path=final, ephemeral_owner=owner, container=req.container,
                          ttl_ms=req.ttl_ms, sequential=req.sequential)
    if acl != OPEN:
        txn.acl.extend(logpb.LogAcl(perms=p, scheme=s, id=i) for p, s, i in acl)
    if data is not None:
        txn.data = data
    return txn


def _existing(view: PendingView, path: str) -> _Record:
    record = view.get(path)
    if record is None:
        raise NoNodeError(path)
    return record


def _check_version(path: str, record: _Record, version: int) -> None:
    if version != -1 and version != record.version:
        raise BadVersionError(path)


def _delete(view: PendingView, req: pb.DeleteRequest, ids: Ids) -> logpb.DeleteTxn:
    path = validate_path(req.path)
    # ZooKeeper refuses to delete its special paths ("/", /zookeeper, /zookeeper/config,
    # /zookeeper/quota) with BadArguments before looking at the tree; nothing else can exist
    # below /zookeeper here, so the whole subtree is refused alike.
    if path == "/" or in_system_tree(path):
        raise BadArgumentsError(path)
    parent = view.get(parent_of(path))
    if parent is None:
        raise NoNodeError(path)
    check(parent.acl, DELETE, ids, path)         # the parent's DELETE, before the node is looked at
    record = _existing(view, path)
    _check_version(path, record, req.version)
    if record.num_children:
        raise NotEmptyError(path)
    view.deleted(path)
    return logpb.DeleteTxn(path=path)


def _set_data(view: PendingView, limits: Limits, req: pb.SetDataRequest, ids: Ids) -> logpb.SetDataTxn:
    path = validate_path(req.path)
    data = req.data if req.HasField("data") else None
    _check_data(path, data, limits)
    record = _existing(view, path)
    if in_system_tree(path):                 # read-only subtree, see _create; ACL before version
        raise NoAuthError(path)
    check(record.acl, WRITE, ids, path)
    _check_version(path, record, req.version)
    view.data_set(path)
    txn = logpb.SetDataTxn(path=path)
    if data is not None:
        txn.data = data
    return txn


def _check(view: PendingView, req: pb.CheckVersionRequest, ids: Ids) -> logpb.CheckTxn:
    path = validate_path(req.path)
    record = _existing(view, path)
    check(record.acl, READ, ids, path)
    _check_version(path, record, req.version)
    return logpb.CheckTxn(path=path)


def _set_acl(view: PendingView, req: pb.SetAclRequest, ids: Ids) -> logpb.SetAclTxn:
    """ZooKeeper's order: the list's form, the node, ADMIN on it, then the ACL's version."""
    path = validate_path(req.path)
    acl = fixup(path, ((e.perms, e.scheme, e.id) for e in req.acl), ids)
    record = _existing(view, path)
    check(record.acl, ADMIN, ids, path)
    if req.version != -1 and req.version != record.aversion:
        raise BadVersionError(path)
    record.acl, record.aversion = acl, record.aversion + 1
    txn = logpb.SetAclTxn(path=path)
    txn.acl.extend(logpb.LogAcl(perms=p, scheme=s, id=i) for p, s, i in acl)
    return txn
