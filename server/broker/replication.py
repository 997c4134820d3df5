"""The broker's replicas, driven by the coordination tree: a mixin of Broker (broker.py).

What the tree says (BrokerMembership's partition states, written by the controller and by
leaders) arrives here one change at a time, in order, on the event loop:

- a partition this broker is a replica of opens (its directory and log made if new), as a
  follower of nobody until its state says who leads (a restarted leader must not take writes on
  its own);
- leader = this broker: it leads (`Partition.become_leader`): it takes produce requests and
  fetches, learns each follower's log end from the offsets they fetch at, keeps the high
  watermark at the smallest log end in the ISR, and changes the ISR in the tree itself (a
  follower behind for `replica.lag.time.max.ms` leaves, one that caught up comes back), with
  the state znode's version, so that a controller's change in between wins;
- leader = another broker: it follows, through a ReplicaFetcher per leader (fetcher.py);
- a deleted topic closes and removes its local partitions; after each full read of the tree,
  partition directories of topics the tree no longer has (deleted while this node was down)
  are removed.

Each consumer group has one coordinator among the live brokers (`coordinator_for`).
"""
from __future__ import annotations

import asyncio
import logging
import zlib

from dcli.wire import errors
from dcli.wire.errors import CoordinatorNotAvailableError, UnknownTopicOrPartitionError
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.fetcher import ReplicaFetcher
from dcli_server.broker.partition import Partition

log = logging.getLogger("dcli.replication")

READY_WAIT_S = 10.0                    # how long a request waits for a starting broker's registration
ISR_RETRY_S = 0.5                      # a failed ISR write is not tried again sooner


