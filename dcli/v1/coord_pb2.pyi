from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddWatchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERSISTENT: _ClassVar[AddWatchMode]
    PERSISTENT_RECURSIVE: _ClassVar[AddWatchMode]

class WatcherType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCHER_ANY: _ClassVar[WatcherType]
    WATCHER_DATA: _ClassVar[WatcherType]
    WATCHER_CHILDREN: _ClassVar[WatcherType]
    WATCHER_PERSISTENT: _ClassVar[WatcherType]
    WATCHER_PERSISTENT_RECURSIVE: _ClassVar[WatcherType]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[ErrorCode]
    SYSTEM_ERROR: _ClassVar[ErrorCode]
    RUNTIME_INCONSISTENCY: _ClassVar[ErrorCode]
    CONNECTION_LOSS: _ClassVar[ErrorCode]
    MARSHALLING_ERROR: _ClassVar[ErrorCode]
    UNIMPLEMENTED: _ClassVar[ErrorCode]
    OPERATION_TIMEOUT: _ClassVar[ErrorCode]
    BAD_ARGUMENTS: _ClassVar[ErrorCode]
    NO_NODE: _ClassVar[ErrorCode]
    NO_AUTH: _ClassVar[ErrorCode]
    BAD_VERSION: _ClassVar[ErrorCode]
    NO_CHILDREN_FOR_EPHEMERALS: _ClassVar[ErrorCode]
    NODE_EXISTS: _ClassVar[ErrorCode]
    NOT_EMPTY: _ClassVar[ErrorCode]
    SESSION_EXPIRED: _ClassVar[ErrorCode]
    INVALID_ACL: _ClassVar[ErrorCode]
    SESSION_MOVED: _ClassVar[ErrorCode]
    NO_WATCHER: _ClassVar[ErrorCode]
    INVALID_PATH: _ClassVar[ErrorCode]
    DATA_TOO_LARGE: _ClassVar[ErrorCode]
    REQUEST_TOO_LARGE: _ClassVar[ErrorCode]
    NOT_READ_ONLY: _ClassVar[ErrorCode]
    TOO_FAR_BEHIND: _ClassVar[ErrorCode]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NONE: _ClassVar[EventType]
    NODE_CREATED: _ClassVar[EventType]
    NODE_DELETED: _ClassVar[EventType]
    NODE_DATA_CHANGED: _ClassVar[EventType]
    NODE_CHILDREN_CHANGED: _ClassVar[EventType]
    DATA_WATCH_REMOVED: _ClassVar[EventType]
    CHILD_WATCH_REMOVED: _ClassVar[EventType]
    PERSISTENT_WATCH_REMOVED: _ClassVar[EventType]
PERSISTENT: AddWatchMode
PERSISTENT_RECURSIVE: AddWatchMode
WATCHER_ANY: WatcherType
WATCHER_DATA: WatcherType
WATCHER_CHILDREN: WatcherType
WATCHER_PERSISTENT: WatcherType
WATCHER_PERSISTENT_RECURSIVE: WatcherType
OK: ErrorCode
SYSTEM_ERROR: ErrorCode
RUNTIME_INCONSISTENCY: ErrorCode
CONNECTION_LOSS: ErrorCode
MARSHALLING_ERROR: ErrorCode
UNIMPLEMENTED: ErrorCode
OPERATION_TIMEOUT: ErrorCode
BAD_ARGUMENTS: ErrorCode
NO_NODE: ErrorCode
NO_AUTH: ErrorCode
BAD_VERSION: ErrorCode
NO_CHILDREN_FOR_EPHEMERALS: ErrorCode
NODE_EXISTS: ErrorCode
NOT_EMPTY: ErrorCode
SESSION_EXPIRED: ErrorCode
INVALID_ACL: ErrorCode
SESSION_MOVED: ErrorCode
NO_WATCHER: ErrorCode
INVALID_PATH: ErrorCode
DATA_TOO_LARGE: ErrorCode
REQUEST_TOO_LARGE: ErrorCode
NOT_READ_ONLY: ErrorCode
TOO_FAR_BEHIND: ErrorCode
NONE: EventType
NODE_CREATED: EventType
NODE_DELETED: EventType
NODE_DATA_CHANGED: EventType
NODE_CHILDREN_CHANGED: EventType
DATA_WATCH_REMOVED: EventType
CHILD_WATCH_REMOVED: EventType
PERSISTENT_WATCH_REMOVED: EventType

class ClientFrame(_message.Message):
    __slots__ = ("connect", "requests")
    CONNECT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    connect: Connect
    requests: _containers.RepeatedCompositeFieldContainer[Request]
    def __init__(self, connect: _Optional[_Union[Connect, _Mapping]] = ..., requests: _Optional[_Iterable[_Union[Request, _Mapping]]] = ...) -> None: ...

