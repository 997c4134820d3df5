"""Locks: ZooKeeper's recipe, as kazoo's Lock, ReadLock and WriteLock.

Each contender creates an ephemeral sequential znode under the lock's path. An exclusive (or
write) contender holds the lock when no znode has a lower sequence number; a reader holds it
when no *write* znode has a lower one, so readers share it. A waiting contender watches only the
nearest znode that blocks it (no herd effect), exactly as the leader election does.

    lock = Lock(client, "/locks/report", "worker-1")
    with lock:                    # blocks until acquired
        ...
    if lock.acquire(timeout=5):   # or bounded
        try: ...
        finally: lock.release()

A lock held by a session that ends is released by the server (the znode is ephemeral): the
holder is told through `on_lost(reason)` and `is_acquired` turns false, because another
contender may hold the lock by then. A suspended connection is reported the same way, since the
holder can no longer be sure.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from dcli.client import ConnState, CoordClient
from dcli.recipes._sequential import create_own, delete_quietly, ordered
from dcli.wire import errors

WRITE = "lock-"
READ = "read-"


class Lock:
    prefix = WRITE
    blocked_by: tuple[str, ...] = (WRITE, READ)       # a writer waits for everyone before it

    def __init__(self, client: CoordClient, path: str, identifier: str = "",
                 on_lost: Callable[[str], None] | None = None):
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.identifier = identifier
        self.on_lost = on_lost
        self.znode: str | None = None
        self.is_acquired = False
        self._cancelled = threading.Event()
        self._wake = threading.Event()       # set when the znode waited for changes

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Wait until this contender holds the lock; False if `timeout` passed, if `cancel()`
        was called, or (not `blocking`) if the lock is taken; its znode is then removed again.
        A broken connection is waited out (the session, and the place in the queue, survive
        it); a lost session raises SessionExpiredError."""
        if self.is_acquired:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        self.client.remove_listener(self._on_state)
        self.client.add_listener(self._on_state)
        try:
            if self.znode is None or self.client.exists(self.znode) is None:
                self.znode = create_own(self.client, self.path, self.prefix, self.identifier.encode())
            while not self._cancelled.is_set():
                wake = self._wake = threading.Event()
                try:
                    blocker = self._blocker()
                    if blocker is None:
                        self.is_acquired = True
                        return True
                    if self.client.exists(f"{self.path}/{blocker}", watch=lambda _e: wake.set()) is None:
                        continue
                except (errors.ConnectionLossError, errors.NotConnectedError):
                    if self.client.state is ConnState.LOST:
                        raise errors.SessionExpiredError(self.path) from None
                    # wait for the reconnection (the listener sets `wake`), then look again
                wait = None if deadline is None else deadline - time.monotonic()
                if not blocking or (wait is not None and wait <= 0):
                    break
                if not wake.wait(wait):
                    break       # the deadline passed
        except BaseException:
            self._withdraw()
            raise
        self._cancelled.clear()
        self._withdraw()
        return False

    def release(self) -> None:
        self.is_acquired = False
        self._withdraw()

    def cancel(self) -> None:
        """Make a blocked (or the next) `acquire()` give up: it returns False."""
        self._cancelled.set()
        self._wake.set()

    def contenders(self) -> list[str]:
        """The identifiers of everyone holding or waiting, in order."""
        out = []
        for name in ordered(self.client.get_children(self.path), (WRITE, READ)):
            try:
                data, _ = self.client.get(f"{self.path}/{name}")
            except errors.NoNodeError:
                continue
            out.append((data or b"").decode(errors="replace"))
        return out

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _blocker(self) -> str | None:
        """The nearest lower znode this contender waits for; None if it holds the lock."""
        me = self.znode.rsplit("/", 1)[1]
        children = ordered(self.client.get_children(self.path), (WRITE, READ))
        if me not in children:      # our znode is gone: the session ended, or someone deleted it
            raise errors.SessionExpiredError(self.znode)
        before = [c for c in children[:children.index(me)] if c.startswith(self.blocked_by)]
        return before[-1] if before else None

    def _withdraw(self) -> None:
        self.client.remove_listener(self._on_state)
        znode, self.znode = self.znode, None
        if znode:
            delete_quietly(self.client, znode)

    def _on_state(self, state: ConnState) -> None:
        if state in (ConnState.LOST, ConnState.CONNECTED):
            self._wake.set()           # a waiting acquire() looks again
        if state in (ConnState.SUSPENDED, ConnState.LOST) and self.is_acquired:
            self.is_acquired = False
            if self.on_lost:
                self.on_lost("connection suspended" if state is ConnState.SUSPENDED else "session lost")


class WriteLock(Lock):
    """Exclusive: the same znodes as Lock, so the two exclude each other."""


class ReadLock(Lock):
    """Shared among readers; excluded by any writer that came first."""

    prefix = READ
    blocked_by = (WRITE,)
