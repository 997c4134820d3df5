"""Values the client hands to applications: Stat, WatchedEvent, connection states."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from dcli.v1 import coord_pb2 as pb
from dcli.wire import errors


class ConnState(str, Enum):
    """Connection states reported to listeners (kazoo's names)."""

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"      # the stream broke; the session may still be alive
    LOST = "LOST"                # the session expired or was closed: ephemerals and watches are gone


class EventType(str, Enum):
    NONE = "None"
    NODE_CREATED = "NodeCreated"
    NODE_DELETED = "NodeDeleted"
    NODE_DATA_CHANGED = "NodeDataChanged"
    NODE_CHILDREN_CHANGED = "NodeChildrenChanged"
    DATA_WATCH_REMOVED = "DataWatchRemoved"
    CHILD_WATCH_REMOVED = "ChildWatchRemoved"
    PERSISTENT_WATCH_REMOVED = "PersistentWatchRemoved"


EVENT_TYPES = {
    pb.NONE: EventType.NONE,
    pb.NODE_CREATED: EventType.NODE_CREATED,
    pb.NODE_DELETED: EventType.NODE_DELETED,
    pb.NODE_DATA_CHANGED: EventType.NODE_DATA_CHANGED,
    pb.NODE_CHILDREN_CHANGED: EventType.NODE_CHILDREN_CHANGED,
    pb.DATA_WATCH_REMOVED: EventType.DATA_WATCH_REMOVED,
    pb.CHILD_WATCH_REMOVED: EventType.CHILD_WATCH_REMOVED,
    pb.PERSISTENT_WATCH_REMOVED: EventType.PERSISTENT_WATCH_REMOVED,
}


class KeeperState(str, Enum):
    """The `state:` of a WatchedEvent, as zkCli prints it."""

    SYNC_CONNECTED = "SyncConnected"
    DISCONNECTED = "Disconnected"
    EXPIRED = "Expired"
    CLOSED = "Closed"


@dataclass(frozen=True, slots=True)
class WatchedEvent:
    type: EventType
    state: KeeperState
    path: str | None
    zxid: int = -1

    def __str__(self) -> str:   # zkCli's line
        path = "null" if self.path is None else self.path     # Java's null, as zkCli prints it
        return f"WatchedEvent state:{self.state.value} type:{self.type.value} path:{path}"


PERMS = (("c", 4), ("d", 8), ("r", 1), ("w", 2), ("a", 16))      # zkCli's letters, in its order


@dataclass(frozen=True, slots=True)
class ACL:
    """One entry of a znode's ACL: permissions (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16)
    for an id of a scheme (world:anyone, digest:user:hash, ip:addr[/bits], auth:)."""

    perms: int
    scheme: str
    id: str

    @property
    def perm_letters(self) -> str:
        """zkCli's `cdrwa` form."""
        return "".join(letter for letter, bit in PERMS if self.perms & bit)

    @classmethod
    def parse(cls, text: str) -> list[ACL]:
        """zkCli's ACL syntax: `scheme:id:perms[,scheme:id:perms...]`, perms from `cdrwa`;
        UsageError in zkCli's words for a malformed entry."""
        out = []
        for entry in text.split(","):
            first, last = entry.find(":"), entry.rfind(":")
            if first == -1 or last == first:
                raise errors.UsageError("", f"{entry} does not have the form scheme:id:perm")
            perms = 0
            for letter in entry[last + 1:]:
                bit = dict(PERMS).get(letter.lower())
                if bit is None:
                    raise errors.UsageError("", f"Unknown perm type: {letter}")
                perms |= bit
            out.append(cls(perms, entry[:first], entry[first + 1:last]))
        return out


OPEN_ACL_UNSAFE = [ACL(31, "world", "anyone")]
READ_ACL_UNSAFE = [ACL(1, "world", "anyone")]


@dataclass(frozen=True, slots=True)
class Stat:
    """A znode's metadata with ZooKeeper's field names."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int

    @classmethod
    def from_proto(cls, s: pb.Stat) -> Stat:
        return cls(s.czxid, s.mzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion,
                   s.ephemeral_owner, s.data_length, s.num_children, s.pzxid)

    # kazoo's aliases
    @property
    def data_length(self) -> int:
        return self.dataLength

    @property
    def children_count(self) -> int:
        return self.numChildren

    @property
    def owner_session_id(self) -> int | None:
        return self.ephemeralOwner or None
