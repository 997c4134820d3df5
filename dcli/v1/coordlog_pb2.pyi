from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Txn(_message.Message):
    __slots__ = ("zxid", "time_ms", "session_id", "seq", "create_session", "close_session", "create", "delete", "set_data", "multi", "check", "set_acl")
    ZXID_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CREATE_SESSION_FIELD_NUMBER: _ClassVar[int]
    CLOSE_SESSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    SET_DATA_FIELD_NUMBER: _ClassVar[int]
    MULTI_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    SET_ACL_FIELD_NUMBER: _ClassVar[int]
    zxid: int
    time_ms: int
    session_id: int
    seq: int
    create_session: CreateSessionTxn
    close_session: CloseSessionTxn
    create: CreateTxn
    delete: DeleteTxn
    set_data: SetDataTxn
    multi: MultiTxn
    check: CheckTxn
    set_acl: SetAclTxn
    def __init__(self, zxid: _Optional[int] = ..., time_ms: _Optional[int] = ..., session_id: _Optional[int] = ..., seq: _Optional[int] = ..., create_session: _Optional[_Union[CreateSessionTxn, _Mapping]] = ..., close_session: _Optional[_Union[CloseSessionTxn, _Mapping]] = ..., create: _Optional[_Union[CreateTxn, _Mapping]] = ..., delete: _Optional[_Union[DeleteTxn, _Mapping]] = ..., set_data: _Optional[_Union[SetDataTxn, _Mapping]] = ..., multi: _Optional[_Union[MultiTxn, _Mapping]] = ..., check: _Optional[_Union[CheckTxn, _Mapping]] = ..., set_acl: _Optional[_Union[SetAclTxn, _Mapping]] = ...) -> None: ...

class CreateSessionTxn(_message.Message):
    __slots__ = ("session_id", "timeout_ms", "password")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    timeout_ms: int
    password: bytes
    def __init__(self, session_id: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., password: _Optional[bytes] = ...) -> None: ...

class CloseSessionTxn(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class CreateTxn(_message.Message):
    __slots__ = ("path", "data", "ephemeral_owner", "container", "ttl_ms", "sequential", "acl")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_OWNER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    ephemeral_owner: int
    container: bool
    ttl_ms: int
    sequential: bool
    acl: _containers.RepeatedCompositeFieldContainer[LogAcl]
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., ephemeral_owner: _Optional[int] = ..., container: _Optional[bool] = ..., ttl_ms: _Optional[int] = ..., sequential: _Optional[bool] = ..., acl: _Optional[_Iterable[_Union[LogAcl, _Mapping]]] = ...) -> None: ...

class LogAcl(_message.Message):
    __slots__ = ("perms", "scheme", "id")
    PERMS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    perms: int
    scheme: str
    id: str
    def __init__(self, perms: _Optional[int] = ..., scheme: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class SetAclTxn(_message.Message):
    __slots__ = ("path", "acl")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    path: str
    acl: _containers.RepeatedCompositeFieldContainer[LogAcl]
    def __init__(self, path: _Optional[str] = ..., acl: _Optional[_Iterable[_Union[LogAcl, _Mapping]]] = ...) -> None: ...

class DeleteTxn(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class SetDataTxn(_message.Message):
    __slots__ = ("path", "data")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class CheckTxn(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class MultiTxn(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[Txn]
    def __init__(self, ops: _Optional[_Iterable[_Union[Txn, _Mapping]]] = ...) -> None: ...

class SnapshotNode(_message.Message):
    __slots__ = ("path", "data", "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeral_owner", "pzxid", "container", "ttl_ms", "child_creates", "acl")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CZXID_FIELD_NUMBER: _ClassVar[int]
    MZXID_FIELD_NUMBER: _ClassVar[int]
    CTIME_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CVERSION_FIELD_NUMBER: _ClassVar[int]
    AVERSION_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_OWNER_FIELD_NUMBER: _ClassVar[int]
    PZXID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    CHILD_CREATES_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    pzxid: int
    container: bool
    ttl_ms: int
    child_creates: int
    acl: _containers.RepeatedCompositeFieldContainer[LogAcl]
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., czxid: _Optional[int] = ..., mzxid: _Optional[int] = ..., ctime: _Optional[int] = ..., mtime: _Optional[int] = ..., version: _Optional[int] = ..., cversion: _Optional[int] = ..., aversion: _Optional[int] = ..., ephemeral_owner: _Optional[int] = ..., pzxid: _Optional[int] = ..., container: _Optional[bool] = ..., ttl_ms: _Optional[int] = ..., child_creates: _Optional[int] = ..., acl: _Optional[_Iterable[_Union[LogAcl, _Mapping]]] = ...) -> None: ...

class SnapshotSession(_message.Message):
    __slots__ = ("session_id", "timeout_ms", "password", "applied")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    timeout_ms: int
    password: bytes
    applied: _containers.RepeatedCompositeFieldContainer[AppliedWrite]
    def __init__(self, session_id: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., password: _Optional[bytes] = ..., applied: _Optional[_Iterable[_Union[AppliedWrite, _Mapping]]] = ...) -> None: ...

class AppliedWrite(_message.Message):
    __slots__ = ("seq", "response")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    response: bytes
    def __init__(self, seq: _Optional[int] = ..., response: _Optional[bytes] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("zxid", "nodes", "sessions")
    ZXID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    zxid: int
    nodes: _containers.RepeatedCompositeFieldContainer[SnapshotNode]
    sessions: _containers.RepeatedCompositeFieldContainer[SnapshotSession]
    def __init__(self, zxid: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[SnapshotNode, _Mapping]]] = ..., sessions: _Optional[_Iterable[_Union[SnapshotSession, _Mapping]]] = ...) -> None: ...
