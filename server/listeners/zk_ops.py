"""ZooKeeper's requests and replies as the node's own: jute records in, coord.proto requests out,
and each answer back into the jute reply ZooKeeper gives for that opcode.

`decode(xid, opcode, reader)` reads one request's body and returns an `Op`: the request the node
runs (a coord.proto Request, or an InTurn the listener answers itself in the request's turn) and
how to write its answer (`encode(response) -> (err, body)`, ZooKeeper's error code and the
reply's body); for a multiRead, a `Gather` of one request per read, answered together. A
request the node cannot take raises ZkRefusal with ZooKeeper's code.

ACLs travel as they are; the node checks them (server/coord/acl.py) against the connection's
ids, which the listener keeps on the node's Conn.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dcli.v1 import coord_pb2 as pb
from dcli.wire import zk_records as rec
from dcli.wire.jute import Reader, Writer
from dcli.wire.paths import path_problem
from dcli.wire.zk_protocol import KeeperCode as Err
from dcli.wire.zk_protocol import OpCode, read_multi, write_multi_response
from dcli_server.node import InTurn

# coord.proto's error codes as ZooKeeper's KeeperException codes
ERR = {
    pb.OK: Err.OK, pb.SYSTEM_ERROR: Err.SYSTEM_ERROR, pb.RUNTIME_INCONSISTENCY: Err.RUNTIME_INCONSISTENCY,
    pb.CONNECTION_LOSS: Err.CONNECTION_LOSS, pb.MARSHALLING_ERROR: Err.MARSHALLING_ERROR,
    pb.UNIMPLEMENTED: Err.UNIMPLEMENTED, pb.OPERATION_TIMEOUT: Err.OPERATION_TIMEOUT,
    pb.BAD_ARGUMENTS: Err.BAD_ARGUMENTS, pb.NO_NODE: Err.NO_NODE, pb.NO_AUTH: Err.NO_AUTH,
    pb.BAD_VERSION: Err.BAD_VERSION, pb.NO_CHILDREN_FOR_EPHEMERALS: Err.NO_CHILDREN_FOR_EPHEMERALS,
    pb.NODE_EXISTS: Err.NODE_EXISTS, pb.NOT_EMPTY: Err.NOT_EMPTY, pb.SESSION_EXPIRED: Err.SESSION_EXPIRED,
    pb.INVALID_ACL: Err.INVALID_ACL, pb.SESSION_MOVED: Err.SESSION_MOVED, pb.NO_WATCHER: Err.NO_WATCHER,
    # ZooKeeper answers a bad path with BADARGUMENTS, and data past its limit the same way
    pb.INVALID_PATH: Err.BAD_ARGUMENTS, pb.DATA_TOO_LARGE: Err.BAD_ARGUMENTS,
    pb.REQUEST_TOO_LARGE: Err.BAD_ARGUMENTS, pb.NOT_READ_ONLY: Err.NOT_READ_ONLY,
    pb.TOO_FAR_BEHIND: Err.CONNECTION_LOSS,
}

# CreateMode's flags: (ephemeral, sequential, container, ttl)
_MODES = {0: (False, False, False, False), 1: (True, False, False, False), 2: (False, True, False, False),
          3: (True, True, False, False), 4: (False, False, True, False), 5: (False, False, False, True),
          6: (False, True, False, True)}
_CREATES = (OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL)
MAX_TTL_MS = (1 << 40) - 1      # ZooKeeper's EphemeralType.TTL maximum

# ZooKeeper's WatcherType (Children 1, Data 2, Any 3, Persistent 4, PersistentRecursive 5)
WATCHER_TYPES = {1: pb.WATCHER_CHILDREN, 2: pb.WATCHER_DATA, 3: pb.WATCHER_ANY,
                  4: pb.WATCHER_PERSISTENT, 5: pb.WATCHER_PERSISTENT_RECURSIVE}

Encode = Callable[[pb.Response], tuple[int, bytes]]


class ZkRefusal(Exception):
    """A request answered with ZooKeeper's error `code` and no body."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = int(code)


@dataclass(slots=True)
class Op:
    request: object          # pb.Request, or InTurn
    encode: Encode


@dataclass(slots=True)
class Gather:
    """A multiRead: one node request per op, answered together once every one is back."""
    requests: list[pb.Request]
    encode: Callable[[list[pb.Response]], tuple[int, bytes]]


def _body(record) -> bytes:
    w = Writer()
    record.write(w)
    return w.getvalue()


def _stat(s: pb.Stat) -> rec.Stat:
    return rec.Stat(czxid=s.czxid, mzxid=s.mzxid, ctime=s.ctime, mtime=s.mtime, version=s.version,
                    cversion=s.cversion, aversion=s.aversion, ephemeralOwner=s.ephemeral_owner,
                    dataLength=s.data_length, numChildren=s.num_children, pzxid=s.pzxid)


