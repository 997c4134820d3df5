"""Leader election without herd effect, exactly as the seed describes it.

Each candidate creates an ephemeral sequential znode under the election path (`c_0000000007`).
The candidate with the lowest sequence number leads. Every other candidate watches only its
immediate predecessor: when that znode goes, only this one candidate is told. It looks at the
children again and either leads (its predecessor was the leader) or, if the predecessor was a
follower that died, watches the new predecessor: it closes the gap. A candidate that comes back
joins at the end, as a follower.

    election = LeaderElection(client, "/election", "node-1",
                              on_elected=lambda: print("I lead"),
                              on_revoked=lambda reason: print("I follow:", reason))
    election.join()

Callbacks run on the client's event thread, one at a time. Leadership is revoked when the
connection is suspended (the session may be gone: as Curator's LeaderLatch, the safe choice for
a leader that must not overlap with the next) and given back on reconnection if the znode is
still the lowest; when the session is lost the znode is gone and the role with it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from dcli.client import ConnState, CoordClient, EventType, WatchedEvent
from dcli.recipes._sequential import Rerun, create_own, delete_quietly, ordered
from dcli.wire import errors

PREFIX = "c_"


@dataclass(frozen=True)
class Candidate:
    znode: str          # the name under the election path, e.g. c_0000000003
    identifier: str     # what the candidate wrote into it


class LeaderElection:
    """One candidate's part in the election at `path` (see the module's docstring).

    `on_elected()` when this candidate becomes the leader; `on_revoked(reason)` when it stops
    being leader; `on_follow(predecessor)` each time it starts watching a (new) predecessor;
    `on_notified(event)` for each watch notification received (the demo counts them);
    `on_ended(reason)` when the candidate is out of the election without having left it (its
    znode was deleted, or the session was lost: join again with a new session). They run
    on the thread that looked at the tree: the event thread, or the caller's during `join()`."""

    def __init__(self, client: CoordClient, path: str = "/election", identifier: str = "",
                 *, on_elected: Callable[[], None] | None = None,
                 on_revoked: Callable[[str], None] | None = None,
                 on_follow: Callable[[str], None] | None = None,
                 on_notified: Callable[[WatchedEvent], None] | None = None,
                 on_ended: Callable[[str], None] | None = None):
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.identifier = identifier
        self.on_elected, self.on_revoked = on_elected, on_revoked
        self.on_follow, self.on_notified, self.on_ended = on_follow, on_notified, on_ended
        self.znode: str | None = None            # full path of this candidate's znode
        self.predecessor: str | None = None      # the name it watches; None when leading
        self.is_leader = False
        self.lost = False                        # the session ended: this object is finished
        self._suspended = False                  # the connection is down: no one may take the lead
        self._lock = threading.Lock()            # guards the fields above; never held over a request
        self._changed = threading.Condition(self._lock)
        self._check = Rerun(self._check_once)

    # ---- the application's side ----

    def join(self) -> str:
        """Volunteer: create this candidate's znode and take the role it gives. Returns the znode."""
        if self.znode is None:
            self.client.add_listener(self._on_state)
            try:
                znode = create_own(self.client, self.path, PREFIX, self.identifier.encode())
            except BaseException:
                self.client.remove_listener(self._on_state)
                raise
            with self._lock:
                self.znode = znode
        self._check()
        return self.znode

    def leave(self) -> None:
        """Withdraw: delete the znode (the successor is told and may lead)."""
        self.client.remove_listener(self._on_state)
        with self._lock:
            znode, self.znode, self.predecessor = self.znode, None, None
        self._set_leader(False, "left the election")
        if znode:
            delete_quietly(self.client, znode)

    def wait_for_leadership(self, timeout: float | None = None) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: self.is_leader or self.lost, timeout) and self.is_leader

    def candidates(self) -> list[Candidate]:
        """Every candidate, leader first."""
        return candidates(self.client, self.path)

    @property
    def name(self) -> str | None:
        znode = self.znode
        return znode.rsplit("/", 1)[1] if znode else None

    # ---- the algorithm ----

    def _check_once(self) -> None:
        """Look at the children: lead if lowest, else watch the immediate predecessor."""
        while True:
            me = self.name
            if me is None or self.lost:
                return
            try:
                children = ordered(self.client.get_children(self.path), (PREFIX,))
            except errors.NoNodeError:           # the whole election path was deleted
                children = []
            except (errors.ConnectionLossError, errors.NotConnectedError, errors.SessionExpiredError):
                return      # the reconnection looks again
            if me not in children:       # deleted by someone else: out of the election
                with self._lock:
                    self.znode = self.predecessor = None
                self.client.remove_listener(self._on_state)
                self._set_leader(False, "znode deleted")
                if self.on_ended:
                    self.on_ended("znode deleted")
                return
            i = children.index(me)
            if i == 0:
                with self._lock:
                    self.predecessor = None
                try:        # a leader watches its own znode: deleting it ends the leadership
                    if self.client.exists(f"{self.path}/{me}", watch=self._on_predecessor) is None:
                        continue
                except (errors.ConnectionLossError, errors.NotConnectedError, errors.SessionExpiredError):
                    return
                self._set_leader(True)
                return
            predecessor = children[i - 1]
            self._set_leader(False, "a lower candidate exists")
            try:
                stat = self.client.exists(f"{self.path}/{predecessor}", watch=self._on_predecessor)
            except (errors.ConnectionLossError, errors.NotConnectedError, errors.SessionExpiredError):
                return
            if stat is None:
                continue        # the predecessor went between the two reads: look again
            with self._lock:
                new = predecessor != self.predecessor
                self.predecessor = predecessor
                self._changed.notify_all()
            if new and self.on_follow:
                self.on_follow(predecessor)
            return

    def _on_predecessor(self, event: WatchedEvent) -> None:
        if event.type is EventType.NONE:
            return
        if self.on_notified:
            self.on_notified(event)
        self._check()       # deleted: lead or close the gap; anything else: set the watch again

    def _on_state(self, state: ConnState) -> None:
        if state is ConnState.SUSPENDED:
            with self._lock:
                self._suspended = True
            self._set_leader(False, "connection suspended")
        elif state is ConnState.CONNECTED:
            with self._lock:
                self._suspended = False
            self._check()
        elif state is ConnState.LOST:
            with self._lock:
                self.lost = True
                was_in = self.znode is not None
                self.znode = self.predecessor = None
                self._changed.notify_all()
            self._set_leader(False, "session lost")
            if was_in and self.on_ended:
                self.on_ended("session lost")

    def _set_leader(self, leader: bool, reason: str = "") -> None:
        with self._lock:
            if leader == self.is_leader:
                return
            if leader and (self.znode is None or self.lost or self._suspended):
                return      # left, lost or cut off meanwhile: the reconnection looks again
            self.is_leader = leader
            self._changed.notify_all()
        if leader and self.on_elected:
            self.on_elected()
        elif not leader and self.on_revoked:
            self.on_revoked(reason)


