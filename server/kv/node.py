"""One node of the key-value store: its storage, its ring document, and its background work.

Every server process is a KV node; the nodes of `--peers` (or this one alone) are the ring at
first, and `dcli kv rebalance` changes it (membership.py). The node owns:

* the sqlite3 store under `<data-dir>/kv/` and the ring document beside it (`ring.json`);
* the coordinator (coordinator.py) that serves client requests with quorums;
* the transport's list of members to talk to: each member's peer address, from the ring
  document (an older ring.json has none: then `--peers`, else the client port + 1000);
* a heartbeat every `heartbeat_ms` to every member, which keeps the failure detector current,
  exchanges ring epochs (the newer document wins, and is fetched or pushed), and starts the
  handoff of hints to nodes that are back;
* an anti-entropy pass every `anti_entropy_ms` (repair.py), which also collects old tombstones.

    node = KVNode(Path("/tmp/n1"), KVConfig(node_id=1), transport)
    await node.start("127.0.0.1:7181")
    await node.coordinator.write("default", b"k", b"v", None)
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from dcli.wire.errors import UsageError
from dcli.wire.kv_keys import DEFAULT_KEYSPACE
from dcli.wire.peers import parse_member
from dcli_server.kv import membership
from dcli_server.kv.coordinator import Coordinator
from dcli_server.kv.membership import RANGE, KeyspaceConfig, NodeEntry, RingDocument
from dcli_server.kv.merkle import DEFAULT_DEPTH
from dcli_server.kv.peers import PeerTable
from dcli_server.kv.repair import Repairs
from dcli_server.kv.ring import DEFAULT_VNODES, RING_SIZE
from dcli_server.kv.store import DEFAULT_TOMBSTONE_GRACE_MS, KVStore
from dcli_server.kv.transport import PeerUnreachable, Transport

log = logging.getLogger("dcli.kv")


@dataclass
class KVConfig:
    node_id: int = 1
    peers: dict[int, str] = field(default_factory=dict)       # {} = this node alone
    peer_addresses: dict[int, str] = field(default_factory=dict)    # --peers' peer addresses (and this node's)
    weights: dict[int, float] = field(default_factory=dict)   # --kv-weights; 1 when not given
    vnodes: int = DEFAULT_VNODES
    heartbeat_ms: int = 1000
    anti_entropy_ms: int = 30_000
    request_timeout_ms: int = 2000
    merkle_depth: int = DEFAULT_DEPTH
    synchronous: str = "FULL"
    tombstone_grace_ms: int = DEFAULT_TOMBSTONE_GRACE_MS


class GroupCommit:
    """Replica writes that arrive while a transaction commits wait and go together in the next
    one: one fsync for many writes, each answered only once it is durable."""

    def __init__(self, store: KVStore, now_ms):
        self.store, self.now_ms = store, now_ms
        self._pending: list = []
        self._running = False

    async def apply(self, keyspace: str, entries) -> None:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((keyspace, entries, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self.store.apply_groups, [(ks, e) for ks, e, _ in batch], self.now_ms())
                except Exception as e:  # noqa: BLE001 - each waiter gets the failure
                    for _, _, f in batch:
                        if not f.done():
                            f.set_exception(e)
                    continue
                for _, _, f in batch:
                    if not f.done():
                        f.set_result(None)
        finally:
            self._running = False


class KVNode:
    def __init__(self, data_dir: Path, config: KVConfig, transport: Transport):
        self.config = config
        self.me = str(config.node_id)
        self.dir = Path(data_dir) / "kv"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = KVStore(self.dir / "kv.sqlite3", synchronous=config.synchronous,
                             tombstone_grace_ms=config.tombstone_grace_ms)
        self.transport = transport
        self.peers = PeerTable()
        self.document = membership.bootstrap({config.node_id: ""}, config.weights, config.vnodes)
        self.coordinator = Coordinator(self.me, self.store, lambda: self.document, self.peers, transport,
                                       self.now_ms)
        self.repairs = Repairs(self, config.merkle_depth)
        self.group_commit = GroupCommit(self.store, self.now_ms)
        self._tasks: list[asyncio.Task] = []

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    @property
    def ring_path(self) -> Path:
        return self.dir / "ring.json"

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, address: str) -> None:
        peers = self.config.peers or {self.config.node_id: address}
        booted = membership.bootstrap(peers, self.config.weights, self.config.vnodes, self.config.peer_addresses)
        saved = membership.load(self.ring_path)
        self.document = saved if saved is not None and saved.epoch > 0 else booted
        self._tell_transport()
        self.peers.on_up.append(lambda node: self.coordinator.spawn(self.repairs.hand_off(node)))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every(self.config.heartbeat_ms, self.heartbeat)),
                       loop.create_task(self._every(self.config.anti_entropy_ms, self.anti_entropy, first=False))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self.coordinator.drain(), timeout=2.0)
        except asyncio.TimeoutError:
            pass
        self.store.close()

    async def _every(self, interval_ms: int, work, first: bool = True) -> None:
        if not first:
            await asyncio.sleep(interval_ms / 1000)
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:       # noqa: BLE001 - a failed pass must not end the loop
                log.exception("kv: %s failed", work.__name__)
            await asyncio.sleep(interval_ms / 1000)

    # -- the ring document --------------------------------------------------------------------

    def adopt(self, doc: RingDocument) -> bool:
        """Take `doc` if it is newer than ours (persisted before it is used)."""
        if not doc.supersedes(self.document):
            return False
        membership.save(self.ring_path, doc)
        log.warning("kv: ring epoch %d -> %d%s", self.document.epoch, doc.epoch,
                    " (moving ranges)" if doc.moving else "")
        self.document = doc
        self._tell_transport()
        return True

    def peer_address(self, node: str, entry: NodeEntry | None = None) -> str:
        """Where `node`'s peer listener is: the document's word for it, else `--peers`', else its
        client port + 1000 ("" when none of these gives one)."""
        entry = entry or self.document.entry(node)
        if entry is not None and entry.peer:
            return entry.peer
        return self.default_peer(node, entry.address if entry is not None else "")

    def default_peer(self, node: str, address: str) -> str:
        """A peer address for a node that names none: `--peers`' for its id, else the default."""
        if node.isdigit() and int(node) in self.config.peer_addresses:
            return self.config.peer_addresses[int(node)]
        try:
            return parse_member(address).peer if address else ""
        except UsageError:
            return ""

    def _tell_transport(self) -> None:
        doc = self.document
        self.transport.set_members({n: self.peer_address(n) for n in doc.members() if n != self.me})

    async def publish(self, doc: RingDocument) -> list[str]:
        """Adopt `doc` here and push it to every member; returns the members not reached."""
        self.adopt(doc)
        text = doc.to_json()
        others = [n for n in sorted({*doc.members(), *self.document.members()}) if n != self.me]

        async def push(node: str) -> str | None:
            try:
                answer = RingDocument.from_json(await self.transport.membership(node, text))
                self.peers.mark_up(node)
                self.adopt(answer)
                return None
            except PeerUnreachable as e:
                self.peers.mark_down(node, str(e))
                return node
        return [n for n in await asyncio.gather(*(push(n) for n in others)) if n]

    def on_membership(self, text: str) -> str:
        if text:
            self.adopt(RingDocument.from_json(text))
        return self.document.to_json()

    def on_ping(self, sender: str, epoch: int, digest: str) -> tuple[int, str]:
        doc = self.document
        if (epoch, digest) != (doc.epoch, doc.digest) and epoch >= doc.epoch and epoch > 0 \
                and sender in doc.members():
            self.coordinator.spawn(self._fetch(sender))
        return doc.epoch, doc.digest

    async def _fetch(self, node: str) -> None:
        try:
            self.on_membership(await self.transport.membership(node, ""))
        except PeerUnreachable as e:
            self.peers.mark_down(node, str(e))

    async def heartbeat(self) -> None:
        doc = self.document

        async def ping(node: str) -> None:
            try:
                epoch, digest = await self.transport.ping(node, self.me, doc.epoch, doc.digest)
            except PeerUnreachable as e:
                self.peers.mark_down(node, str(e))
                return
            self.peers.mark_up(node)
            if (epoch, digest) == (doc.epoch, doc.digest):
                return
            try:
                theirs = await self.transport.membership(node, "")
                if not self.on_membership(theirs) and self.document.supersedes(RingDocument.from_json(theirs)):
                    await self.transport.membership(node, self.document.to_json())
            except PeerUnreachable as e:
                self.peers.mark_down(node, str(e))
        await asyncio.gather(*(ping(n) for n in doc.members() if n != self.me))
        await self.repairs.hand_off_all()

    async def anti_entropy(self) -> int:
        changed = await self.repairs.anti_entropy()
        await asyncio.to_thread(self.store.collect_tombstones, self.now_ms())
        return changed

    async def create_keyspace(self, config: KeyspaceConfig) -> RingDocument:
        doc = self.document.with_keyspace(config)
        await self.publish(doc)
        return self.document

    # -- views ---------------------------------------------------------------------------------

    def stats(self) -> dict:
        keys = {ks: self.store.count(ks) for ks in self.store.keyspaces()}
        return {"node": self.me, "epoch": self.document.epoch, "keys": keys,
                "hints": sum(self.store.hint_targets().values()), "load_bytes": self.store.load_bytes()}

    async def ring_view(self, keyspace: str = "") -> dict:
        """Every member with its weight, vnodes, shares, keys, hints and up/down, as this node sees it."""
        doc = self.document
        keyspace = keyspace or DEFAULT_KEYSPACE
        layout = doc.layout(keyspace)
        config = layout.config

        async def stats_of(node: str) -> dict | None:
            if node == self.me:
                return await asyncio.to_thread(self.stats)
            try:
                found = await self.transport.status(node)
                self.peers.mark_up(node)
                return found
            except PeerUnreachable as e:
                self.peers.mark_down(node, str(e))
                return None
        members = doc.members()
        found = await asyncio.gather(*(stats_of(n) for n in members))
        shares, effective = {}, {}
        if layout.ring is not None:
            shares = layout.ring.shares()
            for span, replicas in layout.replica_spans():
                for r in replicas:
                    effective[r] = effective.get(r, 0) + span.width / RING_SIZE
        else:
            count = len(layout.shards.shards)
            for shard in layout.shards.shards:
                shares[shard.replicas[0]] = shares.get(shard.replicas[0], 0) + 1 / count
                for r in shard.replicas[:layout.n]:
                    effective[r] = effective.get(r, 0) + 1 / count
        nodes = []
        for node, stats in zip(members, found):
            entry = doc.nodes.get(node) or doc.previous[node]
            state = "normal"
            if doc.moving and node not in doc.previous:
                state = "joining"
            elif node not in doc.nodes:
                state = "leaving"
            up = stats is not None
            nodes.append({"id": node, "address": entry.address, "weight": entry.weight,
                          "vnodes": layout.ring.vnode_count(node) if layout.ring is not None and node in doc.nodes else 0,
                          "share": shares.get(node, 0.0), "effective": effective.get(node, 0.0),
                          "keys": sum(stats["keys"].values()) if up else -1, "up": up, "state": state,
                          "hints": stats["hints"] if up else -1, "load_bytes": stats["load_bytes"] if up else -1})
        keyspaces = []
        for ks in doc.all_keyspaces():
            lay = doc.layout(ks.name)
            n, r, w = ks.quorum(len(lay.nodes))
            shards = [{"start": s.range.start, "end": s.range.end, "replicas": list(s.replicas[:lay.n])}
                      for s in lay.shards.shards] if ks.sharding == RANGE else []
            keyspaces.append({"name": ks.name, "n": n, "r": r, "w": w, "consistency": ks.consistency,
                              "sharding": ks.sharding, "shards": shards})
        return {"epoch": doc.epoch, "vnodes": doc.vnodes, "nodes": nodes, "keyspaces": keyspaces,
                "answered_by": self.me, "moving": doc.moving, "document": doc.to_json(),
                "keyspace": config.name}