class Connect(_message.Message):
    __slots__ = ("session_id", "password", "timeout_ms", "last_zxid_seen", "data_watches", "exist_watches", "child_watches", "persistent_watches", "persistent_recursive_watches", "auth")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ZXID_SEEN_FIELD_NUMBER: _ClassVar[int]
    DATA_WATCHES_FIELD_NUMBER: _ClassVar[int]
    EXIST_WATCHES_FIELD_NUMBER: _ClassVar[int]
    CHILD_WATCHES_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_WATCHES_FIELD_NUMBER: _ClassVar[int]
    PERSISTENT_RECURSIVE_WATCHES_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    password: bytes
    timeout_ms: int
    last_zxid_seen: int
    data_watches: _containers.RepeatedScalarFieldContainer[str]
    exist_watches: _containers.RepeatedScalarFieldContainer[str]
    child_watches: _containers.RepeatedScalarFieldContainer[str]
    persistent_watches: _containers.RepeatedScalarFieldContainer[str]
    persistent_recursive_watches: _containers.RepeatedScalarFieldContainer[str]
    auth: _containers.RepeatedCompositeFieldContainer[AddAuthRequest]
    def __init__(self, session_id: _Optional[int] = ..., password: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ..., last_zxid_seen: _Optional[int] = ..., data_watches: _Optional[_Iterable[str]] = ..., exist_watches: _Optional[_Iterable[str]] = ..., child_watches: _Optional[_Iterable[str]] = ..., persistent_watches: _Optional[_Iterable[str]] = ..., persistent_recursive_watches: _Optional[_Iterable[str]] = ..., auth: _Optional[_Iterable[_Union[AddAuthRequest, _Mapping]]] = ...) -> None: ...

class Connected(_message.Message):
    __slots__ = ("session_id", "password", "timeout_ms", "zxid", "server")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ZXID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    password: bytes
    timeout_ms: int
    zxid: int
    server: str
    def __init__(self, session_id: _Optional[int] = ..., password: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ..., zxid: _Optional[int] = ..., server: _Optional[str] = ...) -> None: ...

