from dcli.v1 import coord_pb2 as _coord_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RaftFrame(_message.Message):
    __slots__ = ("cluster_id", "messages")
    FROM_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    cluster_id: int
    messages: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, cluster_id: _Optional[int] = ..., messages: _Optional[_Iterable[bytes]] = ..., **kwargs) -> None: ...

class RaftAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ForwardFrame(_message.Message):
    __slots__ = ("requests", "alive_sessions")
    FROM_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ALIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ForwardedRequest]
    alive_sessions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, requests: _Optional[_Iterable[_Union[ForwardedRequest, _Mapping]]] = ..., alive_sessions: _Optional[_Iterable[int]] = ..., **kwargs) -> None: ...

class ForwardedRequest(_message.Message):
    __slots__ = ("id", "session_id", "request", "open_session_timeout_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    OPEN_SESSION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    session_id: int
    request: _coord_pb2.Request
    open_session_timeout_ms: int
    def __init__(self, id: _Optional[int] = ..., session_id: _Optional[int] = ..., request: _Optional[_Union[_coord_pb2.Request, _Mapping]] = ..., open_session_timeout_ms: _Optional[int] = ...) -> None: ...

class ForwardReplies(_message.Message):
    __slots__ = ("replies", "commit_index", "commit_term")
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TERM_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[ForwardReply]
    commit_index: int
    commit_term: int
    def __init__(self, replies: _Optional[_Iterable[_Union[ForwardReply, _Mapping]]] = ..., commit_index: _Optional[int] = ..., commit_term: _Optional[int] = ...) -> None: ...

class ForwardReply(_message.Message):
    __slots__ = ("id", "response", "opened", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    response: _coord_pb2.Response
    opened: _coord_pb2.Connected
    error: _coord_pb2.Error
    def __init__(self, id: _Optional[int] = ..., response: _Optional[_Union[_coord_pb2.Response, _Mapping]] = ..., opened: _Optional[_Union[_coord_pb2.Connected, _Mapping]] = ..., error: _Optional[_Union[_coord_pb2.Error, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Member(_message.Message):
    __slots__ = ("node_id", "address", "reachable", "match_index")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    MATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    reachable: bool
    match_index: int
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ..., reachable: _Optional[bool] = ..., match_index: _Optional[int] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "address", "role", "term", "leader_id", "commit_index", "applied_index", "last_zxid", "sessions", "znodes", "members", "cluster_id", "snapshot_index", "log_first_index", "log_last_index", "controller_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_ZXID_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ZNODES_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    LOG_FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    LOG_LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    role: str
    term: int
    leader_id: int
    commit_index: int
    applied_index: int
    last_zxid: int
    sessions: int
    znodes: int
    members: _containers.RepeatedCompositeFieldContainer[Member]
    cluster_id: int
    snapshot_index: int
    log_first_index: int
    log_last_index: int
    controller_id: int
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ..., role: _Optional[str] = ..., term: _Optional[int] = ..., leader_id: _Optional[int] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., last_zxid: _Optional[int] = ..., sessions: _Optional[int] = ..., znodes: _Optional[int] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., cluster_id: _Optional[int] = ..., snapshot_index: _Optional[int] = ..., log_first_index: _Optional[int] = ..., log_last_index: _Optional[int] = ..., controller_id: _Optional[int] = ...) -> None: ...

class MemberRequest(_message.Message):
    __slots__ = ("node_id", "address")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class MemberResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class TransferLeaderRequest(_message.Message):
    __slots__ = ("to",)
    TO_FIELD_NUMBER: _ClassVar[int]
    to: int
    def __init__(self, to: _Optional[int] = ...) -> None: ...

class TransferLeaderResponse(_message.Message):
    __slots__ = ("leader_id",)
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    leader_id: int
    def __init__(self, leader_id: _Optional[int] = ...) -> None: ...
