"""Watches: which session wants to hear about which path, and the events a Txn's changes fire.

Four tables, path -> sessions, as ZooKeeper's WatchManager keeps them on the server:
  data        one-time; set by get_data and by exists (ZooKeeper's server keeps exist watches in
              its data table too: they fire alike and WATCHER_DATA removes both)
  child       one-time; set by get_children
  persistent  add_watch PERSISTENT: data events of the path and NodeChildrenChanged of its children
  recursive   add_watch PERSISTENT_RECURSIVE: data events of the path and every descendant,
              never NodeChildrenChanged
Watches are in memory only: they belong to a session's current connection and are dropped when
it detaches (the client re-registers them with SetWatches on resume).

    >>> wm = WatchManager()
    >>> wm.add(WatchKind.DATA, 5, "/a")
    >>> [(sid, e.type, e.path) for sid, e in wm.events([Change(ChangeKind.DATA_CHANGED, "/a")], 9)]
    [(5, 3, '/a')]
    >>> wm.events([Change(ChangeKind.DATA_CHANGED, "/a")], 10)     # one-time: gone
    []
"""
from __future__ import annotations

from enum import Enum
from typing import Iterable

from dcli.v1 import coord_pb2 as pb
from dcli.wire.errors import BadArgumentsError
from dcli.wire.paths import parent_of

from dcli_server.coord.tree import Change, ChangeKind


class WatchKind(Enum):
    DATA = "data"
    CHILD = "child"
    PERSISTENT = "persistent"
    RECURSIVE = "recursive"


# What each WatcherType of remove_watches removes, and how each kind is reported back.
_REMOVES = {
    pb.WATCHER_DATA: (WatchKind.DATA,),
    pb.WATCHER_CHILDREN: (WatchKind.CHILD,),
    pb.WATCHER_PERSISTENT: (WatchKind.PERSISTENT,),
    pb.WATCHER_PERSISTENT_RECURSIVE: (WatchKind.RECURSIVE,),
    pb.WATCHER_ANY: (WatchKind.DATA, WatchKind.CHILD, WatchKind.PERSISTENT, WatchKind.RECURSIVE),
}
_REPORTED_AS = {
    WatchKind.DATA: pb.WATCHER_DATA,
    WatchKind.CHILD: pb.WATCHER_CHILDREN,
    WatchKind.PERSISTENT: pb.WATCHER_PERSISTENT,
    WatchKind.RECURSIVE: pb.WATCHER_PERSISTENT_RECURSIVE,
}