def _answer(build: Callable[[pb.Response], object | None]) -> Encode:
    """An encoder: the node's error as ZooKeeper's code, else the record `build` makes."""
    def encode(resp: pb.Response) -> tuple[int, bytes]:
        if resp.HasField("error") and resp.error.code != pb.OK:
            return ERR.get(resp.error.code, Err.SYSTEM_ERROR), b""
        record = build(resp)
        return (Err.OK, b"") if record is None else (Err.OK, _body(record))
    return encode


def _path(path: str | None) -> str:
    if path is None:
        raise ZkRefusal(Err.BAD_ARGUMENTS)
    return path


def _acl(entries: list | None) -> list[pb.Acl]:
    """A create's or setACL's list as the node takes it; the node checks what it means
    (server/coord/acl.py). An empty or null list, or an entry without an id, is INVALIDACL."""
    if not entries:
        raise ZkRefusal(Err.INVALID_ACL)
    out = []
    for entry in entries:
        if entry.id is None or not entry.id.scheme:
            raise ZkRefusal(Err.INVALID_ACL)
        out.append(pb.Acl(perms=entry.perms, scheme=entry.id.scheme, id=entry.id.id or ""))
    return out


def _acl_records(entries) -> list:
    return [rec.ACL(perms=e.perms, id=rec.Id(scheme=e.scheme, id=e.id)) for e in entries]


def create_request(opcode: int, record) -> pb.Request:
    """The node's create for ZooKeeper's create, create2, createContainer or createTTL."""
    mode = _MODES.get(record.flags)
    if mode is None:
        raise ZkRefusal(Err.BAD_ARGUMENTS)
    ephemeral, sequential, container, ttl = mode
    ttl_ms = getattr(record, "ttl", -1)
    if container and opcode in (OpCode.CREATE, OpCode.CREATE2):
        container = False       # ZooKeeper 3.8 makes a plain persistent node of it, never reaped
    # createContainer and createTTL come only with their own modes, and TTL modes only with
    # createTTL, as ZooKeeper's PrepRequestProcessor checks
    if (opcode == OpCode.CREATE_CONTAINER and not container) or ttl != (opcode == OpCode.CREATE_TTL):
        raise ZkRefusal(Err.BAD_ARGUMENTS)
    if ttl and not 0 < ttl_ms <= MAX_TTL_MS:
        raise ZkRefusal(Err.BAD_ARGUMENTS)
    body = pb.CreateRequest(path=_path(record.path), ephemeral=ephemeral, sequential=sequential,
                            container=container, ttl_ms=ttl_ms if ttl else 0, acl=_acl(record.acl))
    if record.data is not None:
        body.data = record.data
    return pb.Request(create=body)


def _created(opcode: int) -> Encode:
    if opcode == OpCode.CREATE:
        return _answer(lambda r: rec.CreateResponse(path=r.create.path))
    return _answer(lambda r: rec.Create2Response(path=r.create.path, stat=_stat(r.create.stat)))


def _exists(resp: pb.Response) -> tuple[int, bytes]:
    if resp.HasField("error") and resp.error.code != pb.OK:
        return ERR.get(resp.error.code, Err.SYSTEM_ERROR), b""
    if not resp.HasField("stat"):
        return Err.NO_NODE, b""
    return Err.OK, _body(rec.ExistsResponse(stat=_stat(resp.stat)))




def _data(resp: pb.Response):
    return rec.GetDataResponse(data=resp.get_data.data if resp.get_data.HasField("data") else None,
                               stat=_stat(resp.get_data.stat))


def _multi_op(opcode: int, record) -> pb.Request:
    if opcode in _CREATES:
        return create_request(opcode, record)
    if opcode == OpCode.DELETE:
        return pb.Request(delete=pb.DeleteRequest(path=_path(record.path), version=record.version))
    if opcode == OpCode.SET_DATA:
        return _set_data(record)
    if opcode == OpCode.CHECK:
        return pb.Request(check=pb.CheckVersionRequest(path=_path(record.path), version=record.version))
    raise ZkRefusal(Err.BAD_ARGUMENTS)


def _set_data(record) -> pb.Request:
    body = pb.SetDataRequest(path=_path(record.path), version=record.version)
    if record.data is not None:
        body.data = record.data
    return pb.Request(set_data=body)


