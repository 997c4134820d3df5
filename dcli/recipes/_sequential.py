"""What the election, the locks and the party share: an ephemeral sequential znode per
participant under one parent, ordered by its sequence number.

Only the public client API is used. A create whose reply is lost with the connection is not
sent twice blindly: the participant looks for a child its own session owns first (the session
survives a reconnect, so its ephemerals carry its id), and creates again only if there is none.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Callable

from dcli.client import CoordClient
from dcli.wire import errors

SEQUENCE = re.compile(r"(\d{10})$")
CREATE_ATTEMPTS = 5
log = logging.getLogger("dcli.recipes")


def sequence_of(name: str) -> int:
    """The sequence number ZooKeeper appended to a sequential znode's name (-1 if none)."""
    m = SEQUENCE.search(name)
    return int(m.group(1)) if m else -1


def ordered(children: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """The participants among `children` (names starting with one of `prefixes`), lowest first."""
    return sorted((c for c in children if c.startswith(prefixes) and sequence_of(c) >= 0),
                  key=sequence_of)


def create_own(client: CoordClient, parent: str, prefix: str, data: bytes) -> str:
    """Create `parent/prefix<seq>` as an ephemeral sequential znode; returns its full path.

    Retries on connection loss, finding the znode of an attempt whose reply was lost rather than
    creating a second one."""
    client.ensure_path(parent)
    # this session's znodes that are not this participant's (another recipe object on the same
    # client): a retry must not take one of them for the one whose reply was lost
    others = set(ordered(client.get_children(parent), (prefix,)))
    for attempt in range(CREATE_ATTEMPTS):
        if attempt:
            found = find_own(client, parent, prefix, others)
            if found:
                return found
        try:
            return client.create(f"{parent}/{prefix}", data, ephemeral=True, sequence=True)
        except errors.ConnectionLossError:
            continue
        except errors.NoNodeError:       # the parent was removed under us: make it again
            client.ensure_path(parent)
    raise errors.ConnectionLossError()


def find_own(client: CoordClient, parent: str, prefix: str, others: set[str]) -> str | None:
    for name in ordered(client.get_children(parent), (prefix,)):
        if name in others:
            continue
        stat = client.exists(f"{parent}/{name}")
        if stat is not None and stat.ephemeral_owner == client.session_id:
            return f"{parent}/{name}"
    return None


def delete_quietly(client: CoordClient, path: str) -> None:
    try:
        client.delete(path)
    except (errors.NoNodeError, errors.ConnectionLossError, errors.SessionExpiredError,
            errors.NotConnectedError):
        pass


class Rerun:
    """Calls `fn` so that runs never overlap and a call during a run makes exactly one more run.

    The recipes look at the tree from the application's thread (join, start) and from the
    client's event thread (watches). No lock may be held across a request: the reply to a request
    from another thread can be queued behind the event that is waiting for that lock."""

    def __init__(self, fn: Callable[[], None]):
        self._fn = fn
        self._lock = threading.Lock()
        self._running = self._pending = False

    def __call__(self, *_ignored) -> None:
        with self._lock:
            if self._running:
                self._pending = True
                return
            self._running = True
        while True:
            try:
                self._fn()
            except Exception:        # a recipe must survive a bad callback or a surprise error
                log.exception("dcli recipe: %r failed", self._fn)
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                self._pending = False
