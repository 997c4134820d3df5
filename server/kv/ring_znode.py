"""The ring document's home: one versioned znode of the coordination tree, `/dcli/kv/ring`.

`RingZnode` reads the znode (JSON, as `RingDocument.to_json`) with a watch, writes a change with
compare-and-set on the znode version the change was computed from (create when there is none
yet), and, whenever the watch fires or the tree session is replaced (its watches gone), reads it
again and hands `(document, version)` to its listener. Reads come from this node's replica of the
tree, so every node learns of a change from the tree itself: nothing is exchanged between KV
nodes. The znode version orders documents: a node adopts a read whose version is above the one
its document came from.

The tree is any object with LocalSession's calls (`get(path, watch=)`, `create(path, data,
parents=)`, `set(path, data, version=)`, an `on_event` attribute, `close()`); the server hands
the KV node a LocalSession on its own tree (server/local_session.py).

    ring = RingZnode(tree, on_document=node.adopt_from_tree)
    doc, version = await ring.read()            # (None, -1): no znode yet (the bootstrap holds)
    ring.start()                                # re-read on every watch event, until stop()
    version = await ring.write(new_doc, version)    # RingChangedError if someone wrote first
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from dcli.wire.errors import BadVersionError, ConnectionLossError, DcliError, MembershipError, NodeExistsError
from dcli_server.kv.membership import RingDocument

log = logging.getLogger("dcli.kv")

RING_PATH = "/dcli/kv/ring"
ABSENT = -1                     # the version of a znode that does not exist (yet)
RETRY_S = 1.0                   # a failed re-read is tried again this much later
WRITE_ATTEMPTS = 5              # a write whose answer was lost is checked and tried again


class RingChangedError(MembershipError):
    """A ring change lost a race: the znode moved on since the document it was computed from."""


def changed_meanwhile(epoch: int) -> RingChangedError:
    return RingChangedError(message=f"Membership change refused: the ring changed meanwhile (epoch {epoch}); "
                                    "run the command again")


class RingZnode:
    def __init__(self, tree, on_document: Callable[[RingDocument, int], None]):
        self.tree = tree
        self.on_document = on_document
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopped = False
        tree.on_event = self._on_event

    async def read(self, timeout: float | None = None) -> tuple[RingDocument | None, int]:
        """The document in the znode and its version, setting a watch; (None, ABSENT) when there
        is none. A znode that does not hold a ring document is logged and treated as absent."""
        kwargs = {} if timeout is None else {"timeout": timeout}
        found = await self.tree.get(RING_PATH, watch=True, **kwargs)
        if found is None:
            return None, ABSENT
        data, stat = found
        try:
            return RingDocument.from_json(data.decode()), stat.version
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
            log.error("kv: %s (version %d) holds no ring document: %r", RING_PATH, stat.version, e)
            return None, stat.version

    async def write(self, doc: RingDocument, version: int) -> int:
        """Write `doc` if the znode is still at `version` (ABSENT: create it); its new version.
        Raises RingChangedError, naming the epoch now in the tree, when it is not (and hands
        that document to the listener). A write whose answer was lost with the connection (the
        node's streams are dropped when its leader changes) is checked against the znode: done
        if the znode holds `doc`, tried again if it is still at `version`."""
        data = doc.to_json().encode()
        for _ in range(WRITE_ATTEMPTS):
            try:
                if version == ABSENT:
                    await self.tree.create(RING_PATH, data, parents=True)
                    return 0
                return (await self.tree.set(RING_PATH, data, version=version)).version
            except ConnectionLossError:
                found = await self.tree.get(RING_PATH)
                if found is not None and found[0] == data:
                    return found[1].version              # it was written; the answer was lost
                if (found[1].version if found is not None else ABSENT) == version:
                    continue                             # it was not: try again
            except (BadVersionError, NodeExistsError):
                pass
            break
        now, version = await self.read()        # the ring that won, taken here too
        if now is not None:
            self.on_document(now, version)
        raise changed_meanwhile(now.epoch if now is not None else 0)

    # -- following the znode ------------------------------------------------------------------

    def start(self) -> None:
        """Re-read (and re-watch) on every event until stop(); a first read is due at once."""
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="kv-ring-watch")

    def refresh(self) -> None:
        """Read the znode again soon (the watch loop does it)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._task is not None:
            # asyncio.wait_for (3.11) can swallow a cancel that meets its answer: the flag ends it then
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.tree.close()

    def _on_event(self, event) -> None:
        # a change (data watch), a creation (exists watch) or None (a new session: watches gone):
        # read it again either way, which also sets the next watch
        self._wake.set()

    async def _follow(self) -> None:
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            if self._stopped:
                return
            try:
                doc, version = await self.read()
            except asyncio.CancelledError:
                raise
            except DcliError as e:          # no leader for a while: the session could not open
                log.warning("kv: cannot read %s yet (%s); trying again", RING_PATH, e)
                await asyncio.sleep(RETRY_S)
                self._wake.set()
                continue
            if doc is not None:
                try:
                    self.on_document(doc, version)
                except Exception:   # noqa: BLE001 - the loop must go on following the znode
                    log.exception("kv: adopting the ring document failed")
