"""ZooKeeper's client protocol beyond its records: constants, framing, handshake and multi.

proto/zookeeper.jute gives the records (`zk_records.py`); this module gives what a listener also
needs and the .jute file does not say: the opcodes, special xids, error codes, create modes,
watcher enums and permission bits (values from ZooKeeper 3.8's ZooDefs, KeeperException,
CreateMode and Watcher), the length-prefixed framing, the connect handshake with its optional
trailing readOnly byte, and the multi encoding (a MultiHeader before each op, ended by
MultiHeader(-1, true, -1)). Enum member names are Java's in UPPER_SNAKE (`getChildren2` ->
GET_CHILDREN2, `NoNode`/`NONODE` -> NO_NODE), matching `dcli.wire.errors.Code` where both exist.

    >>> req, read_only = read_connect_request(bytes(24) + b"\\x00\\x00\\x00\\x00" + b"\\x01")
    >>> req.passwd, read_only
    (b'', True)
"""
from __future__ import annotations

import struct
from enum import IntEnum, IntFlag
from typing import Any, Iterable

from dcli.wire.jute import JuteError, Reader, Writer
from dcli.wire.zk_records import (CheckVersionRequest, ConnectRequest, ConnectResponse,
                                  Create2Response, CreateRequest, CreateResponse,
                                  CreateTTLRequest, DeleteRequest, ErrorResponse,
                                  GetChildrenRequest, GetChildrenResponse, GetDataRequest,
                                  GetDataResponse, MultiHeader, SetDataRequest, SetDataResponse)

# jute.maxbuffer's default; ZooKeeper's server closes the connection when a length prefix is
# negative or greater than this (NIOServerCnxn.readLength: `len < 0 || len > maxBuffer`), and
# its client does the same for replies (ClientCnxnSocket.readLength).
MAX_PACKET = 0xFFFFF

_LENGTH = struct.Struct("!i")
_MULTI_HEADER = struct.Struct("!i?i")


class OpCode(IntEnum):
    """ZooDefs.OpCode: the `type` of a RequestHeader and of a MultiHeader."""

    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


class Xid(IntEnum):
    """The xids with a fixed meaning (ClientCnxn); ordinary requests count up from 1."""

    NOTIFICATION = -1
    PING = -2
    AUTH = -4
    SET_WATCHES = -8


class KeeperCode(IntEnum):
    """KeeperException.Code: the `err` of a ReplyHeader, MultiHeader and ErrorResponse."""

    OK = 0
    SYSTEM_ERROR = -1
    RUNTIME_INCONSISTENCY = -2
    DATA_INCONSISTENCY = -3
    CONNECTION_LOSS = -4
    MARSHALLING_ERROR = -5
    UNIMPLEMENTED = -6
    OPERATION_TIMEOUT = -7
    BAD_ARGUMENTS = -8
    UNKNOWN_SESSION = -12
    NEW_CONFIG_NO_QUORUM = -13
    RECONFIG_IN_PROGRESS = -14
    API_ERROR = -100
    NO_NODE = -101
    NO_AUTH = -102
    BAD_VERSION = -103
    NO_CHILDREN_FOR_EPHEMERALS = -108
    NODE_EXISTS = -110
    NOT_EMPTY = -111
    SESSION_EXPIRED = -112
    INVALID_CALLBACK = -113
    INVALID_ACL = -114
    AUTH_FAILED = -115
    SESSION_MOVED = -118
    NOT_READ_ONLY = -119
    EPHEMERAL_ON_LOCAL_SESSION = -120
    NO_WATCHER = -121
    REQUEST_TIMEOUT = -122
    RECONFIG_DISABLED = -123
    SESSION_CLOSED_REQUIRE_SASL = -124
    QUOTA_EXCEEDED = -125
    THROTTLED_OP = -127


