"""Every error of dcli, declared once.

Each class carries the wire code it travels as (`ErrorCode` in coord.proto), the gRPC status a
stream-level failure uses, the CLI exit code (DESIGN.md: 1 error, 2 usage, 3 not found,
4 conflict, 5 unavailable, 6 permission), the message in zkCli's words, whether a client may
retry it (`retriable`) and whether it should ask for metadata first (`invalid_metadata`: the
leader moved). Retry logic asks the error, never a list of codes. The server raises these from
domain code; the client rebuilds them with `from_proto`.

    >>> err = NoNodeError("/missing")
    >>> str(err), err.exit_code
    ('Node does not exist: /missing', 3)
"""
from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class Code(IntEnum):
    """The wire's ErrorCode (coord.proto), kept here so that importing the errors does not load
    protobuf (start-up time of every command); a test checks both agree."""

    OK = 0
    SYSTEM_ERROR = 1
    RUNTIME_INCONSISTENCY = 2
    CONNECTION_LOSS = 3
    MARSHALLING_ERROR = 4
    UNIMPLEMENTED = 5
    OPERATION_TIMEOUT = 6
    BAD_ARGUMENTS = 7
    NO_NODE = 8
    NO_AUTH = 9
    BAD_VERSION = 10
    NO_CHILDREN_FOR_EPHEMERALS = 11
    NODE_EXISTS = 12
    NOT_EMPTY = 13
    SESSION_EXPIRED = 14
    INVALID_ACL = 15
    SESSION_MOVED = 16
    NO_WATCHER = 17
    INVALID_PATH = 18
    DATA_TOO_LARGE = 19
    REQUEST_TOO_LARGE = 20
    NOT_READ_ONLY = 21
    TOO_FAR_BEHIND = 22


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 5
    PERMISSION = 6
    INTERRUPTED = 130


# code -> class, filled as the classes below are declared (DcliError.__init_subclass__)
_BY_CODE: dict[int, type[DcliError]] = {}
_BY_KAFKA_CODE: dict[int, type[BrokerError]] = {}
_BY_KV_CODE: dict[int, type[KVError]] = {}
_BY_NAME: dict[str, type[DcliError]] = {}      # for the errors that have no code of their own


class DcliError(Exception):
    """Base of every error a user can see; `str()` is the one line the CLI prints."""

    code: ClassVar[int] = Code.SYSTEM_ERROR
    kafka_code: ClassVar[int | None] = None      # Kafka's error code, for the broker's errors
    kv_code: ClassVar[int | None] = None         # the key-value store's code, for its errors
    grpc_status: ClassVar[str] = "INTERNAL"      # a grpc.StatusCode name; wire imports no grpc
    exit_code: ClassVar[int] = ExitCode.ERROR
    retriable: ClassVar[bool] = False
    # what the client knows of the cluster (a partition's leader) may be wrong: ask again before
    # a retry (Kafka's InvalidMetadataException, aiokafka's `invalid_metadata`)
    invalid_metadata: ClassVar[bool] = False     # the leader may have moved: ask for metadata again
    coordinator_moved: ClassVar[bool] = False    # ask which broker coordinates the group again
    template: ClassVar[str] = "KeeperErrorCode = SystemError for {path}"

    def __init_subclass__(cls, **kwargs) -> None:
        """Each class is indexed by the codes it declares itself; the first declared wins."""
        super().__init_subclass__(**kwargs)
        _BY_NAME.setdefault(cls.__name__, cls)
        for attr, table in (("code", _BY_CODE), ("kafka_code", _BY_KAFKA_CODE), ("kv_code", _BY_KV_CODE)):
            number = cls.__dict__.get(attr)
            if number is not None and number > 0:
                table.setdefault(int(number), cls)

    def __init__(self, path: str = "", message: str | None = None):
        self.path = path
        self.message = message if message is not None else self._format(path)
        super().__init__(self.message)

    def _format(self, path: str) -> str:
        text = self.template.format(path=path)
        # zkCli's "KeeperErrorCode = X for /p" has no " for ..." part when there is no path
        return text[: -len(" for ")] if text.endswith(" for ") else text

    def to_proto(self):
        from dcli.v1 import coord_pb2 as pb

        return pb.Error(code=self.code, path=self.path, message=self.message)


def from_proto(err) -> DcliError:
    """The exception for an `Error` that came over the wire."""
    return for_code(err.code)(err.path, err.message or None)


def for_code(code: int) -> type[DcliError]:
    """The class of coord.proto's ErrorCode `code` (DcliError for one not known here)."""
    return _BY_CODE.get(code, DcliError)