class WatchManager:
    def __init__(self, max_per_session: int = 0) -> None:
        self.max_per_session = max_per_session      # 0: no limit
        self._tables: dict[WatchKind, dict[str, set[int]]] = {kind: {} for kind in WatchKind}
        # the same tables by name, for the path every write takes (an Enum key hashes slowly)
        self._data, self._child, self._persistent, self._recursive = (self._tables[k] for k in (
            WatchKind.DATA, WatchKind.CHILD, WatchKind.PERSISTENT, WatchKind.RECURSIVE))
        self._by_session: dict[int, set[tuple[WatchKind, str]]] = {}

    # ---- registration ----

    def add(self, kind: WatchKind, session_id: int, path: str) -> None:
        """Register a watch; BadArgumentsError when the session already holds its maximum."""
        mine = self._by_session.setdefault(session_id, set())
        if self.max_per_session and len(mine) >= self.max_per_session and (kind, path) not in mine:
            raise BadArgumentsError(path, f"too many watches for session 0x{session_id:x}: the limit is "
                                          f"{self.max_per_session} (--max-watches-per-session)")
        self._tables[kind].setdefault(path, set()).add(session_id)
        mine.add((kind, path))

    def has(self, kind: WatchKind, session_id: int, path: str) -> bool:
        return session_id in self._tables[kind].get(path, ())

    def all_by_session(self) -> dict[int, set[tuple[WatchKind, str]]]:
        """Every session's watches, copied (the four-letter words wchs, wchc, wchp)."""
        return {sid: set(held) for sid, held in self._by_session.items()}

    def of_session(self, session_id: int) -> set[tuple[WatchKind, str]]:
        return set(self._by_session.get(session_id, ()))

    def holds(self, session_id: int, path: str, watcher_type: int) -> bool:
        """Whether the session has a watch of `path` of that WatcherType (ZooKeeper's checkWatches)."""
        return any(self.has(kind, session_id, path) for kind in _REMOVES.get(watcher_type, ()))

    def remove(self, session_id: int, path: str, watcher_type: int) -> list[int]:
        """Remove the session's watches of `path` selected by a WatcherType; returns the kinds
        (as WatcherType) that were registered and are now gone, in WatcherType order."""
        removed = []
        for kind in _REMOVES.get(watcher_type, ()):
            if self._discard(kind, session_id, path):
                removed.append(_REPORTED_AS[kind])
        return removed

    def drop_session(self, session_id: int) -> None:
        for kind, path in self._by_session.pop(session_id, ()):
            watchers = self._tables[kind].get(path)
            if watchers is not None:
                watchers.discard(session_id)
                if not watchers:
                    del self._tables[kind][path]

    def _discard(self, kind: WatchKind, session_id: int, path: str) -> bool:
        watchers = self._tables[kind].get(path)
        if not watchers or session_id not in watchers:
            return False
        watchers.discard(session_id)
        if not watchers:
            del self._tables[kind][path]
        mine = self._by_session[session_id]
        mine.discard((kind, path))
        if not mine:
            del self._by_session[session_id]
        return True

    def _pop(self, kind: WatchKind, path: str) -> set[int]:
        """Fire one-time watches: take them out of the table."""
        watchers = self._tables[kind].pop(path, set())
        for session_id in watchers:
            mine = self._by_session[session_id]
            mine.discard((kind, path))
            if not mine:
                del self._by_session[session_id]
        return watchers

    def _recursive_on(self, path: str) -> set[int]:
        """Sessions with a recursive watch on `path` or an ancestor (a new set: callers add to it)."""
        found: set[int] = set()
        table = self._recursive
        if table:
            while True:
                hit = table.get(path)
                if hit:
                    found |= hit
                if path == "/":
                    break
                path = parent_of(path)
        return found

    # ---- firing ----

    def events(self, changes: Iterable[Change], zxid: int) -> list[tuple[int, pb.WatchEvent]]:
        """The events one Txn's changes fire, in change order, at most one per
        (session, path, type) for the whole Txn; one-time watches that fire are removed."""
        out: list[tuple[int, pb.WatchEvent]] = []
        seen: set[tuple[int, str, int]] = set()

        def emit(sessions: set[int], event_type: int, path: str) -> None:
            for session_id in sorted(sessions):
                key = (session_id, path, event_type)
                if key not in seen:
                    seen.add(key)
                    out.append((session_id, pb.WatchEvent(type=event_type, path=path, zxid=zxid)))

        persistent, data, child = self._persistent, self._data, self._child
        for kind, path in changes:
            # most changes fire nothing: look up before building sets
            on_node = self._recursive_on(path)
            if path in persistent:
                on_node |= persistent[path]
            if path in data:
                on_node |= self._pop(WatchKind.DATA, path)
            if kind is ChangeKind.DELETED and path in child:
                on_node |= self._pop(WatchKind.CHILD, path)
            if on_node:
                emit(on_node, pb.NODE_CREATED if kind is ChangeKind.CREATED else
                     pb.NODE_DELETED if kind is ChangeKind.DELETED else pb.NODE_DATA_CHANGED, path)
            if kind is ChangeKind.DATA_CHANGED:
                continue
            parent = parent_of(path)
            if parent in child or parent in persistent:
                emit(self._pop(WatchKind.CHILD, parent) | persistent.get(parent, set()),
                     pb.NODE_CHILDREN_CHANGED, parent)
        return out