class Replication:
    """The replica side of Broker; see the module's docstring. Uses the Broker's `_partitions`,
    `_topics`, `_dirs`, `_dirty`, `_tasks`, `_appended` and `_open_partition`."""

    def __init__(self) -> None:
        self.membership = None
        self._changes: asyncio.Queue | None = None
        self._fetchers: dict[int, ReplicaFetcher] = {}
        self._following: dict[tuple[str, int], int] = {}     # partition -> the leader fetched from
        self._isr_changing: set[tuple[str, int]] = set()
        self._isr_retry_at: dict[tuple[str, int], float] = {}    # after a failed ISR write
        self._applied = asyncio.Event()     # set (and replaced) after each change acted on
        self._scanned = asyncio.Event()     # set once the first full read of the tree is acted on

    # -- wiring -------------------------------------------------------------------------------

    def attach(self, membership) -> None:
        """Act on `membership`'s view of the tree from now on (call on the event loop)."""
        loop = asyncio.get_running_loop()
        self.membership = membership
        self._changes = asyncio.Queue()

        def state(topic: str, p: int, st: meta.PartitionState) -> None:       # the agent's thread
            known = membership.partition_states.get((topic, p))
            version = known[1] if known is not None else -1
            found = membership.topics.get(topic)
            if found is not None:
                loop.call_soon_threadsafe(self._changes.put_nowait, ("state", topic, p, st, version, found))

        def deleted(topic: str) -> None:
            loop.call_soon_threadsafe(self._changes.put_nowait, ("deleted", topic))

        def scanned(topics: dict[str, str]) -> None:
            loop.call_soon_threadsafe(self._changes.put_nowait, ("scanned", topics))

        membership.on_topic_deleted = deleted
        membership.on_scanned = scanned
        membership.add_partition_listener(state)
        self._tasks.append(loop.create_task(self._apply_changes()))
        self._tasks.append(loop.create_task(self._watch_isr()))

    @property
    def brokers(self) -> list[int]:
        """The live brokers (registered in the tree)."""
        if self.membership is None:
            return [self.broker_id]
        return sorted(self.membership.brokers) or [self.broker_id]

    def broker_infos(self) -> list[tuple[int, str, int]]:
        if self.membership is None:
            return [(self.broker_id, self.host, self.port)]
        return [(b.broker_id, b.host, b.port) for _, b in sorted(self.membership.brokers.items())]

    def coordinator_for(self, group_id: str) -> tuple[int, str, int]:
        """The live broker that coordinates `group_id`: the highest of hash(group, broker)
        (rendezvous hashing), so that a broker's death moves only the groups it coordinated."""
        live = self.membership.brokers if self.membership is not None else {}
        if not live or not self.membership.registered.is_set():
            raise CoordinatorNotAvailableError()
        key = group_id.encode()
        best = max(live.values(), key=lambda b: (zlib.crc32(key + b"/" + str(b.broker_id).encode()), b.broker_id))
        return best.broker_id, best.host, best.port

    @property
    def coordination_epoch(self) -> int:
        """Changes whenever group coordinators may have moved (see Groups.ensure_loaded)."""
        return self.membership.brokers_version if self.membership is not None else 0

    @property
    def controller_id(self) -> int:
        return self.membership.controller_id if self.membership is not None else -1

    async def ready(self) -> None:
        """Wait (a bounded time) until this broker has registered and acted on what the tree
        said when it did: a request right after a start finds the topics as they were."""
        if not self._scanned.is_set():
            try:
                await asyncio.wait_for(self._scanned.wait(), READY_WAIT_S)
            except asyncio.TimeoutError:
                pass                # answer with what is known; the client retries

    # -- applying the tree's changes (one at a time, in order) -----------------------------------

    async def _apply_changes(self) -> None:
        while True:
            change = await self._changes.get()
            try:
                if change[0] == "state":
                    await self._apply_state(*change[1:])
                elif change[0] == "deleted":
                    await self._drop_topic(change[1])
                else:
                    await self._remove_strays(change[1])
                    self._scanned.set()
            except Exception:      # noqa: BLE001 - one bad change must not stop the others
                log.exception("broker %s: applying %s failed", self.broker_id, change[:3])
            self._applied.set()
            self._applied = asyncio.Event()

    async def _apply_state(self, topic: str, index: int, state: meta.PartitionState, version: int,
                           assignment: meta.TopicAssignment) -> None:
        if index >= assignment.partitions or self.broker_id not in assignment.replicas[index]:
            return
        p = await self._local(topic, index, assignment)
        if p is None or version <= p.state_version:
            return
        replicas = assignment.replicas[index]
        key = (topic, index)
        if state.leader == self.broker_id:
            self._unfollow(key)
            was = p.is_leader and p.leader_epoch == state.leader_epoch
            p.become_leader(state.leader_epoch, state.isr, replicas, version=version,
                            controller_epoch=state.controller_epoch)
            if not was:
                log.info("broker %s leads %s, epoch %s, isr %s", self.broker_id, p.name, state.leader_epoch,
                         list(state.isr))
            return
        same = (not p.is_leader and p.leader_id == state.leader and p.leader_epoch == state.leader_epoch
                and self._following.get(key) == state.leader)
        p.become_follower(state.leader, state.leader_epoch, state.isr, replicas, version=version,
                          controller_epoch=state.controller_epoch)
        if same:
            return
        self._unfollow(key)
        if state.leader != meta.NO_LEADER:
            log.info("broker %s follows %s for %s, epoch %s", self.broker_id, state.leader, p.name,
                     state.leader_epoch)
            self._follow(key, p, state.leader)

    async def _local(self, topic: str, index: int, assignment: meta.TopicAssignment) -> Partition | None:
        """The local replica, opened (with the topic's other local ones) if it is new here."""
        known = self._topics.get(topic)
        if known is not None and known.topic_id != assignment.topic_id:
            await self._drop_topic(topic)          # an older topic of the same name
        parts = self._partitions.get(topic, [])
        if index >= len(parts):
            first = len(parts)

            def work() -> list[Partition | None]:
                opened: list[Partition | None] = []
                try:
                    for i in range(first, assignment.partitions):
                        opened.append(self._open_partition(assignment, i))
                except BaseException:
                    close_logs([p for p in opened if p is not None])
                    raise
                return opened
            try:
                parts = parts + await asyncio.to_thread(work)
            except OSError as e:
                log.error("broker %s: cannot open %s locally: %s", self.broker_id, topic, e)
                return None
            self._partitions[topic] = parts
            self._topics[topic] = assignment
        return parts[index] if index < len(parts) else None

    def _open_partition(self, assignment: meta.TopicAssignment, i: int) -> Partition | None:
        """Partition i if this broker is one of its replicas (else None), following nobody."""
        replicas = assignment.replicas[i]
        if self.broker_id not in replicas:
            return None
        configs = assignment.configs
        path = self._dirs.ensure(assignment.name, assignment.topic_id, i)
        p = Partition.open(path, assignment.name, i, assignment.topic_id, self.config.log_config(configs),
                           broker_id=self.broker_id, replicas=replicas)
        p.min_insync_replicas = int(configs.get("min.insync.replicas", self.config.min_insync_replicas))
        p.hw_counts_durable = self.fsync == "always"
        p.become_follower(meta.NO_LEADER, p.leader_epoch, (), replicas, version=-1, controller_epoch=0)
        return p

    async def _drop_topic(self, topic: str) -> None:
        parts = [p for p in self._partitions.pop(topic, []) if p is not None]
        for p in parts:
            self._unfollow((topic, p.index))
            p.detach(UnknownTopicOrPartitionError())
            self._dirty.discard(p)

        def work() -> None:
            close_logs(parts)
            self._dirs.delete(topic)
        try:
            await asyncio.to_thread(work)
            if parts:
                log.info("broker %s: topic %s deleted here", self.broker_id, topic)
        except OSError as e:
            log.error("broker %s: deleting %s failed: %s", self.broker_id, topic, e)
        finally:
            self._topics.pop(topic, None)       # now gone here (DeleteTopics waits for it)

    async def _remove_strays(self, topics: dict[str, str]) -> None:
        """After a full read of the tree: directories of topics it does not have go."""
        try:
            await asyncio.to_thread(self._dirs.remove_strays, topics, list(self._partitions))
        except OSError as e:
            log.error("broker %s: removing stray partition directories failed: %s", self.broker_id, e)

    # -- following --------------------------------------------------------------------------------

    def _follow(self, key: tuple[str, int], p: Partition, leader: int) -> None:
        fetcher = self._fetchers.get(leader)
        if fetcher is None or fetcher.stopped:
            fetcher = self._fetchers[leader] = ReplicaFetcher(self, leader)
        self._following[key] = leader
        fetcher.add(key, p)

    def _unfollow(self, key: tuple[str, int]) -> None:
        leader = self._following.pop(key, None)
        fetcher = self._fetchers.get(leader) if leader is not None else None
        if fetcher is not None:
            fetcher.remove(key)
            if fetcher.idle:
                fetcher.stop()
                del self._fetchers[leader]

    def _stop_fetchers(self) -> None:
        for f in list(self._fetchers.values()):
            f.stop()

    def replica_appended(self, p: Partition) -> None:
        """A follower wrote the leader's batches: fsync them like any append."""
        self._appended(p)

    # -- leading: the ISR ------------------------------------------------------------------------

    def _isr_may_grow(self, p: Partition) -> None:
        grown = tuple(b for b in p.replicas if b in p.isr or (
            b in p.followers and p.followers[b].log_end_offset >= p.high_watermark))
        if grown != p.isr:
            self._change_isr(p, grown)

    async def _watch_isr(self) -> None:
        max_lag_s = self.config.replica_lag_time_max_ms / 1000
        while True:
            await asyncio.sleep(max_lag_s / 2)
            for p in self._local_partitions():
                if p.is_leader and p.failed is None:
                    lagging = p.lagging(max_lag_s)
                    if lagging:
                        log.info("broker %s: %s shrinks its ISR: %s fell behind", self.broker_id, p.name, lagging)
                        self._change_isr(p, tuple(b for b in p.isr if b not in lagging))

    def _change_isr(self, p: Partition, isr: tuple[int, ...]) -> None:
        key = (p.topic, p.index)
        loop = asyncio.get_running_loop()
        if key in self._isr_changing or self.membership is None or loop.time() < self._isr_retry_at.get(key, 0):
            return
        self._isr_changing.add(key)
        state = meta.PartitionState(self.broker_id, p.leader_epoch, isr, p.controller_epoch)
        epoch, version = p.leader_epoch, p.state_version

        async def write() -> None:
            try:
                new_version = await asyncio.to_thread(self._write_state, p.topic, p.index, state, version)
            except (errors.DcliError, meta.MetadataError) as e:
                log.info("broker %s: ISR change of %s not written (%s)", self.broker_id, p.name, e)
                self._isr_retry_at[key] = loop.time() + ISR_RETRY_S
                return
            finally:
                self._isr_changing.discard(key)
            if p.is_leader and p.leader_epoch == epoch and p.state_version == version:
                p.isr, p.state_version = isr, new_version
                p.update_high_watermark()
                log.info("broker %s: %s ISR is now %s", self.broker_id, p.name, list(isr))
        loop.create_task(write())

    def _write_state(self, topic: str, index: int, state: meta.PartitionState, version: int) -> int:
        """Kafka's AlterPartition in ZooKeeper mode: the leader writes its ISR with the version
        it acts on; a controller's change in between makes it fail (BadVersionError)."""
        return self.membership.client().set(meta.state_path(topic, index), state.encode(), version).version


def close_logs(parts: list[Partition]) -> None:
    for p in parts:
        try:
            p.log.close()
        except OSError as e:
            log.error("broker: closing %s failed: %s", p.name, e)
