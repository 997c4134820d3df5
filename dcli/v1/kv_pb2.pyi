from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionInfo(_message.Message):
    __slots__ = ("node", "counter", "context", "tombstone", "value")
    NODE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    node: str
    counter: int
    context: bytes
    tombstone: bool
    value: bytes
    def __init__(self, node: _Optional[str] = ..., counter: _Optional[int] = ..., context: _Optional[bytes] = ..., tombstone: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class ReplicaOutcome(_message.Message):
    __slots__ = ("node", "address", "outcome", "stand_in", "detail")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STAND_IN_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    node: str
    address: str
    outcome: str
    stand_in: str
    detail: str
    def __init__(self, node: _Optional[str] = ..., address: _Optional[str] = ..., outcome: _Optional[str] = ..., stand_in: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Quorum(_message.Message):
    __slots__ = ("n", "r", "w", "consistency", "preference", "replicas", "coordinator", "epoch", "acks")
    N_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    n: int
    r: int
    w: int
    consistency: str
    preference: _containers.RepeatedScalarFieldContainer[str]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaOutcome]
    coordinator: str
    epoch: int
    acks: int
    def __init__(self, n: _Optional[int] = ..., r: _Optional[int] = ..., w: _Optional[int] = ..., consistency: _Optional[str] = ..., preference: _Optional[_Iterable[str]] = ..., replicas: _Optional[_Iterable[_Union[ReplicaOutcome, _Mapping]]] = ..., coordinator: _Optional[str] = ..., epoch: _Optional[int] = ..., acks: _Optional[int] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("keyspace", "key", "value", "context", "w")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    key: bytes
    value: bytes
    context: bytes
    w: int
    def __init__(self, keyspace: _Optional[str] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., context: _Optional[bytes] = ..., w: _Optional[int] = ...) -> None: ...

class KVDeleteRequest(_message.Message):
    __slots__ = ("keyspace", "key", "context", "w")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    key: bytes
    context: bytes
    w: int
    def __init__(self, keyspace: _Optional[str] = ..., key: _Optional[bytes] = ..., context: _Optional[bytes] = ..., w: _Optional[int] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("version", "context", "siblings", "quorum")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SIBLINGS_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    version: VersionInfo
    context: bytes
    siblings: int
    quorum: Quorum
    def __init__(self, version: _Optional[_Union[VersionInfo, _Mapping]] = ..., context: _Optional[bytes] = ..., siblings: _Optional[int] = ..., quorum: _Optional[_Union[Quorum, _Mapping]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("keyspace", "key", "r")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    key: bytes
    r: int
    def __init__(self, keyspace: _Optional[str] = ..., key: _Optional[bytes] = ..., r: _Optional[int] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "versions", "context", "quorum")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    found: bool
    versions: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    context: bytes
    quorum: Quorum
    def __init__(self, found: _Optional[bool] = ..., versions: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ..., context: _Optional[bytes] = ..., quorum: _Optional[_Union[Quorum, _Mapping]] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("keyspace", "prefix", "start", "end", "limit", "include_tombstones")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOMBSTONES_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    prefix: bytes
    start: bytes
    end: bytes
    limit: int
    include_tombstones: bool
    def __init__(self, keyspace: _Optional[str] = ..., prefix: _Optional[bytes] = ..., start: _Optional[bytes] = ..., end: _Optional[bytes] = ..., limit: _Optional[int] = ..., include_tombstones: _Optional[bool] = ...) -> None: ...

class KVEntry(_message.Message):
    __slots__ = ("key", "siblings")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SIBLINGS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    siblings: bytes
    def __init__(self, key: _Optional[bytes] = ..., siblings: _Optional[bytes] = ...) -> None: ...

class ScanEntry(_message.Message):
    __slots__ = ("key", "versions")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    versions: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    def __init__(self, key: _Optional[bytes] = ..., versions: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ...) -> None: ...

class ScanResponse(_message.Message):
    __slots__ = ("entries", "truncated", "asked", "missing")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ASKED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ScanEntry]
    truncated: bool
    asked: _containers.RepeatedScalarFieldContainer[str]
    missing: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entries: _Optional[_Iterable[_Union[ScanEntry, _Mapping]]] = ..., truncated: _Optional[bool] = ..., asked: _Optional[_Iterable[str]] = ..., missing: _Optional[_Iterable[str]] = ...) -> None: ...

class RingRequest(_message.Message):
    __slots__ = ("keyspace",)
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    def __init__(self, keyspace: _Optional[str] = ...) -> None: ...

class RingNode(_message.Message):
    __slots__ = ("id", "address", "weight", "vnodes", "share", "effective", "keys", "up", "state", "hints", "load_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VNODES_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    LOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    weight: float
    vnodes: int
    share: float
    effective: float
    keys: int
    up: bool
    state: str
    hints: int
    load_bytes: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., weight: _Optional[float] = ..., vnodes: _Optional[int] = ..., share: _Optional[float] = ..., effective: _Optional[float] = ..., keys: _Optional[int] = ..., up: _Optional[bool] = ..., state: _Optional[str] = ..., hints: _Optional[int] = ..., load_bytes: _Optional[int] = ...) -> None: ...

class KeyShard(_message.Message):
    __slots__ = ("start", "end", "replicas")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    start: bytes
    end: bytes
    replicas: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, start: _Optional[bytes] = ..., end: _Optional[bytes] = ..., replicas: _Optional[_Iterable[str]] = ...) -> None: ...

class KeyspaceInfo(_message.Message):
    __slots__ = ("name", "n", "r", "w", "consistency", "sharding", "shards")
    NAME_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    SHARDING_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    n: int
    r: int
    w: int
    consistency: str
    sharding: str
    shards: _containers.RepeatedCompositeFieldContainer[KeyShard]
    def __init__(self, name: _Optional[str] = ..., n: _Optional[int] = ..., r: _Optional[int] = ..., w: _Optional[int] = ..., consistency: _Optional[str] = ..., sharding: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[KeyShard, _Mapping]]] = ...) -> None: ...

class RingResponse(_message.Message):
    __slots__ = ("epoch", "vnodes", "nodes", "keyspaces", "answered_by", "moving", "document")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VNODES_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    KEYSPACES_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    MOVING_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    vnodes: int
    nodes: _containers.RepeatedCompositeFieldContainer[RingNode]
    keyspaces: _containers.RepeatedCompositeFieldContainer[KeyspaceInfo]
    answered_by: str
    moving: bool
    document: str
    def __init__(self, epoch: _Optional[int] = ..., vnodes: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[RingNode, _Mapping]]] = ..., keyspaces: _Optional[_Iterable[_Union[KeyspaceInfo, _Mapping]]] = ..., answered_by: _Optional[str] = ..., moving: _Optional[bool] = ..., document: _Optional[str] = ...) -> None: ...

class KVStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStats(_message.Message):
    __slots__ = ("node", "epoch", "keys", "hints", "load_bytes")
    class KeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    LOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    node: str
    epoch: int
    keys: _containers.ScalarMap[str, int]
    hints: int
    load_bytes: int
    def __init__(self, node: _Optional[str] = ..., epoch: _Optional[int] = ..., keys: _Optional[_Mapping[str, int]] = ..., hints: _Optional[int] = ..., load_bytes: _Optional[int] = ...) -> None: ...

class CreateKeyspaceRequest(_message.Message):
    __slots__ = ("name", "n", "r", "w", "consistency", "sharding", "splits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    SHARDING_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    n: int
    r: int
    w: int
    consistency: str
    sharding: str
    splits: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, name: _Optional[str] = ..., n: _Optional[int] = ..., r: _Optional[int] = ..., w: _Optional[int] = ..., consistency: _Optional[str] = ..., sharding: _Optional[str] = ..., splits: _Optional[_Iterable[bytes]] = ...) -> None: ...

class NodeChange(_message.Message):
    __slots__ = ("id", "address", "weight", "peer")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    weight: float
    peer: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., weight: _Optional[float] = ..., peer: _Optional[str] = ...) -> None: ...

class RebalanceRequest(_message.Message):
    __slots__ = ("add", "remove", "weights", "dry_run")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    add: _containers.RepeatedCompositeFieldContainer[NodeChange]
    remove: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.ScalarMap[str, float]
    dry_run: bool
    def __init__(self, add: _Optional[_Iterable[_Union[NodeChange, _Mapping]]] = ..., remove: _Optional[_Iterable[str]] = ..., weights: _Optional[_Mapping[str, float]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RangeMoveInfo(_message.Message):
    __slots__ = ("keyspace", "range", "before", "after", "fraction")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    range: str
    before: _containers.RepeatedScalarFieldContainer[str]
    after: _containers.RepeatedScalarFieldContainer[str]
    fraction: float
    def __init__(self, keyspace: _Optional[str] = ..., range: _Optional[str] = ..., before: _Optional[_Iterable[str]] = ..., after: _Optional[_Iterable[str]] = ..., fraction: _Optional[float] = ...) -> None: ...

class RebalanceProgress(_message.Message):
    __slots__ = ("epoch", "phase", "ranges_total", "ranges_done", "keys_moved", "moves", "message", "node")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    RANGES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RANGES_DONE_FIELD_NUMBER: _ClassVar[int]
    KEYS_MOVED_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    phase: str
    ranges_total: int
    ranges_done: int
    keys_moved: int
    moves: _containers.RepeatedCompositeFieldContainer[RangeMoveInfo]
    message: str
    node: str
    def __init__(self, epoch: _Optional[int] = ..., phase: _Optional[str] = ..., ranges_total: _Optional[int] = ..., ranges_done: _Optional[int] = ..., keys_moved: _Optional[int] = ..., moves: _Optional[_Iterable[_Union[RangeMoveInfo, _Mapping]]] = ..., message: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class KVPingRequest(_message.Message):
    __slots__ = ("epoch",)
    FROM_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ..., **kwargs) -> None: ...

class KVPingResponse(_message.Message):
    __slots__ = ("node", "epoch")
    NODE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    node: str
    epoch: int
    def __init__(self, node: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class ReplicaApplyRequest(_message.Message):
    __slots__ = ("keyspace", "entries", "hint_for", "epoch")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HINT_FOR_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    entries: _containers.RepeatedCompositeFieldContainer[KVEntry]
    hint_for: str
    epoch: int
    def __init__(self, keyspace: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[KVEntry, _Mapping]]] = ..., hint_for: _Optional[str] = ..., epoch: _Optional[int] = ..., **kwargs) -> None: ...

class ReplicaApplyResponse(_message.Message):
    __slots__ = ("epoch",)
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class ReplicaReadRequest(_message.Message):
    __slots__ = ("keyspace", "keys", "epoch")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    epoch: int
    def __init__(self, keyspace: _Optional[str] = ..., keys: _Optional[_Iterable[bytes]] = ..., epoch: _Optional[int] = ...) -> None: ...

class ReplicaReadResponse(_message.Message):
    __slots__ = ("entries", "epoch")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KVEntry]
    epoch: int
    def __init__(self, entries: _Optional[_Iterable[_Union[KVEntry, _Mapping]]] = ..., epoch: _Optional[int] = ...) -> None: ...

