"""Repairs nobody asked for: hinted handoff and anti-entropy with Merkle trees.

Hinted handoff: a node keeps the writes meant for a replica that was down (`KVStore.add_hints`)
and sends them to it when a heartbeat or a call finds it up again, then forgets them. A hint for
a node that has left the ring goes to the key's current replicas instead.

Anti-entropy: for every range this node replicates, and every other replica of it that is up,
the two build a Merkle tree over the range (merkle.py), this node descends into the branches that
differ, fetches the (key, version hash) pairs of the differing leaves from the other side,
and the keys that differ are exchanged both ways and reconciled. Ranges shared with one peer are
joined first, so on a small cluster a pass is a handful of calls per peer, not one per vnode.
Range-sharded keyspaces compare one tree per shard and, when the roots differ, the shard's
(key, hash) pairs.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from dcli.wire.errors import DcliError
from dcli_server.kv.merkle import DEFAULT_DEPTH, MerkleTree, diff, differing_keys
from dcli_server.kv.ring import FULL_RING, KeyRange, TokenRange
from dcli_server.kv.transport import PeerUnreachable

if TYPE_CHECKING:
    from dcli_server.kv.node import KVNode

log = logging.getLogger("dcli.kv")
HINT_PAGE = 256


def local_tree(store, keyspace: str, span, depth: int) -> MerkleTree:
    if isinstance(span, KeyRange):
        return MerkleTree.build(store.hashes_in_keys(keyspace, span), FULL_RING, depth)
    return MerkleTree.build(store.hashes(keyspace, span), span, depth)


def local_hashes(store, keyspace: str, spans) -> list[tuple[bytes, bytes]]:
    out = []
    for span in spans:
        out += store.hashes_in_keys(keyspace, span) if isinstance(span, KeyRange) else store.hashes(keyspace, span)
    return out


def join_spans(spans: list) -> list:
    """Neighbouring arcs (or key ranges) as one, the wrap past the top of the ring included."""
    if not spans:
        return []
    if isinstance(spans[0], KeyRange):
        out: list[KeyRange] = []
        for s in sorted(spans, key=lambda s: s.start):
            if out and out[-1].end == s.start:
                out[-1] = KeyRange(out[-1].start, s.end)
            else:
                out.append(s)
        return out
    arcs: list[TokenRange] = []
    for s in sorted(spans, key=lambda s: s.start):
        if arcs and arcs[-1].end == s.start:
            arcs[-1] = TokenRange(arcs[-1].start, s.end)
        else:
            arcs.append(s)
    if len(arcs) > 1 and arcs[-1].end == arcs[0].start:
        last = arcs.pop()
        arcs[0] = TokenRange(last.start, arcs[0].end)
    if len(arcs) == 1 and arcs[0].start == arcs[0].end:
        return [FULL_RING]
    return arcs


class Repairs:
    def __init__(self, node: KVNode, depth: int = DEFAULT_DEPTH):
        self.node = node
        self.depth = depth
        self._handing: set[str] = set()
        self.passes = 0
        self.keys_repaired = 0

    # -- hinted handoff -----------------------------------------------------------------------

    async def hand_off(self, target: str) -> int:
        """Send every hint kept for `target`; returns how many were delivered."""
        if target in self._handing:
            return 0
        self._handing.add(target)
        node, sent = self.node, 0
        try:
            while True:
                hints = await asyncio.to_thread(node.store.hints_for, target, HINT_PAGE)
                if not hints:
                    return sent
                doc = node.document
                by_keyspace = defaultdict(list)
                for _, keyspace, key, versions in hints:
                    by_keyspace[keyspace].append((key, versions))
                for keyspace, entries in by_keyspace.items():
                    if target in doc.members():
                        await node.transport.apply(target, keyspace, entries, me=node.me, epoch=doc.epoch)
                    else:
                        await self._to_replicas(keyspace, entries)
                await asyncio.to_thread(node.store.drop_hints, [h[0] for h in hints])
                sent += len(hints)
                if target in doc.members():
                    node.peers.mark_up(target)
                log.info("handed %d hint(s) to node %s", len(hints), target)
        except PeerUnreachable as e:
            node.peers.mark_down(target, str(e))
            return sent
        finally:
            self._handing.discard(target)

    async def _to_replicas(self, keyspace: str, entries) -> None:
        node = self.node
        doc = node.document
        try:
            layout = doc.layout(keyspace)
        except DcliError:
            return
        for key, versions in entries:
            for replica in layout.preference_list(key):
                if replica == node.me:
                    await asyncio.to_thread(node.store.apply, keyspace, key, versions, node.now_ms())
                else:
                    await node.transport.apply(replica, keyspace, [(key, versions)], me=node.me,
                                               epoch=doc.epoch)

    async def hand_off_all(self) -> None:
        targets = await asyncio.to_thread(self.node.store.hint_targets)
        for target in targets:
            if target not in self.node.document.members() or self.node.peers.is_up(target):
                await self.hand_off(target)

    # -- anti-entropy -------------------------------------------------------------------------

    async def anti_entropy(self) -> int:
        """One pass over every keyspace and peer; returns how many keys changed on either side."""
        node = self.node
        doc = node.document
        changed = 0
        for config in doc.all_keyspaces():
            layout = doc.read_layout(config.name)
            shared = defaultdict(list)
            for span, replicas in layout.spans_of(node.me):
                for peer in replicas:
                    if peer != node.me:
                        shared[peer].append(span)
            for peer, spans in sorted(shared.items()):
                if not node.peers.is_up(peer):
                    continue
                try:
                    changed += await self._sync(config.name, peer, join_spans(spans))
                except PeerUnreachable as e:
                    node.peers.mark_down(peer, str(e))
                except DcliError as e:
                    log.warning("anti-entropy with node %s: %s", peer, e)
        self.passes += 1
        self.keys_repaired += changed
        return changed

    async def _sync(self, keyspace: str, peer: str, spans: list) -> int:
        node = self.node
        store = node.store
        theirs = await node.transport.merkle_trees(peer, keyspace, spans, self.depth)
        mine = await asyncio.to_thread(lambda: [local_tree(store, keyspace, s, self.depth) for s in spans])
        suspect = []
        for span, a, b in zip(spans, mine, theirs):
            if a.root == b.root:
                continue
            suspect += [span] if isinstance(span, KeyRange) else list(diff(a, b).ranges)
        if not suspect:
            return 0
        remote = dict(await node.transport.range_hashes(peer, keyspace, suspect))
        local = dict(await asyncio.to_thread(local_hashes, store, keyspace, suspect))
        keys = sorted(differing_keys(local, remote))
        if not keys:
            return 0
        fetched = await node.transport.read(peer, keyspace, keys)
        ours = await asyncio.to_thread(lambda: [store.get(keyspace, k) for k in keys])
        changed = await asyncio.to_thread(store.apply_many, keyspace, list(zip(keys, fetched)), node.now_ms())
        send = [(k, v) for k, v in zip(keys, ours) if v and local.get(k) != remote.get(k)]
        if send:
            await node.transport.apply(peer, keyspace, send, me=node.me, epoch=node.document.epoch)
        if keys:
            log.info("anti-entropy with node %s on %s: %d key(s) differed", peer, keyspace, len(keys))
        return max(changed, 0) + len(send)