class ServerFrame(_message.Message):
    __slots__ = ("connected", "items", "error")
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    connected: Connected
    items: _containers.RepeatedCompositeFieldContainer[ServerItem]
    error: Error
    def __init__(self, connected: _Optional[_Union[Connected, _Mapping]] = ..., items: _Optional[_Iterable[_Union[ServerItem, _Mapping]]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ServerItem(_message.Message):
    __slots__ = ("response", "event")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    response: Response
    event: WatchEvent
    def __init__(self, response: _Optional[_Union[Response, _Mapping]] = ..., event: _Optional[_Union[WatchEvent, _Mapping]] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("xid", "seq", "retry", "acked_seq", "create", "delete", "set_data", "get_data", "exists", "get_children", "sync", "multi", "get_ephemerals", "get_all_children_number", "add_watch", "remove_watches", "ping", "close_session", "check", "get_acl", "set_acl", "add_auth", "who_am_i")
    XID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    ACKED_SEQ_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    SET_DATA_FIELD_NUMBER: _ClassVar[int]
    GET_DATA_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    GET_CHILDREN_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    MULTI_FIELD_NUMBER: _ClassVar[int]
    GET_EPHEMERALS_FIELD_NUMBER: _ClassVar[int]
    GET_ALL_CHILDREN_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ADD_WATCH_FIELD_NUMBER: _ClassVar[int]
    REMOVE_WATCHES_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    CLOSE_SESSION_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    GET_ACL_FIELD_NUMBER: _ClassVar[int]
    SET_ACL_FIELD_NUMBER: _ClassVar[int]
    ADD_AUTH_FIELD_NUMBER: _ClassVar[int]
    WHO_AM_I_FIELD_NUMBER: _ClassVar[int]
    xid: int
    seq: int
    retry: bool
    acked_seq: int
    create: CreateRequest
    delete: DeleteRequest
    set_data: SetDataRequest
    get_data: GetDataRequest
    exists: ExistsRequest
    get_children: GetChildrenRequest
    sync: SyncRequest
    multi: MultiRequest
    get_ephemerals: GetEphemeralsRequest
    get_all_children_number: GetAllChildrenNumberRequest
    add_watch: AddWatchRequest
    remove_watches: RemoveWatchesRequest
    ping: PingRequest
    close_session: CloseSessionRequest
    check: CheckVersionRequest
    get_acl: GetAclRequest
    set_acl: SetAclRequest
    add_auth: AddAuthRequest
    who_am_i: WhoAmIRequest
    def __init__(self, xid: _Optional[int] = ..., seq: _Optional[int] = ..., retry: _Optional[bool] = ..., acked_seq: _Optional[int] = ..., create: _Optional[_Union[CreateRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., set_data: _Optional[_Union[SetDataRequest, _Mapping]] = ..., get_data: _Optional[_Union[GetDataRequest, _Mapping]] = ..., exists: _Optional[_Union[ExistsRequest, _Mapping]] = ..., get_children: _Optional[_Union[GetChildrenRequest, _Mapping]] = ..., sync: _Optional[_Union[SyncRequest, _Mapping]] = ..., multi: _Optional[_Union[MultiRequest, _Mapping]] = ..., get_ephemerals: _Optional[_Union[GetEphemeralsRequest, _Mapping]] = ..., get_all_children_number: _Optional[_Union[GetAllChildrenNumberRequest, _Mapping]] = ..., add_watch: _Optional[_Union[AddWatchRequest, _Mapping]] = ..., remove_watches: _Optional[_Union[RemoveWatchesRequest, _Mapping]] = ..., ping: _Optional[_Union[PingRequest, _Mapping]] = ..., close_session: _Optional[_Union[CloseSessionRequest, _Mapping]] = ..., check: _Optional[_Union[CheckVersionRequest, _Mapping]] = ..., get_acl: _Optional[_Union[GetAclRequest, _Mapping]] = ..., set_acl: _Optional[_Union[SetAclRequest, _Mapping]] = ..., add_auth: _Optional[_Union[AddAuthRequest, _Mapping]] = ..., who_am_i: _Optional[_Union[WhoAmIRequest, _Mapping]] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("path", "data", "ephemeral", "sequential", "container", "ttl_ms", "acl")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    ephemeral: bool
    sequential: bool
    container: bool
    ttl_ms: int
    acl: _containers.RepeatedCompositeFieldContainer[Acl]
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., ephemeral: _Optional[bool] = ..., sequential: _Optional[bool] = ..., container: _Optional[bool] = ..., ttl_ms: _Optional[int] = ..., acl: _Optional[_Iterable[_Union[Acl, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("path", "version")
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetDataRequest(_message.Message):
    __slots__ = ("path", "data", "version")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    version: int
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class CheckVersionRequest(_message.Message):
    __slots__ = ("path", "version")
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetDataRequest(_message.Message):
    __slots__ = ("path", "watch")
    PATH_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    path: str
    watch: bool
    def __init__(self, path: _Optional[str] = ..., watch: _Optional[bool] = ...) -> None: ...

class ExistsRequest(_message.Message):
    __slots__ = ("path", "watch")
    PATH_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    path: str
    watch: bool
    def __init__(self, path: _Optional[str] = ..., watch: _Optional[bool] = ...) -> None: ...

class GetChildrenRequest(_message.Message):
    __slots__ = ("path", "watch")
    PATH_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    path: str
    watch: bool
    def __init__(self, path: _Optional[str] = ..., watch: _Optional[bool] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class Acl(_message.Message):
    __slots__ = ("perms", "scheme", "id")
    PERMS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    perms: int
    scheme: str
    id: str
    def __init__(self, perms: _Optional[int] = ..., scheme: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetAclRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class SetAclRequest(_message.Message):
    __slots__ = ("path", "acl", "version")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    acl: _containers.RepeatedCompositeFieldContainer[Acl]
    version: int
    def __init__(self, path: _Optional[str] = ..., acl: _Optional[_Iterable[_Union[Acl, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...

class AddAuthRequest(_message.Message):
    __slots__ = ("scheme", "auth")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    auth: bytes
    def __init__(self, scheme: _Optional[str] = ..., auth: _Optional[bytes] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClientId(_message.Message):
    __slots__ = ("scheme", "user")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    user: str
    def __init__(self, scheme: _Optional[str] = ..., user: _Optional[str] = ...) -> None: ...

class ClientIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedCompositeFieldContainer[ClientId]
    def __init__(self, ids: _Optional[_Iterable[_Union[ClientId, _Mapping]]] = ...) -> None: ...

class AclResponse(_message.Message):
    __slots__ = ("acl", "stat")
    ACL_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    acl: _containers.RepeatedCompositeFieldContainer[Acl]
    stat: Stat
    def __init__(self, acl: _Optional[_Iterable[_Union[Acl, _Mapping]]] = ..., stat: _Optional[_Union[Stat, _Mapping]] = ...) -> None: ...

class MultiRequest(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[Request]
    def __init__(self, ops: _Optional[_Iterable[_Union[Request, _Mapping]]] = ...) -> None: ...

class GetEphemeralsRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class GetAllChildrenNumberRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class AddWatchRequest(_message.Message):
    __slots__ = ("path", "mode")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    path: str
    mode: AddWatchMode
    def __init__(self, path: _Optional[str] = ..., mode: _Optional[_Union[AddWatchMode, str]] = ...) -> None: ...

class RemoveWatchesRequest(_message.Message):
    __slots__ = ("path", "type")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    path: str
    type: WatcherType
    def __init__(self, path: _Optional[str] = ..., type: _Optional[_Union[WatcherType, str]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Stat(_message.Message):
    __slots__ = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeral_owner", "data_length", "num_children", "pzxid")
    CZXID_FIELD_NUMBER: _ClassVar[int]
    MZXID_FIELD_NUMBER: _ClassVar[int]
    CTIME_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CVERSION_FIELD_NUMBER: _ClassVar[int]
    AVERSION_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_OWNER_FIELD_NUMBER: _ClassVar[int]
    DATA_LENGTH_FIELD_NUMBER: _ClassVar[int]
    NUM_CHILDREN_FIELD_NUMBER: _ClassVar[int]
    PZXID_FIELD_NUMBER: _ClassVar[int]
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    data_length: int
    num_children: int
    pzxid: int
    def __init__(self, czxid: _Optional[int] = ..., mzxid: _Optional[int] = ..., ctime: _Optional[int] = ..., mtime: _Optional[int] = ..., version: _Optional[int] = ..., cversion: _Optional[int] = ..., aversion: _Optional[int] = ..., ephemeral_owner: _Optional[int] = ..., data_length: _Optional[int] = ..., num_children: _Optional[int] = ..., pzxid: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "path", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    path: str
    message: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("xid", "zxid", "error", "create", "stat", "get_data", "get_children", "sync", "multi", "ephemerals", "count", "empty", "remove_watches", "acl", "who_am_i")
    XID_FIELD_NUMBER: _ClassVar[int]
    ZXID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    GET_DATA_FIELD_NUMBER: _ClassVar[int]
    GET_CHILDREN_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    MULTI_FIELD_NUMBER: _ClassVar[int]
    EPHEMERALS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    REMOVE_WATCHES_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    WHO_AM_I_FIELD_NUMBER: _ClassVar[int]
    xid: int
    zxid: int
    error: Error
    create: CreateResponse
    stat: Stat
    get_data: GetDataResponse
    get_children: GetChildrenResponse
    sync: SyncResponse
    multi: MultiResponse
    ephemerals: PathList
    count: int
    empty: Empty
    remove_watches: RemoveWatchesResponse
    acl: AclResponse
    who_am_i: ClientIds
    def __init__(self, xid: _Optional[int] = ..., zxid: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., create: _Optional[_Union[CreateResponse, _Mapping]] = ..., stat: _Optional[_Union[Stat, _Mapping]] = ..., get_data: _Optional[_Union[GetDataResponse, _Mapping]] = ..., get_children: _Optional[_Union[GetChildrenResponse, _Mapping]] = ..., sync: _Optional[_Union[SyncResponse, _Mapping]] = ..., multi: _Optional[_Union[MultiResponse, _Mapping]] = ..., ephemerals: _Optional[_Union[PathList, _Mapping]] = ..., count: _Optional[int] = ..., empty: _Optional[_Union[Empty, _Mapping]] = ..., remove_watches: _Optional[_Union[RemoveWatchesResponse, _Mapping]] = ..., acl: _Optional[_Union[AclResponse, _Mapping]] = ..., who_am_i: _Optional[_Union[ClientIds, _Mapping]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateResponse(_message.Message):
    __slots__ = ("path", "stat")
    PATH_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    path: str
    stat: Stat
    def __init__(self, path: _Optional[str] = ..., stat: _Optional[_Union[Stat, _Mapping]] = ...) -> None: ...

class GetDataResponse(_message.Message):
    __slots__ = ("data", "stat")
    DATA_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    stat: Stat
    def __init__(self, data: _Optional[bytes] = ..., stat: _Optional[_Union[Stat, _Mapping]] = ...) -> None: ...

class GetChildrenResponse(_message.Message):
    __slots__ = ("children", "stat")
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    STAT_FIELD_NUMBER: _ClassVar[int]
    children: _containers.RepeatedScalarFieldContainer[str]
    stat: Stat
    def __init__(self, children: _Optional[_Iterable[str]] = ..., stat: _Optional[_Union[Stat, _Mapping]] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class PathList(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class MultiResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Response]
    def __init__(self, results: _Optional[_Iterable[_Union[Response, _Mapping]]] = ...) -> None: ...

class RemoveWatchesResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedScalarFieldContainer[WatcherType]
    def __init__(self, removed: _Optional[_Iterable[_Union[WatcherType, str]]] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("type", "path", "zxid")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ZXID_FIELD_NUMBER: _ClassVar[int]
    type: EventType
    path: str
    zxid: int
    def __init__(self, type: _Optional[_Union[EventType, str]] = ..., path: _Optional[str] = ..., zxid: _Optional[int] = ...) -> None: ...