def for_kafka_code(code: int) -> type[BrokerError] | None:
    """The class of Kafka error `code`, or None for a code not known here."""
    return _BY_KAFKA_CODE.get(code) if code > 0 else None


def kafka_error(code: int, message: str = "") -> BrokerError:
    """The exception for Kafka error `code` and its message (a BrokerError carrying the code
    for one not known here)."""
    cls = for_kafka_code(code)
    if cls is not None:
        return cls("", message or None)
    err = BrokerError("", message or f"Kafka error code {code}")
    err.kafka_code = code
    return err


def for_kv_code(code: int) -> type[KVError]:
    return _BY_KV_CODE.get(code, KVError)


class SystemError_(DcliError):
    code = Code.SYSTEM_ERROR


class RuntimeInconsistencyError(DcliError):
    code = Code.RUNTIME_INCONSISTENCY
    template = "KeeperErrorCode = RuntimeInconsistency for {path}"


class ConnectionLossError(DcliError):
    code = Code.CONNECTION_LOSS
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    template = "KeeperErrorCode = ConnectionLoss for {path}"


class MarshallingError(DcliError):
    code = Code.MARSHALLING_ERROR
    grpc_status = "INVALID_ARGUMENT"
    template = "KeeperErrorCode = MarshallingError for {path}"


class UnimplementedError(DcliError):
    code = Code.UNIMPLEMENTED
    grpc_status = "UNIMPLEMENTED"
    template = "KeeperErrorCode = Unimplemented for {path}"


class OperationTimeoutError(DcliError):
    code = Code.OPERATION_TIMEOUT
    grpc_status = "DEADLINE_EXCEEDED"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    template = "KeeperErrorCode = OperationTimeout for {path}"


class BadArgumentsError(DcliError):
    code = Code.BAD_ARGUMENTS
    grpc_status = "INVALID_ARGUMENT"
    exit_code = ExitCode.USAGE
    template = "Arguments are not valid : {path}"


class NoNodeError(DcliError):
    code = Code.NO_NODE
    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    template = "Node does not exist: {path}"


class NoAuthError(DcliError):
    code = Code.NO_AUTH
    grpc_status = "PERMISSION_DENIED"
    exit_code = ExitCode.PERMISSION
    template = "Insufficient permission : {path}"


class BadVersionError(DcliError):
    code = Code.BAD_VERSION
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    template = "version No is not valid : {path}"


class NoChildrenForEphemeralsError(DcliError):
    code = Code.NO_CHILDREN_FOR_EPHEMERALS
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    template = "Ephemerals cannot have children: {path}"


class NodeExistsError(DcliError):
    code = Code.NODE_EXISTS
    grpc_status = "ALREADY_EXISTS"
    exit_code = ExitCode.CONFLICT
    template = "Node already exists: {path}"


class NotEmptyError(DcliError):
    code = Code.NOT_EMPTY
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    template = "Node not empty: {path}"


class SessionExpiredError(DcliError):
    code = Code.SESSION_EXPIRED
    grpc_status = "UNAUTHENTICATED"
    exit_code = ExitCode.UNAVAILABLE
    template = "KeeperErrorCode = Session expired for {path}"


class InvalidACLError(DcliError):
    code = Code.INVALID_ACL
    grpc_status = "INVALID_ARGUMENT"
    exit_code = ExitCode.USAGE
    template = "KeeperErrorCode = InvalidACL for {path}"


class SessionMovedError(DcliError):
    code = Code.SESSION_MOVED
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    template = "KeeperErrorCode = Session moved for {path}"


class NoWatcherError(DcliError):
    code = Code.NO_WATCHER
    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    template = "KeeperErrorCode = No such watcher for {path}"


class InvalidPathError(DcliError):
    """A path breaking ZooKeeper's rules; the message names the rule (see `dcli.wire.paths`)."""

    code = Code.INVALID_PATH
    grpc_status = "INVALID_ARGUMENT"
    exit_code = ExitCode.USAGE
    template = "Invalid path string \"{path}\""


class DataTooLargeError(DcliError):
    code = Code.DATA_TOO_LARGE
    grpc_status = "INVALID_ARGUMENT"
    exit_code = ExitCode.USAGE
    template = "Data too large for {path}"


class RequestTooLargeError(DcliError):
    code = Code.REQUEST_TOO_LARGE
    grpc_status = "RESOURCE_EXHAUSTED"
    exit_code = ExitCode.USAGE
    template = "Request too large for {path}"


class TooFarBehindError(DcliError):
    """The server has not yet seen a zxid the client has: it would show the tree going back."""

    code = Code.TOO_FAR_BEHIND
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    template = "Server is behind the client's last seen zxid"


