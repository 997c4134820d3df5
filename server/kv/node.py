"""One node of the key-value store: its storage, its ring document, and its background work.

Every server process is a KV node; the nodes of `--peers` (or this one alone) are the ring at
first, and `dcli kv rebalance` changes it (membership.py). The node owns:

* the sqlite3 store under `<data-dir>/kv/`;
* its view of the ring document, which lives in the coordination tree's `/dcli/kv/ring`
  (ring_znode.py): read at start and again whenever the znode's watch fires, through one
  session on this node's own tree; a change is written there with compare-and-set and every
  node adopts it from its replica (a ring.json of an older build is migrated there once);
* the coordinator (coordinator.py) that serves client requests with quorums;
* the transport's list of members to talk to: each member's peer address, from the ring
  document (else `--peers`, else the client port + 1000);
* a heartbeat every `heartbeat_ms` to every member, which keeps the failure detector current
  and starts the hand-off of hints to nodes that are back;
* an anti-entropy pass every `anti_entropy_ms` (repair.py), which also collects old tombstones.

    node = KVNode(Path("/tmp/n1"), KVConfig(node_id=1), transport, tree=LocalSession(coord_node))
    await node.start("127.0.0.1:7181")
    await node.coordinator.write("default", b"k", b"v", None)
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection

from dcli.wire.errors import DcliError, MembershipError, UsageError
from dcli.wire.kv_keys import DEFAULT_KEYSPACE
from dcli.wire.peers import parse_member
from dcli_server.kv import membership
from dcli_server.kv.coordinator import Coordinator
from dcli_server.kv.membership import RANGE, KeyspaceConfig, NodeEntry, RingDocument
from dcli_server.kv.merkle import DEFAULT_DEPTH
from dcli_server.kv.peers import PeerTable
from dcli_server.kv.repair import Repairs
from dcli_server.kv.ring import DEFAULT_VNODES, RING_SIZE
from dcli_server.kv.ring_znode import ABSENT, RING_PATH, RingChangedError, RingZnode
from dcli_server.kv.store import DEFAULT_TOMBSTONE_GRACE_MS, KVStore
from dcli_server.kv.transport import PeerUnreachable, Transport

log = logging.getLogger("dcli.kv")

RING_READ_AT_START_S = 10.0     # the longest start waits for the tree to answer
ADOPT_WAIT_S = 10.0             # the longest a change waits for the nodes to adopt it
MEMBER_WAIT_S = 2.0             # how long a new member may take to reach this node's replica
CHANGE_ATTEMPTS = 3             # a change that can be recomputed is tried this often


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
    join: bool = False          # --join: not in the first ring, whatever --peers lists


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
    def __init__(self, data_dir: Path, config: KVConfig, transport: Transport, tree=None,
                 coord_members: Callable[[], Collection[int]] | None = None):
        """`tree`: a session on this node's coordination tree (LocalSession), where the ring
        document lives; None keeps it in this process only (tests of one node). `coord_members`:
        the ids of the coordination cluster's members, which alone may join the ring."""
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
        self.ring = RingZnode(tree, self.adopt_from_tree) if tree is not None else None
        self.ring_version = ABSENT           # the znode version our document came from
        self.coord_members = coord_members
        self._adopted = asyncio.Event()      # set (and replaced) whenever the document changes
        self._tasks: list[asyncio.Task] = []

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    @property
    def ring_path(self) -> Path:
        """Where an older build kept the ring (migrated into the tree at the first start)."""
        return self.dir / "ring.json"

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, address: str) -> None:
        peers = self.config.peers or {self.config.node_id: address}
        if self.config.join:        # joining a running cluster: the ring is the others' (or the tree's)
            peers = {i: a for i, a in peers.items() if i != self.config.node_id} or peers
        self.document = membership.bootstrap(peers, self.config.weights, self.config.vnodes,
                                             self.config.peer_addresses)
        self._tell_transport()
        if self.ring is not None:
            # a node not yet a member of the coordination cluster (started with --join, before
            # `cluster member add`) has no tree to read and is on no ring: its watch reads later
            if self.coord_members is None or self.config.node_id in self.coord_members():
                await self._read_ring()
            self.ring.start()
        self.peers.on_up.append(lambda node: self.coordinator.spawn(self.repairs.hand_off(node)))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every(self.config.heartbeat_ms, self.heartbeat)),
                       loop.create_task(self._every(self.config.anti_entropy_ms, self.anti_entropy, first=False))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ring is not None:
            await self.ring.stop()
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

    async def _read_ring(self) -> None:
        """The ring from the tree at start (at most RING_READ_AT_START_S: without a leader the
        node serves with what it has and follows the znode once the tree answers), a ring.json
        of an older build migrated into the tree first."""
        try:
            doc, version = await self.ring.read(timeout=RING_READ_AT_START_S)
            saved = membership.load(self.ring_path)
            if saved is not None:
                if doc is None and saved.epoch > 0:
                    try:
                        version = await self.ring.write(saved, version)
                        doc = saved
                        log.warning("kv: ring epoch %d migrated from %s into %s", saved.epoch,
                                    self.ring_path, RING_PATH)
                    except RingChangedError:
                        doc, version = await self.ring.read()
                aside = self.ring_path.with_name(self.ring_path.name + ".migrated")
                self.ring_path.rename(aside)
                log.warning("kv: the ring lives in %s now; %s renamed to %s", RING_PATH,
                            self.ring_path.name, aside.name)
        except DcliError as e:
            log.warning("kv: the ring cannot be read from %s yet (%s): serving with the epoch-%d "
                        "document until it can", RING_PATH, e, self.document.epoch)
            return
        if doc is not None:
            self.adopt_from_tree(doc, version)

    def adopt_from_tree(self, doc: RingDocument, version: int) -> bool:
        """Take the znode's document if its version is newer than the one ours came from."""
        if version <= self.ring_version:
            return False
        self.ring_version = version
        return self.adopt(doc)

    def adopt(self, doc: RingDocument) -> bool:
        """Use `doc` from now on (when it differs from ours)."""
        if doc == self.document:
            return False
        if doc.epoch != self.document.epoch or doc.epoch > 0:
            log.warning("kv: ring epoch %d -> %d%s", self.document.epoch, doc.epoch,
                        " (moving ranges)" if doc.moving else "")
        self.document = doc
        self._tell_transport()
        self._adopted.set()
        self._adopted = asyncio.Event()
        return True

    async def commit(self, doc: RingDocument, version: int) -> int:
        """Write `doc`, computed from the document of znode version `version` (take both from
        `snapshot()`, together), to the tree with compare-and-set on that version, and use it;
        the version it got. RingChangedError when the ring changed meanwhile. Without a tree
        (a node in a unit test) it is only used here."""
        if self.ring is None:
            self.adopt(doc)
            return version + 1
        written = await self.ring.write(doc, version)
        self.adopt_from_tree(doc, written)
        return written

    def snapshot(self) -> tuple[RingDocument, int]:
        """Our document and the znode version it came from (ABSENT: the bootstrap)."""
        return self.document, self.ring_version

    async def wait_epoch(self, epoch: int, timeout: float = ADOPT_WAIT_S) -> bool:
        """Until this node holds a document of `epoch` or later (its watch brings it); False if
        not within timeout."""
        if self.ring is None:           # nothing but this process could change it
            return self.document.epoch >= epoch
        deadline = time.monotonic() + timeout
        while self.document.epoch < epoch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.ring.refresh()
            try:
                await asyncio.wait_for(self._adopted.wait(), min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass
        return True

    async def wait_members(self, epoch: int, timeout: float = ADOPT_WAIT_S) -> list[str]:
        """Until every member of the ring (old and new) says it holds `epoch` or later; returns
        the members that did not within timeout or could not be reached."""
        deadline = time.monotonic() + timeout

        async def holds(node: str) -> str | None:
            while True:
                try:
                    if (await self.transport.status(node))["epoch"] >= epoch:
                        self.peers.mark_up(node)
                        return None
                except PeerUnreachable as e:
                    self.peers.mark_down(node, str(e))
                    return node
                if time.monotonic() >= deadline:
                    return node
                await asyncio.sleep(0.1)
        others = [n for n in self.document.members() if n != self.me]
        return [n for n in await asyncio.gather(*(holds(n) for n in others)) if n]

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

    async def check_coordination_member(self, node: str, timeout: float = MEMBER_WAIT_S) -> None:
        """A node joins the ring only as a member of the coordination cluster: it reads the ring
        from its replica of the tree. (This node's replica may apply a member just added a
        moment after the leader: it is given `timeout` to.)"""
        if self.coord_members is None:
            return
        deadline = time.monotonic() + timeout
        while not (node.isdigit() and int(node) in self.coord_members()):
            if time.monotonic() >= deadline:
                raise MembershipError(message=f"Membership change refused: node {node} is not a member of the "
                                              "coordination cluster; add it first (`dcli cluster member add`)")
            await asyncio.sleep(0.1)

    async def heartbeat(self) -> None:
        """Failure detection, and hinted hand-off to nodes that answer again."""
        doc = self.document

        async def ping(node: str) -> None:
            try:
                await self.transport.ping(node, self.me, doc.epoch)
            except PeerUnreachable as e:
                self.peers.mark_down(node, str(e))
                return
            self.peers.mark_up(node)
        await asyncio.gather(*(ping(n) for n in doc.members() if n != self.me))
        await self.repairs.hand_off_all()

    async def anti_entropy(self) -> int:
        changed = await self.repairs.anti_entropy()
        await asyncio.to_thread(self.store.collect_tombstones, self.now_ms())
        return changed

    async def create_keyspace(self, config: KeyspaceConfig) -> RingDocument:
        """A new document with the keyspace; recomputed on the newer ring when another change
        got to the tree first (a few times at most). It answers once every member that can be
        reached holds the new document (their watches bring it), so that a request to any node
        right after finds the keyspace there."""
        for attempt in range(CHANGE_ATTEMPTS):
            try:
                doc, version = self.snapshot()
                await self.commit(doc.with_keyspace(config), version)
                behind = await self.wait_members(self.document.epoch)
                if behind:
                    log.warning("kv: keyspace %s created at epoch %d; node(s) %s do not hold it yet",
                                config.name, self.document.epoch, ", ".join(behind))
                return self.document
            except RingChangedError:        # the newer ring is ours now: compute on it again
                if attempt == CHANGE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

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