class ReplicaScanResponse(_message.Message):
    __slots__ = ("entries", "truncated")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KVEntry]
    truncated: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[KVEntry, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class KVSpan(_message.Message):
    __slots__ = ("start", "end", "by_key", "key_start", "key_end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    BY_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_START_FIELD_NUMBER: _ClassVar[int]
    KEY_END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    by_key: bool
    key_start: bytes
    key_end: bytes
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., by_key: _Optional[bool] = ..., key_start: _Optional[bytes] = ..., key_end: _Optional[bytes] = ...) -> None: ...

class SpansRequest(_message.Message):
    __slots__ = ("keyspace", "spans", "depth")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    spans: _containers.RepeatedCompositeFieldContainer[KVSpan]
    depth: int
    def __init__(self, keyspace: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[KVSpan, _Mapping]]] = ..., depth: _Optional[int] = ...) -> None: ...

class MerkleTreesResponse(_message.Message):
    __slots__ = ("trees",)
    TREES_FIELD_NUMBER: _ClassVar[int]
    trees: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, trees: _Optional[_Iterable[bytes]] = ...) -> None: ...

class KeyHash(_message.Message):
    __slots__ = ("key", "vhash")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VHASH_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    vhash: bytes
    def __init__(self, key: _Optional[bytes] = ..., vhash: _Optional[bytes] = ...) -> None: ...

class RangeHashesResponse(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedCompositeFieldContainer[KeyHash]
    def __init__(self, hashes: _Optional[_Iterable[_Union[KeyHash, _Mapping]]] = ...) -> None: ...

class RangePageRequest(_message.Message):
    __slots__ = ("keyspace", "spans", "span", "after")
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    keyspace: str
    spans: _containers.RepeatedCompositeFieldContainer[KVSpan]
    span: int
    after: bytes
    def __init__(self, keyspace: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[KVSpan, _Mapping]]] = ..., span: _Optional[int] = ..., after: _Optional[bytes] = ...) -> None: ...

class RangePage(_message.Message):
    __slots__ = ("entries", "done", "span", "after")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KVEntry]
    done: bool
    span: int
    after: bytes
    def __init__(self, entries: _Optional[_Iterable[_Union[KVEntry, _Mapping]]] = ..., done: _Optional[bool] = ..., span: _Optional[int] = ..., after: _Optional[bytes] = ...) -> None: ...

class PullRangesRequest(_message.Message):
    __slots__ = ("epoch", "start")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    start: bool
    def __init__(self, epoch: _Optional[int] = ..., start: _Optional[bool] = ...) -> None: ...

class PullRangesStatus(_message.Message):
    __slots__ = ("progress", "finished", "error_tag", "error")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_TAG_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    progress: RebalanceProgress
    finished: bool
    error_tag: str
    error: str
    def __init__(self, progress: _Optional[_Union[RebalanceProgress, _Mapping]] = ..., finished: _Optional[bool] = ..., error_tag: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...