def _multi(opcodes: list[int]) -> Encode:
    def encode(resp: pb.Response) -> tuple[int, bytes]:
        results = resp.multi.results
        if len(results) != len(opcodes):        # refused whole (e.g. the session is gone)
            return ERR.get(resp.error.code, Err.SYSTEM_ERROR), b""
        failed = resp.HasField("error") and resp.error.code != pb.OK
        out = []
        for opcode, sub in zip(opcodes, results):
            if failed:
                # every op an ErrorResult: 0 before the failing one, its code, -2 after it;
                # the ReplyHeader's err stays 0 (ZooKeeper's FinalRequestProcessor)
                code = sub.error.code if sub.HasField("error") else pb.OK
                out.append((OpCode.ERROR, None, ERR.get(code, Err.SYSTEM_ERROR)))
            elif opcode in _CREATES:
                created = (rec.CreateResponse(path=sub.create.path) if opcode == OpCode.CREATE else
                           rec.Create2Response(path=sub.create.path, stat=_stat(sub.create.stat)))
                out.append((opcode, created, Err.OK))
            elif opcode == OpCode.SET_DATA:
                out.append((opcode, rec.SetDataResponse(stat=_stat(sub.stat)), Err.OK))
            else:
                out.append((opcode, None, Err.OK))
        w = Writer()
        write_multi_response(w, out)
        return Err.OK, w.getvalue()
    return encode


def _empty(resp: pb.Response) -> tuple[int, bytes]:
    if resp.HasField("error") and resp.error.code != pb.OK:
        return ERR.get(resp.error.code, Err.SYSTEM_ERROR), b""
    return Err.OK, b""


def fixed(code: int) -> Encode:
    return lambda resp: (int(code), b"")


def _multi_read(ops: list[tuple[int, object]]) -> Op | Gather:
    """getData and getChildren ops answered together, each with its result or its error (no
    rollback: a read that fails does not fail the others), watches never set (ZooKeeper's
    FinalRequestProcessor reads them without a watcher)."""
    requests = []
    for code, record in ops:
        if code == OpCode.GET_DATA:
            requests.append(pb.Request(get_data=pb.GetDataRequest(path=_path(record.path))))
        elif code == OpCode.GET_CHILDREN:
            requests.append(pb.Request(get_children=pb.GetChildrenRequest(path=_path(record.path))))
        else:
            raise ZkRefusal(Err.BAD_ARGUMENTS)      # a write in a multiRead

    def encode(responses: list[pb.Response]) -> tuple[int, bytes]:
        out = []
        for (code, _), resp in zip(ops, responses):
            if resp.HasField("error") and resp.error.code != pb.OK:
                out.append((OpCode.ERROR, None, ERR.get(resp.error.code, Err.SYSTEM_ERROR)))
            elif code == OpCode.GET_DATA:
                out.append((code, _data(resp), Err.OK))
            else:
                out.append((code, rec.GetChildrenResponse(children=list(resp.get_children.children)), Err.OK))
        w = Writer()
        write_multi_response(w, out)
        return Err.OK, w.getvalue()
    if not requests:
        return Op(InTurn(0), lambda resp: encode([]))
    return Gather(requests, encode)


def _unvalidated(opcode: int, cls, r: Reader):
    """The request of a read (or a delete) whose path ZooKeeper does not validate: a name no
    znode can have is simply not found (NONODE); exists and delete refuse only a NUL."""
    record = cls.read(r)
    path = record.path
    if path is not None and path_problem(path) is not None:
        if "\0" in path and opcode in (OpCode.EXISTS, OpCode.DELETE):
            raise ZkRefusal(Err.BAD_ARGUMENTS)
        raise ZkRefusal(Err.NO_NODE)
    return record