class CreateMode(IntEnum):
    """CreateMode: the `flags` of a create request."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


class EventType(IntEnum):
    """Watcher.Event.EventType: a WatcherEvent's `type`."""

    NONE = -1
    NODE_CREATED = 1
    NODE_DELETED = 2
    NODE_DATA_CHANGED = 3
    NODE_CHILDREN_CHANGED = 4
    DATA_WATCH_REMOVED = 5
    CHILD_WATCH_REMOVED = 6
    PERSISTENT_WATCH_REMOVED = 7


class KeeperState(IntEnum):
    """Watcher.Event.KeeperState: a WatcherEvent's `state` (the server sends SYNC_CONNECTED)."""

    UNKNOWN = -1
    DISCONNECTED = 0
    NO_SYNC_CONNECTED = 1
    SYNC_CONNECTED = 3
    AUTH_FAILED = 4
    CONNECTED_READ_ONLY = 5
    SASL_AUTHENTICATED = 6
    EXPIRED = -112
    CLOSED = 7


class WatcherType(IntEnum):
    """Watcher.WatcherType: the `type` of checkWatches / removeWatches."""

    CHILDREN = 1
    DATA = 2
    ANY = 3


class AddWatchMode(IntEnum):
    """ZooDefs.AddWatchModes: the `mode` of addWatch."""

    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class Perms(IntFlag):
    """ZooDefs.Perms: an ACL's `perms` bits."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """One message as it goes on the socket: its length (4 bytes, big-endian), then itself."""
    return _LENGTH.pack(len(payload)) + bytes(payload)


def frame_length(prefix: bytes | bytearray | memoryview) -> int:
    """The length in a message's 4-byte prefix; JuteError (drop the connection) unless it is
    0..MAX_PACKET. A four-letter word (`ruok`, ...) has to be recognised before this."""
    if len(prefix) != 4:
        raise JuteError(f"a length prefix is 4 bytes, not {len(prefix)}")
    n = _LENGTH.unpack(prefix)[0]
    if n < 0 or n > MAX_PACKET:
        raise JuteError(f"packet length {n} outside 0..{MAX_PACKET} (jute.maxbuffer)")
    return n


def read_connect_request(
        data: bytes | bytearray | memoryview) -> tuple[ConnectRequest, bool | None]:
    """The handshake's first message (no RequestHeader) and its trailing readOnly byte, None when
    the client sent none. Later bytes are ignored, as ZooKeeper ignores them."""
    r = Reader(data)
    try:
        req = ConnectRequest.read(r)
        read_only = None if r.done() else r.bool()
    except JuteError as exc:
        raise JuteError(f"ConnectRequest: {exc}") from None
    return req, read_only


def write_connect_response(resp: ConnectResponse, read_only: bool | None) -> bytes:
    """The handshake's answer (not framed); the readOnly byte only when `read_only` is not None,
    which should be when the client sent one (ZooKeeperServer.finishSessionInit)."""
    w = Writer()
    resp.write(w)
    if read_only is not None:
        w.bool(read_only)
    return w.getvalue()


# what each op of a multi (14) or multiRead (22) carries (MultiOperationRecord.deserialize)
MULTI_REQUESTS: dict[int, type] = {
    OpCode.CREATE: CreateRequest,
    OpCode.CREATE2: CreateRequest,
    OpCode.CREATE_CONTAINER: CreateRequest,
    OpCode.CREATE_TTL: CreateTTLRequest,
    OpCode.DELETE: DeleteRequest,
    OpCode.SET_DATA: SetDataRequest,
    OpCode.CHECK: CheckVersionRequest,
    OpCode.GET_CHILDREN: GetChildrenRequest,
    OpCode.GET_DATA: GetDataRequest,
}
_READ_OPS = frozenset({OpCode.GET_CHILDREN, OpCode.GET_DATA})
# the fewest bytes an op takes: its MultiHeader and the smallest request record
_MIN_OP = MultiHeader.MIN_SIZE + min(cls.MIN_SIZE for cls in MULTI_REQUESTS.values())


def read_multi(r: Reader) -> list[tuple[int, Any]]:
    """The ops of a multi or multiRead request as (op type, request record), up to and including
    the terminating MultiHeader (done = true). At most what fits in the remaining bytes is
    decoded; an unknown op type, a missing terminator, or reads mixed with writes (ZooKeeper:
    "Mixing different kind of ops") raise JuteError."""
    start = r.offset
    limit = r.remaining() // _MIN_OP         # no more ops than that can end before the bytes do
    ops: list[tuple[int, Any]] = []
    for _ in range(limit + 1):
        at = r.offset
        header = MultiHeader.read(r)
        if header.done:
            return ops
        cls = MULTI_REQUESTS.get(header.type)
        if cls is None:
            raise JuteError(f"multi op {len(ops)} at offset {at}: invalid op type {header.type}")
        if ops and (header.type in _READ_OPS) != (ops[0][0] in _READ_OPS):
            raise JuteError(f"multi op {len(ops)} at offset {at}: mixes reads and writes")
        ops.append((header.type, cls.read(r)))
    raise JuteError(f"multi at offset {start}: no terminating header after {len(ops)} ops")


# a successful result's header type and body (MultiResponse.serialize; FinalRequestProcessor
# answers createContainer / createTTL with a create2 result, deleteContainer with a delete one)
_MULTI_RESULTS: dict[int, tuple[int, type | None]] = {
    OpCode.CREATE: (OpCode.CREATE, CreateResponse),
    OpCode.CREATE2: (OpCode.CREATE2, Create2Response),
    OpCode.CREATE_CONTAINER: (OpCode.CREATE2, Create2Response),
    OpCode.CREATE_TTL: (OpCode.CREATE2, Create2Response),
    OpCode.DELETE: (OpCode.DELETE, None),
    OpCode.DELETE_CONTAINER: (OpCode.DELETE, None),
    OpCode.CHECK: (OpCode.CHECK, None),
    OpCode.SET_DATA: (OpCode.SET_DATA, SetDataResponse),
    OpCode.GET_CHILDREN: (OpCode.GET_CHILDREN, GetChildrenResponse),
    OpCode.GET_DATA: (OpCode.GET_DATA, GetDataResponse),
}


def write_multi_response(w: Writer, results: Iterable[tuple[int, Any, int]]) -> None:
    """A multi's or multiRead's reply body: per result (op type, response record or None, err),
    then the terminator. A result whose op type is OpCode.ERROR or whose err is not 0 is
    written as an ErrorResult with that err; see `failed_multi_results` for a failed multi."""
    for op, record, err in results:
        if op == OpCode.ERROR or err != 0:
            w.pack(_MULTI_HEADER, OpCode.ERROR, False, err)
            ErrorResponse(err).write(w)
            continue
        if op not in _MULTI_RESULTS:
            raise JuteError(f"op type {op} has no multi result")
        wire_op, body = _MULTI_RESULTS[op]
        if not (record is None if body is None else isinstance(record, body)):
            want = body.__name__ if body else "no record"
            raise JuteError(f"multi result for op {op} needs {want}, not {type(record).__name__}")
        w.pack(_MULTI_HEADER, wire_op, False, 0)
        if record is not None:
            record.write(w)
    w.pack(_MULTI_HEADER, -1, True, -1)


def failed_multi_results(count: int, failed: int, err: int) -> list[tuple[int, None, int]]:
    """The results of a multi of `count` ops whose op number `failed` (from 0) failed with `err`:
    every op an ErrorResult, 0 before it, `err` for it, RUNTIME_INCONSISTENCY after it
    (PrepRequestProcessor; the ReplyHeader's err stays 0)."""
    return [(OpCode.ERROR, None,
             0 if i < failed else err if i == failed else KeeperCode.RUNTIME_INCONSISTENCY)
            for i in range(count)]