class UnavailableError(DcliError):
    """No server could be reached (client side only; never on the wire)."""

    code = Code.CONNECTION_LOSS
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    template = "Cannot connect to {path}"


class UsageError(DcliError):
    """A command line that cannot be run as typed (client side only)."""

    exit_code = ExitCode.USAGE
    template = "{path}"


class NotConnectedError(DcliError):
    """A request on a closed client (zkCli's `Not connected`)."""

    code = Code.CONNECTION_LOSS
    exit_code = ExitCode.UNAVAILABLE
    template = "Not connected"


# -- the local cluster manager (`dcli cluster`; client side only, never on the wire) ---------------


class NoClusterError(DcliError):
    """No cluster has been made in the directory (no cluster.json)."""

    exit_code = ExitCode.NOT_FOUND
    template = "no cluster in {path}: start one with `dcli cluster up`"


class UnknownNodeError(DcliError):
    exit_code = ExitCode.NOT_FOUND
    template = "{path}"


class ClusterStateError(DcliError):
    """The cluster or a node is not in a state the command can act on: already running, not
    running, or made with another size; a membership change a node refuses (already a member,
    not a member, the last one)."""

    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    template = "{path}"


class NodeStartError(DcliError):
    """A node process could not be started: its port is taken, or it exited before serving."""

    exit_code = ExitCode.UNAVAILABLE
    template = "{path}"


# -- users and authentication (the Auth service; etcd's words, without "etcdserver: ") -------------
# Client side they come back by name (error_tag's `name:Class`); exit code 6 for every refusal.


class AuthenticationFailedError(DcliError):
    """Wrong user name or password (which of the two is not said)."""

    grpc_status = "UNAUTHENTICATED"
    exit_code = ExitCode.PERMISSION
    template = "authentication failed, invalid user ID or password"


class InvalidAuthTokenError(DcliError):
    """No token, a token that is not ours, expired, or of a user deleted or given a new password
    since: authenticate again (clients do it on their own when they hold a password)."""

    grpc_status = "UNAUTHENTICATED"
    exit_code = ExitCode.PERMISSION
    template = "invalid auth token"


class TooManyAuthFailuresError(DcliError):
    """Too many wrong passwords from one address or for one user: refused for a while."""

    grpc_status = "UNAUTHENTICATED"
    exit_code = ExitCode.PERMISSION
    template = "too many failed authentication attempts"


class PermissionDeniedError(DcliError):
    """An authenticated user without the right: administrative calls need root or `admin`."""

    grpc_status = "PERMISSION_DENIED"
    exit_code = ExitCode.PERMISSION
    template = "permission denied"


class UserExistsError(DcliError):
    grpc_status = "ALREADY_EXISTS"
    exit_code = ExitCode.CONFLICT
    template = "user name already exists"


class UserNotFoundError(DcliError):
    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    template = "user name not found"


class AuthStateError(DcliError):
    """An auth change that cannot be made now: enabling without a root user, deleting root
    or taking its admin role while auth is on."""

    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    template = "{path}"


# -- the message broker ----------------------------------------------------------------------
# The wire's ErrorCode has no broker codes yet, so these travel as BAD_ARGUMENTS and are not
# registered for `from_proto` (that would shadow BadArgumentsError). Each carries Kafka's own
# error code in `kafka_code` (clients `protocol/Errors.java`), which a broker wire contract can
# use; the default message is Kafka's default for that code, and raisers pass Kafka's specific
# wording as `message`.


class BrokerError(DcliError):
    """Base of the broker's errors; `kafka_code` is the error code Kafka gives it."""

    code = Code.BAD_ARGUMENTS
    grpc_status = "INVALID_ARGUMENT"
    kafka_code: ClassVar[int] = -1  # UNKNOWN_SERVER_ERROR
    template = "The server experienced an unexpected error when processing the request."


class OffsetOutOfRangeError(BrokerError):
    grpc_status = "OUT_OF_RANGE"
    kafka_code = 1
    template = "The requested offset is not within the range of offsets maintained by the server."


class CorruptRecordError(BrokerError):
    """A record batch whose bytes do not hold together (CRC, lengths, varints)."""

    kafka_code = 2
    retriable = True  # Kafka's CorruptRecordException is retriable: the bytes may be fine next time
    template = (
        "This message has failed its CRC checksum, exceeds the valid size, has a null key for a "
        "compacted topic, or is otherwise corrupt."
    )


class RecordTooLargeError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 10
    template = "The request included a message larger than the max message size the server will accept."


class InvalidTopicError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 17
    template = "The request attempted to perform an operation on an invalid topic."


