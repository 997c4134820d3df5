"""The client's side of watches: who is waiting for what, and whom an event wakes (ZKWatchManager)."""
from __future__ import annotations

from collections import defaultdict

from dcli.client.types import EventType
from dcli.wire.paths import parent_of


def _take(table: dict, path: str, into: list) -> None:
    for w in table.pop(path, ()):
        if w not in into:
            into.append(w)


class WatchRegistry:
    """Watchers by path and kind. Only the IO thread touches it (and close, after the IO thread)."""

    def __init__(self) -> None:
        self.data: dict[str, list] = defaultdict(list)
        self.exist: dict[str, list] = defaultdict(list)
        self.child: dict[str, list] = defaultdict(list)
        self.persistent: dict[str, list] = defaultdict(list)
        self.recursive: dict[str, list] = defaultdict(list)

    @staticmethod
    def add(table: dict, path: str, watcher) -> None:
        if watcher not in table[path]:
            table[path].append(watcher)

    def materialize(self, etype: EventType, path: str) -> list:
        """The watchers an event wakes; one-time watchers are removed as they fire."""
        out: list = []
        if etype in (EventType.NODE_CREATED, EventType.NODE_DATA_CHANGED):
            _take(self.data, path, out)
            _take(self.exist, path, out)
        elif etype is EventType.NODE_CHILDREN_CHANGED:
            _take(self.child, path, out)
        elif etype is EventType.NODE_DELETED:
            _take(self.data, path, out)
            _take(self.exist, path, out)
            _take(self.child, path, out)
        for w in self.persistent.get(path, ()):
            if w not in out:
                out.append(w)
        if etype is not EventType.NODE_CHILDREN_CHANGED and self.recursive:
            p = path
            while True:
                for w in self.recursive.get(p, ()):
                    if w not in out:
                        out.append(w)
                if p == "/":
                    break
                p = parent_of(p)
        return out

    def paths(self) -> dict[str, list[str]]:
        """What to re-register on a new stream (Connect's watch lists)."""
        return {k: [p for p, ws in getattr(self, k).items() if ws]
                for k in ("data", "exist", "child", "persistent", "recursive")}

    def remove(self, path: str, kinds: list[str]) -> list[tuple[object, EventType]]:
        """Drop the watchers of `kinds` on path; returns (watcher, removal event) pairs to notify."""
        events = {"data": EventType.DATA_WATCH_REMOVED, "exist": EventType.DATA_WATCH_REMOVED,
                  "child": EventType.CHILD_WATCH_REMOVED,
                  "persistent": EventType.PERSISTENT_WATCH_REMOVED,
                  "recursive": EventType.PERSISTENT_WATCH_REMOVED}
        out = []
        for kind in kinds:
            for w in getattr(self, kind).pop(path, ()):
                out.append((w, events[kind]))
        return out

    def discard(self, table: dict, path: str, watcher) -> bool:
        """Drop one watcher; True when none is left on path in that table."""
        ws = table.get(path)
        if ws and watcher in ws:
            ws.remove(watcher)
        if ws is not None and not ws:
            del table[path]
        return path not in table

    def clear(self) -> list:
        everyone: list = []
        for k in ("data", "exist", "child", "persistent", "recursive"):
            for ws in getattr(self, k).values():
                for w in ws:
                    if w not in everyone:
                        everyone.append(w)
            getattr(self, k).clear()
        return everyone