def candidates(client: CoordClient, path: str = "/election") -> list[Candidate]:
    """The candidates at `path`, lowest sequence (the leader) first."""
    out = []
    for name in ordered(client.get_children(path), (PREFIX,)):
        try:
            data, _ = client.get(f"{path}/{name}")
        except errors.NoNodeError:
            continue
        out.append(Candidate(name, (data or b"").decode(errors="replace")))
    return out


class LeaderObserver:
    """Follows an election from outside: `on_leader(candidate or None)` each time the leader
    changes (one children watch on the election path; an observer takes no part)."""

    def __init__(self, client: CoordClient, path: str, on_leader: Callable[[Candidate | None], None],
                 on_lost: Callable[[], None] | None = None):
        self.client, self.path, self.on_leader, self.on_lost = client, path, on_leader, on_lost
        self.leader: Candidate | None = None
        self._reported = False
        self._stopped = False
        self._look = Rerun(self._look_once)

    def start(self) -> LeaderObserver:
        self.client.ensure_path(self.path)
        self.client.add_listener(self._on_state)
        self._look()
        return self

    def stop(self) -> None:
        self._stopped = True
        self.client.remove_listener(self._on_state)

    def _on_state(self, state: ConnState) -> None:
        if state is ConnState.CONNECTED:
            self._look()                # the watch may not have been set: look again
        elif state is ConnState.LOST and self.on_lost:
            self.on_lost()

    def _look_once(self) -> None:
        if self._stopped:
            return
        try:
            self.client.get_children(self.path, watch=self._look)
            current = candidates(self.client, self.path)
        except errors.NoNodeError:
            current = []
        except (errors.ConnectionLossError, errors.NotConnectedError, errors.SessionExpiredError):
            return
        leader = current[0] if current else None
        if leader != self.leader or not self._reported:
            self.leader, self._reported = leader, True
            self.on_leader(leader)