class RecordBatchTooLargeError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 18
    template = "The request included message batch larger than the configured segment size on the server."


class InvalidConfigurationError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 40
    template = "Configuration is invalid."


class OutOfOrderSequenceError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    kafka_code = 45
    template = "The broker received an out of order sequence number."


class InvalidProducerEpochError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    kafka_code = 47
    template = "Producer attempted to produce with an old epoch."


class UnsupportedCompressionTypeError(BrokerError):
    kafka_code = 76
    template = "The requesting client does not support the compression type of given partition."


class PreferredLeaderNotAvailableError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    kafka_code = 80
    template = "The preferred leader was not available."


class EligibleLeadersNotAvailableError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    kafka_code = 83
    template = "Eligible topic partition leaders are not available."


class ElectionNotNeededError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    kafka_code = 84
    template = "Leader election not needed for topic partition."


class InvalidRecordError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 87
    template = "This record has failed the validation on broker and hence will be rejected."


# -- topics, produce and fetch (Kafka's codes and messages) --------------------------------------


class UnknownTopicOrPartitionError(BrokerError):
    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    retriable = True
    invalid_metadata = True
    kafka_code = 3
    template = "This server does not host this topic-partition."


class LeaderNotAvailableError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    invalid_metadata = True
    kafka_code = 5
    template = ("There is no leader for this topic-partition as we are in the middle of a "
                "leadership election.")


class NotLeaderOrFollowerError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    invalid_metadata = True
    kafka_code = 6
    template = ("For requests intended only for the leader, this error indicates that the broker "
                "is not the current leader. For requests intended for any replica, this error "
                "indicates that the broker is not a replica of the topic partition.")


class RequestTimedOutError(BrokerError):
    grpc_status = "DEADLINE_EXCEEDED"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    kafka_code = 7
    template = "The request timed out."


class NetworkError(BrokerError):
    """A request whose answer never came because the connection broke: the broker may have
    applied it (Kafka's NetworkException, an InvalidMetadataException: the broker may be gone)."""

    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    invalid_metadata = True
    kafka_code = 13
    template = "The server disconnected before a response was received."


class BrokerUnreachableError(NetworkError):
    """No connection to the broker could be made, so the request never left: sending it again
    cannot apply it twice. Kafka's producer counts no attempt for it (it sends nothing to a
    broker it is not connected to), so `retries` does not run out while a dead leader is still
    named by the metadata; `delivery.timeout.ms` bounds the wait."""

    template = "Connection to the broker could not be established. Broker may not be available."


class NotEnoughReplicasError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    kafka_code = 19
    template = "Messages are rejected since there are fewer in-sync replicas than required."


class NotEnoughReplicasAfterAppendError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    kafka_code = 20
    template = "Messages are written to the log, but to fewer in-sync replicas than required."


class TopicExistsError(BrokerError):
    grpc_status = "ALREADY_EXISTS"
    exit_code = ExitCode.CONFLICT
    kafka_code = 36
    template = "Topic with this name already exists."


class InvalidPartitionsError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 37
    template = "Number of partitions is below 1."


class InvalidReplicationFactorError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 38
    template = "Replication factor is below 1 or larger than the number of available brokers."


class NotControllerError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    kafka_code = 41
    template = "This is not the correct controller for this cluster."


class InvalidReplicaAssignmentError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 39
    template = "Replica assignment is invalid."


class InvalidRequestError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 42
    template = ("This most likely occurs because of a request being malformed by the client "
                "library or the message was sent to an incompatible broker. See the broker logs "
                "for more details.")


class InvalidProducerIdMappingError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    kafka_code = 49
    template = ("The producer attempted to use a producer id which is not currently assigned to "
                "its transactional id.")


class KafkaStorageError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    invalid_metadata = True
    kafka_code = 56
    template = "Disk error when trying to access log file on the disk."


class FencedLeaderEpochError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    retriable = True
    invalid_metadata = True
    kafka_code = 74
    template = "The leader epoch in the request is older than the epoch on the broker."


class UnknownLeaderEpochError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    retriable = True
    invalid_metadata = True
    kafka_code = 75
    template = "The leader epoch in the request is newer than the epoch on the broker."


# -- consumer groups (clients `protocol/Errors.java`) ---------------------------------------------


class OffsetMetadataTooLargeError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 12
    template = "The metadata field of the offset request was too large."


class CoordinatorLoadInProgressError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    coordinator_moved = True
    kafka_code = 14
    template = "The coordinator is loading and hence can't process requests."


class CoordinatorNotAvailableError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    coordinator_moved = True
    kafka_code = 15
    template = "The coordinator is not available."


