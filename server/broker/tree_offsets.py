"""Committed offsets in the coordination tree: whichever broker coordinates a group next reads what
the last one acknowledged (a node alone is a cluster of one and keeps them there too). Kafka kept them in ZooKeeper this way before
`__consumer_offsets`:

    /consumers/<group>/offsets/<topic>/<partition>
        {"offset":42,"metadata":"","commit_timestamp":1700000000000,"leader_epoch":-1}

(`<group>` is percent-encoded, so that any group id is one znode name.) The interface is
CommittedOffsets (offsets.py), the one the group coordinator knows:

    store = TreeOffsetStore(lambda: membership.client())
    await asyncio.to_thread(store.load, "my-group", 7)   # coordinating it in coordination epoch 7
    store.commit("my-group", [OffsetCommit("chat", 0, 42)], now_ms)   # visible at once
    await asyncio.to_thread(store.flush)                  # written to the tree: acknowledge now
    store.forget("my-group")                              # another broker coordinates it now

The durability point is `flush`, which writes every change made
before it to the tree (each write is committed by a majority of the nodes before it returns).
A flush that fails keeps the changes pending and raises; nobody was told they were durable.

Threading: `commit`, `fetch` and friends on the event loop; `load` and `flush` in threads
(they wait on the tree, which may be served by this very process).
"""
from __future__ import annotations

import json
import threading
from typing import Callable, Iterable
from urllib.parse import quote, unquote

from dcli.wire import errors
from dcli_server.broker.offsets import CommittedOffsets, OffsetAndMetadata, OffsetCommit

CONSUMERS = "/consumers"


def group_path(group_id: str) -> str:
    return f"{CONSUMERS}/{quote(group_id, safe='')}"


def offset_path(group_id: str, topic: str, partition: int) -> str:
    return f"{group_path(group_id)}/offsets/{topic}/{partition}"


def _encode(v: OffsetAndMetadata) -> bytes:
    return json.dumps({"offset": v.offset, "metadata": v.metadata, "commit_timestamp": v.commit_timestamp_ms,
                       "leader_epoch": v.leader_epoch}, separators=(",", ":")).encode()


def _decode(data: bytes | None) -> OffsetAndMetadata | None:
    try:
        d = json.loads((data or b"").decode())
        return OffsetAndMetadata(int(d["offset"]), str(d.get("metadata", "")),
                                 int(d.get("commit_timestamp", -1)), int(d.get("leader_epoch", -1)))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


class TreeOffsetStore(CommittedOffsets):
    """See the module's docstring."""

    def __init__(self, client: Callable[[], object]):
        self._client = client
        self._offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        self._loaded: dict[str, int] = {}       # group -> the coordination epoch it was read in
        self._pending: dict[tuple[str, str, int], OffsetAndMetadata | None] = {}   # None: delete
        self._lock = threading.Lock()

    # -- coordination moves ---------------------------------------------------------------------

    def loaded(self, group_id: str, epoch: int = 0) -> bool:
        """Read in this coordination epoch (the live brokers, hence the coordinators, may have
        changed since, and another broker committed for the group meanwhile)."""
        return self._loaded.get(group_id) == epoch

    def load(self, group_id: str, epoch: int = 0) -> None:
        """Read the group's offsets from the tree (in a thread). Pending changes win."""
        client = self._client()
        client.sync("/")            # read what the last coordinator wrote, however recent
        found: dict[tuple[str, int], OffsetAndMetadata] = {}
        base = f"{group_path(group_id)}/offsets"
        try:
            topics = client.get_children(base)
        except errors.NoNodeError:
            topics = []
        for topic in topics:
            try:
                partitions = client.get_children(f"{base}/{topic}")
            except errors.NoNodeError:
                continue
            for p in partitions:
                if not p.isdigit():
                    continue
                try:
                    data, _ = client.get(f"{base}/{topic}/{p}")
                except errors.NoNodeError:
                    continue
                value = _decode(data)
                if value is not None:
                    found[(topic, int(p))] = value
        with self._lock:
            for (g, t, p), v in self._pending.items():
                if g == group_id:
                    if v is None:
                        found.pop((t, p), None)
                    else:
                        found[(t, p)] = v
            if found:
                self._offsets[group_id] = found
            else:
                self._offsets.pop(group_id, None)
            self._loaded[group_id] = epoch

    def forget(self, group_id: str) -> None:
        """Drop the group from memory: the next coordination here reads it again."""
        with self._lock:
            self._loaded.pop(group_id, None)
            self._offsets.pop(group_id, None)

    def group_ids(self) -> list[str]:
        """Every group with offsets in the tree (in a thread)."""
        try:
            return sorted(unquote(g) for g in self._client().get_children(CONSUMERS))
        except errors.NoNodeError:
            return []

    # -- writing ----------------------------------------------------------------------------------

    def commit(self, group_id: str, offsets: Iterable[OffsetCommit], now_ms: int) -> None:
        with self._lock:
            for c in offsets:
                v = OffsetAndMetadata(c.offset, c.metadata, now_ms, c.leader_epoch)
                self._offsets.setdefault(group_id, {})[(c.topic, c.partition)] = v
                self._pending[(group_id, c.topic, c.partition)] = v

    def restore(self, group_id: str, offsets: dict[tuple[str, int], OffsetAndMetadata]) -> None:
        """Put offsets as they were committed elsewhere (their own commit times), as `commit`
        does: visible at once, in the tree after `flush` (the migration of an older layout)."""
        with self._lock:
            for (topic, p), v in offsets.items():
                self._offsets.setdefault(group_id, {})[(topic, p)] = v
                self._pending[(group_id, topic, p)] = v

    def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]], now_ms: int) -> int:
        with self._lock:
            known = self._offsets.get(group_id, {})
            gone = [tp for tp in dict.fromkeys(partitions) if tp in known]
            for tp in gone:
                del known[tp]
                self._pending[(group_id, *tp)] = None
            if not known:
                self._offsets.pop(group_id, None)
            return len(gone)

    def flush(self) -> None:
        """Write every change made before this call to the tree (in a thread)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            client = self._client()
            for (group, topic, p), v in batch.items():
                path = offset_path(group, topic, p)
                if v is None:
                    try:
                        client.delete(path)
                    except errors.NoNodeError:
                        pass
                    continue
                try:
                    client.set(path, _encode(v))
                except errors.NoNodeError:
                    client.ensure_path(path.rsplit("/", 1)[0])
                    try:
                        client.create(path, _encode(v))
                    except errors.NodeExistsError:
                        client.set(path, _encode(v))
        except BaseException:
            with self._lock:       # nothing acknowledged: try again with the next flush
                for key, v in batch.items():
                    self._pending.setdefault(key, v)
            raise

    def close(self) -> None:
        """Nothing to close: what was flushed is in the tree."""
