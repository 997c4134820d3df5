"""The znode-children cache behind path completion, filled by a background thread.

    cache = ChildrenCache(lambda: shell.client)
    cache.start()
    cache.children("/parent")     # what is cached now (or None); a fetch is queued if stale

Typing never waits on the network: `children()` answers from the cache at once and asks the
thread to fetch what is missing or older than `max_age_s`.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

FETCH_TIMEOUT_S = 2.0


class ChildrenCache:
    def __init__(self, client_fn: Callable[[], object], max_age_s: float = 3.0):
        self._client_fn = client_fn
        self._max_age_s = max_age_s
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dcli-shell-refresher", daemon=True)
        self.fetched = threading.Event()   # set after each fetch (lets a caller redraw)

    def start(self) -> ChildrenCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)

    def children(self, path: str) -> list[str] | None:
        with self._lock:
            entry = self._cache.get(path)
            stale = entry is None or time.monotonic() - entry[0] > self._max_age_s
            if stale and path not in self._pending:
                self._pending.add(path)
                self._queue.put(path)
        return None if entry is None else entry[1]

    def children_soon(self, path: str, wait_s: float = 0.3) -> list[str] | None:
        """`children()`, waiting a moment for a first fetch. For the completion thread only:
        prompt_toolkit runs it beside the input, so the wait never blocks typing."""
        kids = self.children(path)
        deadline = time.monotonic() + wait_s
        while kids is None and (left := deadline - time.monotonic()) > 0:
            self.fetched.clear()
            kids = self.children(path)
            if kids is None:
                self.fetched.wait(left)
                kids = self.children(path)
        return kids

    def invalidate(self) -> None:
        """Forget everything (after a command that may have changed the tree)."""
        with self._lock:
            self._cache = {p: (0.0, kids) for p, (_, kids) in self._cache.items()}

    def _run(self) -> None:
        from dcli.wire.errors import NoNodeError

        while True:
            path = self._queue.get()
            if path is None:
                return
            kids = None
            try:
                client = self._client_fn()
                if client is not None and path.startswith("kafka:"):
                    kids = broker_names(client.server, path)
                elif client is not None:
                    kids = sorted(client.get_children_async(path).result(FETCH_TIMEOUT_S))
            except NoNodeError:
                kids = []
            except Exception:        # not connected, timed out, bad path: complete nothing
                kids = None
            with self._lock:
                self._pending.discard(path)
                if kids is not None:
                    self._cache[path] = (time.monotonic(), kids)
            self.fetched.set()


def broker_names(server: str, source: str) -> list[str]:
    """Topic or group names for completing `--topic` / `--group` (completer.VALUE_SOURCES)."""
    from dcli.client.admin import Admin

    with Admin(server, timeout=FETCH_TIMEOUT_S) as admin:
        if source == "kafka:topics":
            return admin.list_topics()
        return sorted(g.group_id for g in admin.list_groups())
