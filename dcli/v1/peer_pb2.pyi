from dcli.v1 import coord_pb2 as _coord_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ForwardFrame(_message.Message):
    __slots__ = ("requests", "alive_sessions", "link")
    FROM_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ALIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ForwardedRequest]
    alive_sessions: _containers.RepeatedScalarFieldContainer[int]
    link: int
    def __init__(self, requests: _Optional[_Iterable[_Union[ForwardedRequest, _Mapping]]] = ..., alive_sessions: _Optional[_Iterable[int]] = ..., link: _Optional[int] = ..., **kwargs) -> None: ...

class ForwardedRequest(_message.Message):
    __slots__ = ("id", "session_id", "request", "open_session_timeout_ms", "auth")
    ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    OPEN_SESSION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    id: int
    session_id: int
    request: _coord_pb2.Request
    open_session_timeout_ms: int
    auth: _containers.RepeatedCompositeFieldContainer[AuthId]
    def __init__(self, id: _Optional[int] = ..., session_id: _Optional[int] = ..., request: _Optional[_Union[_coord_pb2.Request, _Mapping]] = ..., open_session_timeout_ms: _Optional[int] = ..., auth: _Optional[_Iterable[_Union[AuthId, _Mapping]]] = ...) -> None: ...

class AuthId(_message.Message):
    __slots__ = ("scheme", "id")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    id: str
    def __init__(self, scheme: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ForwardReplies(_message.Message):
    __slots__ = ("replies", "commit_index", "commit_term", "link", "closed")
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TERM_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[ForwardReply]
    commit_index: int
    commit_term: int
    link: int
    closed: bool
    def __init__(self, replies: _Optional[_Iterable[_Union[ForwardReply, _Mapping]]] = ..., commit_index: _Optional[int] = ..., commit_term: _Optional[int] = ..., link: _Optional[int] = ..., closed: _Optional[bool] = ...) -> None: ...

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

class KVPeerReply(_message.Message):
    __slots__ = ("answer", "error")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    answer: bytes
    error: KVPeerError
    def __init__(self, answer: _Optional[bytes] = ..., error: _Optional[_Union[KVPeerError, _Mapping]] = ...) -> None: ...

class KVPeerError(_message.Message):
    __slots__ = ("tag", "message")
    TAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    tag: str
    message: str
    def __init__(self, tag: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