def decode(xid: int, opcode: int, r: Reader) -> Op | Gather:
    """The node's request for one of ZooKeeper's, and how to answer it."""

    if opcode in _CREATES:
        record = (rec.CreateTTLRequest if opcode == OpCode.CREATE_TTL else rec.CreateRequest).read(r)
        return Op(_xid(create_request(opcode, record), xid), _created(opcode))
    if opcode == OpCode.DELETE:
        record = _unvalidated(opcode, rec.DeleteRequest, r)
        return Op(pb.Request(xid=xid, delete=pb.DeleteRequest(path=_path(record.path), version=record.version)),
                  _empty)
    if opcode == OpCode.EXISTS:
        record = _unvalidated(opcode, rec.ExistsRequest, r)
        return Op(pb.Request(xid=xid, exists=pb.ExistsRequest(path=_path(record.path), watch=record.watch)),
                  _exists)
    if opcode == OpCode.GET_DATA:
        record = _unvalidated(opcode, rec.GetDataRequest, r)
        return Op(pb.Request(xid=xid, get_data=pb.GetDataRequest(path=_path(record.path), watch=record.watch)),
                  _answer(_data))
    if opcode == OpCode.SET_DATA:
        return Op(_xid(_set_data(rec.SetDataRequest.read(r)), xid),
                  _answer(lambda resp: rec.SetDataResponse(stat=_stat(resp.stat))))
    if opcode in (OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2):
        record = _unvalidated(opcode, rec.GetChildrenRequest if opcode == OpCode.GET_CHILDREN
                              else rec.GetChildren2Request, r)
        request = pb.Request(xid=xid, get_children=pb.GetChildrenRequest(path=_path(record.path),
                                                                          watch=record.watch))
        if opcode == OpCode.GET_CHILDREN:
            return Op(request, _answer(lambda resp: rec.GetChildrenResponse(children=list(resp.get_children.children))))
        return Op(request, _answer(lambda resp: rec.GetChildren2Response(
            children=list(resp.get_children.children), stat=_stat(resp.get_children.stat))))
    if opcode == OpCode.SYNC:
        record = rec.SyncRequest.read(r)
        return Op(pb.Request(xid=xid, sync=pb.SyncRequest(path=_path(record.path))),
                  _answer(lambda resp: rec.SyncResponse(path=resp.sync.path or record.path)))
    if opcode == OpCode.GET_ACL:
        record = rec.GetACLRequest.read(r)
        return Op(pb.Request(xid=xid, get_acl=pb.GetAclRequest(path=_path(record.path))),
                  _answer(lambda resp: rec.GetACLResponse(acl=_acl_records(resp.acl.acl), stat=_stat(resp.acl.stat))))
    if opcode == OpCode.SET_ACL:
        record = rec.SetACLRequest.read(r)
        request = pb.SetAclRequest(path=_path(record.path), acl=_acl(record.acl), version=record.version)
        return Op(pb.Request(xid=xid, set_acl=request),
                  _answer(lambda resp: rec.SetACLResponse(stat=_stat(resp.stat))))
    if opcode == OpCode.CHECK:
        record = rec.CheckVersionRequest.read(r)
        return Op(pb.Request(xid=xid, check=pb.CheckVersionRequest(path=_path(record.path), version=record.version)),
                  _empty)
    if opcode == OpCode.MULTI:
        ops = read_multi(r)
        requests = [_multi_op(code, record) for code, record in ops]
        return Op(pb.Request(xid=xid, multi=pb.MultiRequest(ops=requests)), _multi([code for code, _ in ops]))
    if opcode == OpCode.MULTI_READ:
        return _multi_read(read_multi(r))
    if opcode == OpCode.PING:
        return Op(pb.Request(xid=xid, ping=pb.PingRequest()), _empty)
    if opcode == OpCode.CLOSE_SESSION:
        return Op(pb.Request(xid=xid, close_session=pb.CloseSessionRequest()), _empty)
    if opcode == OpCode.GET_EPHEMERALS:
        record = rec.GetEphemeralsRequest.read(r)
        return Op(pb.Request(xid=xid, get_ephemerals=pb.GetEphemeralsRequest(prefix=record.prefixPath or "/")),
                  _answer(lambda resp: rec.GetEphemeralsResponse(ephemerals=list(resp.ephemerals.paths))))
    if opcode == OpCode.GET_ALL_CHILDREN_NUMBER:
        record = rec.GetAllChildrenNumberRequest.read(r)
        return Op(pb.Request(xid=xid, get_all_children_number=pb.GetAllChildrenNumberRequest(path=_path(record.path))),
                  _answer(lambda resp: rec.GetAllChildrenNumberResponse(totalNumber=resp.count)))
    if opcode == OpCode.ADD_WATCH:
        record = rec.AddWatchRequest.read(r)
        if record.mode not in (0, 1):
            raise ZkRefusal(Err.BAD_ARGUMENTS)
        mode = pb.PERSISTENT if record.mode == 0 else pb.PERSISTENT_RECURSIVE
        return Op(pb.Request(xid=xid, add_watch=pb.AddWatchRequest(path=_path(record.path), mode=mode)), _empty)
    if opcode == OpCode.REMOVE_WATCHES:
        record = rec.RemoveWatchesRequest.read(r)
        kind = WATCHER_TYPES.get(record.type)
        if kind is None:
            raise ZkRefusal(Err.BAD_ARGUMENTS)
        return Op(pb.Request(xid=xid, remove_watches=pb.RemoveWatchesRequest(path=_path(record.path), type=kind)),
                  _empty)
    if opcode == OpCode.RECONFIG:
        return Op(InTurn(xid), fixed(Err.RECONFIG_DISABLED))      # ZooKeeper's answer with reconfig off
    # what this node does not serve (yet): ZooKeeper's own answer for it, never a dropped connection
    return Op(InTurn(xid), fixed(Err.UNIMPLEMENTED))


def _xid(request: pb.Request, xid: int) -> pb.Request:
    request.xid = xid
    return request
