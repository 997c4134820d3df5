"""Which other nodes are up, as this node last saw them.

Failure detection by outcomes: every call to a node (a replica write, a read, a heartbeat) that
fails or runs past its deadline marks the node down; every answer marks it up. A heartbeat goes
to every member each `heartbeat_ms`, so an idle node's view is at most that old. A node never
heard of counts as up until a call says otherwise (a fresh cluster does not start degraded).
Going from down to up calls the `on_up` listeners: the hinted-handoff pass starts there.

    >>> table = PeerTable(now_ms=lambda: 0)
    >>> table.mark_down("2", "connection refused"); table.is_up("2")
    False
    >>> table.mark_up("2"); table.is_up("2")
    True
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class PeerState:
    up: bool = True
    since_ms: int = 0
    last_ok_ms: int = 0
    failures: int = 0
    reason: str = ""


class PeerTable:
    def __init__(self, now_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self._now = now_ms
        self._peers: dict[str, PeerState] = {}
        self.on_up: list[Callable[[str], None]] = []

    def state(self, node: str) -> PeerState:
        return self._peers.setdefault(node, PeerState(since_ms=self._now()))

    def is_up(self, node: str) -> bool:
        return self.state(node).up

    def mark_up(self, node: str) -> None:
        s = self.state(node)
        now = self._now()
        s.last_ok_ms, s.failures, s.reason = now, 0, ""
        if not s.up:
            s.up, s.since_ms = True, now
            for listener in list(self.on_up):
                listener(node)

    def mark_down(self, node: str, reason: str = "") -> None:
        s = self.state(node)
        s.failures += 1
        s.reason = reason
        if s.up:
            s.up, s.since_ms = False, self._now()

    def down(self) -> list[str]:
        return [n for n, s in self._peers.items() if not s.up]