class NotCoordinatorError(BrokerError):
    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    coordinator_moved = True
    kafka_code = 16
    template = "This is not the correct coordinator."


class IllegalGenerationError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    kafka_code = 22
    template = "Specified group generation id is not valid."


class InconsistentGroupProtocolError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    kafka_code = 23
    template = ("The group member's supported protocols are incompatible with those of existing "
                "members or first group member tried to join with empty protocol type or empty "
                "protocol list.")


class InvalidGroupIdError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 24
    template = "The configured groupId is invalid."


class UnknownMemberIdError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    kafka_code = 25
    template = "The coordinator is not aware of this member."


class InvalidSessionTimeoutError(BrokerError):
    exit_code = ExitCode.USAGE
    kafka_code = 26
    template = ("The session timeout is not within the range allowed by the broker (as configured "
                "by group.min.session.timeout.ms and group.max.session.timeout.ms).")


class RebalanceInProgressError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    retriable = True  # Kafka's RebalanceInProgressException is retriable: join again
    kafka_code = 27
    template = "The group is rebalancing, so a rejoin is needed."


class NonEmptyGroupError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    exit_code = ExitCode.CONFLICT
    kafka_code = 68
    template = "The group is not empty."


class GroupIdNotFoundError(BrokerError):
    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    kafka_code = 69
    template = "The group id does not exist."


class MemberIdRequiredError(BrokerError):
    grpc_status = "FAILED_PRECONDITION"
    kafka_code = 79
    template = ("The group member needs to have a valid member id before actually entering a "
                "consumer group.")


# -- the key-value store ----------------------------------------------------------------------
# Bad keys, values and keyspace names are BadArgumentsError / DataTooLargeError (dcli.wire.kv_keys).
# The store's own errors travel as a gRPC status with trailing metadata `dcli-error: kv:<kv_code>`
# (not registered for `from_proto`, like the broker's); `kv_error_for` maps the code back.


class KVError(DcliError):
    """Base of the key-value store's errors."""

    code = Code.BAD_ARGUMENTS
    grpc_status = "FAILED_PRECONDITION"
    kv_code: ClassVar[int] = 0
    template = "Key-value store error: {path}"


class QuorumNotReachedError(KVError):
    """Fewer than R (or W) replicas answered in time. A write may still have reached some."""

    grpc_status = "UNAVAILABLE"
    exit_code = ExitCode.UNAVAILABLE
    retriable = True
    kv_code = 1
    template = "Quorum not reached for {path}"


class InvalidQuorumError(KVError):
    """R or W outside 1..N, or R + W <= N in a strict keyspace."""

    grpc_status = "INVALID_ARGUMENT"
    exit_code = ExitCode.USAGE
    kv_code = 2
    template = "Invalid quorum: {path}"


class KeyspaceNotFoundError(KVError):
    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    kv_code = 3
    template = "Keyspace does not exist: {path}"


class KeyspaceExistsError(KVError):
    grpc_status = "ALREADY_EXISTS"
    exit_code = ExitCode.CONFLICT
    kv_code = 4
    template = "Keyspace already exists: {path}"


class KeyNotFoundError(KVError):
    """A get of a key no replica holds (or only as a tombstone)."""

    grpc_status = "NOT_FOUND"
    exit_code = ExitCode.NOT_FOUND
    kv_code = 5
    template = "Key not found: {path}"


class MembershipError(KVError):
    """A ring change that cannot be made: an unknown node, a clash, a move already under way."""

    exit_code = ExitCode.CONFLICT
    kv_code = 6
    template = "Membership change refused: {path}"


def error_tag(e: DcliError) -> str:
    """What the `dcli-error` trailing metadata says about `e`: `kv:N`, `kafka:N`, `code:N`, or
    `name:Class` for an error no code stands for (a cluster's state, say)."""
    if e.kv_code is not None:
        return f"kv:{e.kv_code}"
    if e.kafka_code is not None and e.kafka_code > 0:
        return f"kafka:{e.kafka_code}"
    if for_code(e.code) is type(e):
        return f"code:{int(e.code)}"
    return f"name:{type(e).__name__}"


def from_tag(tag: str, message: str) -> DcliError:
    """The error a `dcli-error` tag and a status' details stand for."""
    kind, _, number = tag.partition(":")
    if kind == "name":
        return _BY_NAME.get(number, DcliError)("", message or None)
    try:
        n = int(number)
    except ValueError:
        return SystemError_("", message or None)
    if kind == "kv":
        cls: type[DcliError] = for_kv_code(n)
    elif kind == "kafka":
        cls = for_kafka_code(n) or BrokerError
    else:
        cls = for_code(n)
    return cls("", message or None)

