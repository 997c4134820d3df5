"""Coordinating a request: quorum writes with hinted handoff, quorum reads with read repair, scans.

Any node accepts any request. A write is coordinated by a replica of its key (Dynamo's rule: the
new version's dot is minted where the key's siblings are known), so a node that holds no replica
forwards the write to the first reachable one. The coordinator stores the write, sends the key's
whole sibling set to the other N - 1 replicas at once, and answers as soon as W of them (itself
included) have it durably; the rest carry on in the background. A replica that is down, or
fails, gets a *hint*: the versions go to the next healthy node on the ring past the key's N (or
stay with the coordinator when there is none), which hands them over when the node is back.

Strict keyspaces count only the key's own replicas toward W, and refuse R + W <= N. Eventual
keyspaces (sloppy quorum, Dynamo's "always writeable") count stand-ins holding a hint too, and
default to R = W = 1: the reply comes after the local write and replication is asynchronous.

A read asks the key's N replicas, waits for R answers, reconciles them (versions.resolve) and
answers with the newest version, or every concurrent sibling. Replicas among the R that were
stale are repaired before the answer; those that answer later are repaired in the background.

During a membership move (RingDocument.moving) reads use the old ring and W is counted there,
while writes also go to the new owners of the key, so a range that is being streamed misses
nothing written meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from dcli.wire.errors import DcliError, QuorumNotReachedError
from dcli.wire.kv_keys import InvalidKeyError, prefix_end, validate_key, validate_keyspace, validate_value
from dcli_server.kv.membership import EVENTUAL, STRICT, RingDocument
from dcli_server.kv.peers import PeerTable
from dcli_server.kv.store import DEFAULT_SCAN_LIMIT, KVStore
from dcli_server.kv.transport import (Entry, PeerUnreachable, QuorumInfo, ReadResult, ReplicaOutcome,
                                      ScanResult, Transport, WriteResult)
from dcli_server.kv.versions import VectorClock, Version, context_of, reconcile, resolve

log = logging.getLogger("dcli.kv")
MAX_SCAN_LIMIT = 10_000


class Coordinator:
    def __init__(self, me: str, store: KVStore, document: Callable[[], RingDocument], peers: PeerTable,
                 transport: Transport, now_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self.me = me
        self.store = store
        self.document = document
        self.peers = peers
        self.transport = transport
        self.now_ms = now_ms
        self._background: set[asyncio.Task] = set()

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def drain(self) -> None:
        """Wait for background replication and repairs (tests, clean shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _address(self, doc: RingDocument, node: str) -> str:
        """The client address a replica's outcome shows (calls name the node, not an address)."""
        return doc.address(node) or ""

    # -- writes -------------------------------------------------------------------------------

    async def write(self, keyspace: str, key: bytes, value: bytes | None, context: VectorClock | None,
                    w: int | None = None, forwarded: bool = False) -> WriteResult:
        validate_keyspace(keyspace)
        key = validate_key(key)
        if value is not None:
            value = validate_value(value)
        doc = self.document()
        counted_layout = doc.read_layout(keyspace)
        config = counted_layout.config
        n, default_r, w = config.quorum(len(counted_layout.nodes), None, w)
        counted = counted_layout.preference_list(key)
        extra = [x for x in doc.layout(keyspace).preference_list(key) if x not in counted]
        replicas = counted + extra
        if self.me not in replicas and not forwarded:
            for node in sorted(replicas, key=lambda x: not self.peers.is_up(x)):
                try:
                    result = await self.transport.forward_write(node, keyspace, key,
                                                                value, context, w)
                    self.peers.mark_up(node)
                    return result
                except PeerUnreachable as e:
                    self.peers.mark_down(node, str(e))
            if config.consistency == STRICT:
                raise QuorumNotReachedError(message=(
                    f"Quorum not reached: W={w} of N={n}, but none of the key's replicas "
                    f"({', '.join(replicas)}) answered"))
        info = QuorumInfo(n=n, r=default_r, w=w, consistency=config.consistency, preference=counted,
                          coordinator=self.me, epoch=doc.epoch)
        now = self.now_ms()
        if self.me in replicas:
            version, merged = await asyncio.to_thread(self.store.write, keyspace, key, value, context,
                                                      self.me, now)
        else:       # eventual keyspace, no replica reachable: mint here, every replica gets a hint
            version = await asyncio.to_thread(self.store.mint, self.me, value, context)
            merged = (version,)
        outcomes: dict[str, ReplicaOutcome] = {}
        if self.me in replicas:
            outcomes[self.me] = ReplicaOutcome(self.me, self._address(doc, self.me), "stored")
        used_stand_ins: set[str] = set()
        tasks = {self.spawn(self._deliver(doc, keyspace, key, merged, node, replicas, used_stand_ins)): node
                 for node in replicas if node != self.me}

        def acks() -> int:
            stored = {o.node for o in outcomes.values() if o.outcome == "stored" and o.node in counted}
            if config.consistency == EVENTUAL:
                stored |= {o.node for o in outcomes.values() if o.outcome == "stored"}
                stored |= {o.stand_in for o in outcomes.values() if o.outcome == "hinted"}
            return len(stored)

        pending = set(tasks)
        while acks() < w and pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                outcomes[tasks[t]] = t.result()
        for t in pending:
            node = tasks[t]
            outcomes[node] = ReplicaOutcome(node, self._address(doc, node), "pending")
        info.acks = acks()
        info.replicas = [outcomes[x] for x in replicas if x in outcomes]
        if info.acks < w:
            said = ", ".join(f"{o.node} {o.outcome}" + (f" (hint on {o.stand_in})" if o.stand_in else "")
                             for o in info.replicas)
            raise QuorumNotReachedError(message=(
                f"Quorum not reached: W={w} of N={n} needed, {info.acks} replica(s) stored the write "
                f"({said}); it may still reach the others"))
        return WriteResult(version, context_of(merged), len(merged), info)

    async def _deliver(self, doc: RingDocument, keyspace: str, key: bytes, versions: tuple[Version, ...],
                       node: str, replicas: list[str], used: set[str]) -> ReplicaOutcome:
        address = self._address(doc, node)
        # tried even when believed down: a refused connection fails at once, and the failure
        # detector may be a heartbeat behind a node that just came back
        try:
            await self.transport.apply(node, keyspace, [(key, versions)], me=self.me, epoch=doc.epoch)
            self.peers.mark_up(node)
            return ReplicaOutcome(node, address, "stored")
        except PeerUnreachable as e:
            self.peers.mark_down(node, str(e))
            reason = str(e)
        except DcliError as e:
            reason = str(e)
        stand_in = await self._hint(doc, keyspace, key, versions, node, replicas, used)
        return ReplicaOutcome(node, address, "hinted", stand_in=stand_in, detail=reason)

    async def _hint(self, doc: RingDocument, keyspace: str, key: bytes, versions: tuple[Version, ...],
                    target: str, replicas: list[str], used: set[str]) -> str:
        """Hand the versions to the next healthy node past the key's replicas, or keep them."""
        walk = doc.layout(keyspace).walk(key)
        for node in sorted(walk, key=lambda x: not self.peers.is_up(x)):     # stable: ring order
            if node in replicas or node in used or node == self.me:
                continue
            used.add(node)
            try:
                await self.transport.apply(node, keyspace, [(key, versions)],
                                           hint_for=target, me=self.me, epoch=doc.epoch)
                self.peers.mark_up(node)
                return node
            except PeerUnreachable as e:
                self.peers.mark_down(node, str(e))
        await asyncio.to_thread(self.store.add_hints, target, keyspace, [(key, versions)])
        return self.me

    # -- reads --------------------------------------------------------------------------------

    async def _read_one(self, doc: RingDocument, keyspace: str, node: str, key: bytes) -> tuple[Version, ...]:
        if node == self.me:
            return await asyncio.to_thread(self.store.get, keyspace, key)
        [versions] = await self.transport.read(node, keyspace, [key], doc.epoch)
        self.peers.mark_up(node)
        return versions

    async def _repair(self, doc: RingDocument, keyspace: str, node: str, key: bytes,
                      versions: tuple[Version, ...]) -> None:
        if node == self.me:
            await asyncio.to_thread(self.store.apply, keyspace, key, versions, self.now_ms())
        else:
            await self.transport.apply(node, keyspace, [(key, versions)], me=self.me, epoch=doc.epoch)

    async def read(self, keyspace: str, key: bytes, r: int | None = None) -> ReadResult:
        validate_keyspace(keyspace)
        key = validate_key(key)
        doc = self.document()
        layout = doc.read_layout(keyspace)
        n, r, default_w = layout.config.quorum(len(layout.nodes), r, None)
        pref = layout.preference_list(key)
        info = QuorumInfo(n=n, r=r, w=default_w, consistency=layout.config.consistency, preference=pref,
                          coordinator=self.me, epoch=doc.epoch)
        tasks = {self.spawn(self._read_one(doc, keyspace, node, key)): node for node in pref}
        answers: dict[str, tuple[Version, ...]] = {}
        failed: dict[str, str] = {}
        pending = set(tasks)
        while len(answers) < r and pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                node = tasks[t]
                try:
                    answers[node] = t.result()
                except PeerUnreachable as e:
                    self.peers.mark_down(node, str(e))
                    failed[node] = str(e)
                except DcliError as e:
                    failed[node] = str(e)
        outcomes = {node: ReplicaOutcome(node, self._address(doc, node), "failed", detail=why)
                    for node, why in failed.items()}
        for t in pending:
            outcomes[tasks[t]] = ReplicaOutcome(tasks[t], self._address(doc, tasks[t]), "late")
        if len(answers) < r:
            info.replicas = [outcomes.get(x) or ReplicaOutcome(x, "", "?") for x in pref]
            raise QuorumNotReachedError(message=(
                f"Quorum not reached: R={r} of N={n} needed, {len(answers)} replica(s) answered "
                f"({', '.join(f'{x} ' + ('ok' if x in answers else outcomes[x].outcome) for x in pref)})"
                + "".join(f"; {x}: {why}" for x, why in failed.items())))
        resolution = resolve(answers)
        repairs = {}
        for node, versions in answers.items():
            if node in resolution.stale:
                repairs[node] = self.spawn(self._repair(doc, keyspace, node, key, resolution.versions))
                outcomes[node] = ReplicaOutcome(node, self._address(doc, node), "stale")
            else:
                outcomes[node] = ReplicaOutcome(node, self._address(doc, node),
                                                "current" if versions else "missing")
        for node, task in repairs.items():
            try:
                await task
                outcomes[node].outcome = "repaired"
            except (PeerUnreachable, DcliError) as e:
                outcomes[node].detail = f"repair failed: {e}"
        if pending:
            self.spawn(self._repair_late({t: tasks[t] for t in pending}, doc, keyspace, key, resolution.versions))
        info.acks = len(answers)
        info.replicas = [outcomes[x] for x in pref]
        return ReadResult(resolution.versions, resolution.context, info)

    async def _repair_late(self, tasks: dict, doc, keyspace: str, key: bytes, seen: tuple[Version, ...]) -> None:
        for task, node in tasks.items():
            try:
                versions = await task
            except (PeerUnreachable, DcliError):
                continue
            merged = reconcile(seen, versions)
            if reconcile(versions) != merged:
                try:
                    await self._repair(doc, keyspace, node, key, merged)
                except (PeerUnreachable, DcliError):
                    pass

    # -- scans --------------------------------------------------------------------------------

    async def scan(self, keyspace: str, *, prefix: bytes | None = None, start: bytes = b"",
                   end: bytes | None = None, limit: int = DEFAULT_SCAN_LIMIT,
                   include_tombstones: bool = False) -> ScanResult:
        """Keys in [start, end) or with `prefix`, in byte order, merged from every node that holds
        the range: all nodes under hash sharding, only the owning shards' under range sharding."""
        validate_keyspace(keyspace)
        if not 1 <= limit <= MAX_SCAN_LIMIT:
            raise InvalidKeyError(message=f"Invalid scan: limit must be 1 to {MAX_SCAN_LIMIT}, not {limit}")
        if prefix is not None:
            if start or end is not None:
                raise InvalidKeyError(message="Invalid scan: give a prefix or a range, not both")
            start, end = bytes(prefix), prefix_end(bytes(prefix))
        if end is not None and end <= start:
            raise InvalidKeyError(message=f"Invalid scan: the range end {end!r} is not after its start {start!r}")
        doc = self.document()
        layout = doc.read_layout(keyspace)
        nodes = layout.nodes_for_scan(start, end)

        async def one(node: str) -> tuple[list[Entry], bool]:
            if node == self.me:
                got = await asyncio.to_thread(self.store.scan, keyspace, start=start, end=end,
                                              limit=limit, include_tombstones=True)
                return got, len(got) >= limit
            result = await self.transport.scan(node, keyspace, start, end, limit)
            self.peers.mark_up(node)
            return result

        results = await asyncio.gather(*(one(x) for x in nodes), return_exceptions=True)
        merged: dict[bytes, tuple[Version, ...]] = {}
        missing, cutoff = [], None
        for node, result in zip(nodes, results):
            if isinstance(result, BaseException):
                if isinstance(result, PeerUnreachable):
                    self.peers.mark_down(node, str(result))
                elif not isinstance(result, DcliError):
                    raise result
                missing.append(node)
                continue
            entries, more = result
            for key, versions in entries:
                merged[key] = reconcile(merged.get(key, ()), versions)
            if more and entries:
                cutoff = entries[-1][0] if cutoff is None else min(cutoff, entries[-1][0])
        keys = sorted(k for k in merged if cutoff is None or k <= cutoff)
        out = [(k, merged[k]) for k in keys
               if include_tombstones or any(not v.is_tombstone for v in merged[k])]
        truncated = cutoff is not None or len(out) > limit
        return ScanResult(out[:limit], truncated, nodes, missing)
