"""The broker of a node in a cluster: partitions replicated across brokers, as Kafka does it.

    broker = ReplicatedBroker(data_dir / "broker", BrokerConfig(broker_id=2), peers=listener.brokers)
    await broker.start()                  # hosted partitions open as followers of nobody
    membership = start_membership(node, 2, host, port, broker_config=broker.config)
    broker.attach(membership)             # from now on the tree says who leads what

What the tree says (BrokerMembership's partition states, written by the controller and by
leaders) arrives here one change at a time, in order, on the event loop:

- a partition this broker is a replica of opens (its directory and log made if new);
- leader = this broker: it leads (`Partition.become_leader`): it takes produce requests and
  fetches, learns each follower's log end from the offsets they fetch at, keeps the high
  watermark at the smallest log end in the ISR, and changes the ISR in the tree itself (a
  follower behind for `replica.lag.time.max.ms` leaves, one that caught up comes back), with
  the state znode's version, so that a controller's change in between wins;
- leader = another broker: it follows. A `_Fetcher` per leader broker first asks where this
  replica's last leader epoch ends in the leader's log (OffsetForLeaderEpoch) and truncates
  there, then fetches with `replica_id` = this broker and appends the leader's batches as
  stored (offsets, leader epochs and producer state with them);
- a deleted topic closes and removes its local partitions.

Topics are created in the tree (by the controller, or proposed to it) and deleted there; the
metadata clients get (brokers, leaders, ISRs) is what the tree says. Producer ids come in blocks
reserved in the tree (/latest_producer_id_block, as Kafka kept them), so no two brokers hand
out the same id. Each consumer group has one coordinator among the live brokers
(`coordinator_for`), and its committed offsets live in the tree (TreeOffsetStore), so that the
next coordinator has them when one dies.
"""
from __future__ import annotations

import asyncio
import json
import logging
import zlib
from typing import Iterable

from dcli.v1 import broker_pb2 as pb
from dcli.wire import errors
from dcli.wire.errors import (
    BrokerError, CoordinatorNotAvailableError, InvalidRequestError, LeaderNotAvailableError,
    UnknownTopicOrPartitionError,
)
from dcli.wire.topics import is_internal, validate_topic
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.broker import (
    PRODUCER_ID_BLOCK, Broker, NewTopic, PartitionDescription, TopicDescription, TopicResult, _close_logs,
)
from dcli_server.broker.controller import check_topic_configs, plan_assignment, propose_topic
from dcli_server.broker.partition import Partition
from dcli_server.broker.peers import BrokerPeers, PeerUnreachable
from dcli_server.broker.topics import TopicInfo

log = logging.getLogger("dcli.replication")

PRODUCER_ID_BLOCK_PATH = "/latest_producer_id_block"
FETCH_WAIT_MS = 500                    # replica.fetch.wait.max.ms
FETCH_MAX_BYTES = 16 << 20             # replica.fetch.response.max.bytes (lower than Kafka's 10 MiB x n)
PARTITION_FETCH_BYTES = 1 << 20        # replica.fetch.max.bytes
RETRY_S = 0.1                          # replica.fetch.backoff.ms is 1000; loopback clusters recover faster
READY_WAIT_S = 10.0                    # how long a request waits for a starting broker's registration
ISR_RETRY_S = 0.5                      # a failed ISR write is not tried again sooner
CREATE_WAIT_S = 10.0                   # how long CreateTopics waits for the partitions' first states


class ReplicatedBroker(Broker):
    """See the module's docstring."""

    def __init__(self, *args, peers: BrokerPeers, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.peers = peers              # how this broker calls the others (the listener layer's)
        self.membership = None
        self._changes: asyncio.Queue | None = None
        self._fetchers: dict[int, _Fetcher] = {}
        self._following: dict[tuple[str, int], int] = {}     # partition -> the leader fetched from
        self._isr_changing: set[tuple[str, int]] = set()
        self._isr_retry_at: dict[tuple[str, int], float] = {}    # after a failed ISR write

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
                loop.call_soon_threadsafe(self._changes.put_nowait, ("state", topic, p, st, version, *found))

        def deleted(topic: str) -> None:
            loop.call_soon_threadsafe(self._changes.put_nowait, ("deleted", topic))

        membership.on_topic_deleted = deleted
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
            return super().broker_infos()
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

    def _open_partitions(self, info: TopicInfo, indexes: Iterable[int]) -> list[Partition | None]:
        """Only the partitions this broker is a replica of; they follow nobody until the tree
        says who leads (a restarted leader must not take writes on its own)."""
        out: list[Partition | None] = []
        for i in indexes:
            if self.broker_id not in info.replicas[i]:
                out.append(None)
                continue
            [p] = super()._open_partitions(info, [i])
            p.become_follower(meta.NO_LEADER, p.leader_epoch, (), info.replicas[i], version=-1,
                              controller_epoch=0)
            out.append(p)
        return out

    async def close(self) -> None:
        for f in list(self._fetchers.values()):
            f.stop()
        await super().close()

    # -- applying the tree's changes (one at a time, in order) -----------------------------------

    async def _apply_changes(self) -> None:
        while True:
            change = await self._changes.get()
            try:
                if change[0] == "state":
                    await self._apply_state(*change[1:])
                else:
                    await self._drop_topic(change[1])
            except Exception:      # noqa: BLE001 - one bad change must not stop the others
                log.exception("broker %s: applying %s failed", self.broker_id, change[:3])

    async def _apply_state(self, topic: str, index: int, state: meta.PartitionState, version: int,
                           assignment: meta.TopicAssignment, configs: dict[str, str]) -> None:
        if index >= assignment.partitions or self.broker_id not in assignment.replicas[index]:
            return
        p = await self._local(topic, index, assignment, configs)
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

    async def _local(self, topic: str, index: int, assignment: meta.TopicAssignment,
                     configs: dict[str, str]) -> Partition | None:
        """The local replica, opened (and the topic recorded locally) if it is new here."""
        info = self._store.get(topic)
        if info is not None and info.topic_id != assignment.topic_id:
            await self._drop_topic(topic)          # an older topic of the same name
            info = None
        if info is None:
            info = TopicInfo(topic, assignment.topic_id, assignment.replicas, dict(configs))

            def work() -> list[Partition | None]:
                self._store.create(info, hosted=self.broker_id)
                return self._open_partitions(info, range(info.partitions))
            try:
                self._partitions[topic] = await asyncio.to_thread(work)
            except OSError as e:
                log.error("broker %s: cannot create %s locally: %s", self.broker_id, topic, e)
                return None
        parts = self._partitions.get(topic, [])
        return parts[index] if index < len(parts) else None

    async def _drop_topic(self, topic: str) -> None:
        parts = [p for p in self._partitions.pop(topic, []) if p is not None]
        for p in parts:
            self._unfollow((topic, p.index))
            p.detach(UnknownTopicOrPartitionError())
            self._dirty.discard(p)
        if self._store.get(topic) is None:
            return

        def work() -> None:
            _close_logs(parts)
            self._store.delete(topic)
        try:
            await asyncio.to_thread(work)
            log.info("broker %s: topic %s deleted here", self.broker_id, topic)
        except OSError as e:
            log.error("broker %s: deleting %s failed: %s", self.broker_id, topic, e)

    # -- following --------------------------------------------------------------------------------

    def _follow(self, key: tuple[str, int], p: Partition, leader: int) -> None:
        fetcher = self._fetchers.get(leader)
        if fetcher is None or fetcher.stopped:
            fetcher = self._fetchers[leader] = _Fetcher(self, leader)
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

    # -- metadata and topics ------------------------------------------------------------------------

    def _describe_tree(self, name: str) -> TopicDescription:
        assignment = self.membership.topics[name][0]
        live = set(self.brokers)
        no_state = (meta.PartitionState(meta.NO_LEADER, -1, (), 0), -1)     # not written yet
        parts = []
        for i, replicas in enumerate(assignment.replicas):
            st = self.membership.partition_states.get((name, i), no_state)[0]
            parts.append(PartitionDescription(i, st.leader, st.leader_epoch, replicas, st.isr,
                                              tuple(b for b in replicas if b not in live)))
        overrides = {c.name: c.value for c in self._topic_configs(self._tree_topic(name)) if not c.is_default}
        return TopicDescription(name, assignment.topic_id, None, is_internal(name), parts, overrides)

    def _tree_topic(self, name: str) -> TopicInfo:
        """The topic as the tree has it, in the local store's form."""
        assignment, configs = self.membership.topics[name]
        return TopicInfo(name, assignment.topic_id, assignment.replicas, configs)

    async def metadata(self, topics: list[str] | None = None, *,
                       allow_auto_topic_creation: bool = False) -> list[TopicDescription]:
        if not self.membership.registered.is_set():      # starting: the tree is not read yet
            await asyncio.to_thread(self.membership.registered.wait, READY_WAIT_S)
        known = self.membership.topics
        if topics is None:
            return [self._describe_tree(n) for n in sorted(known)]
        out = []
        for name in topics:
            try:
                if name not in known:
                    validate_topic(name)
                    if not (allow_auto_topic_creation and self.config.auto_create_topics_enable):
                        raise UnknownTopicOrPartitionError()
                    await self._auto_create(name)
                    if name not in known:
                        raise LeaderNotAvailableError()
                out.append(self._describe_tree(name))
            except BrokerError as e:
                out.append(TopicDescription(name, error=e, is_internal=is_internal(name)))
        return out

    def topic_names(self) -> list[str]:
        return sorted(self.membership.topics) if self.membership is not None else []

    async def _auto_create(self, name: str) -> None:
        [result] = await self.create_topics([NewTopic(name)])
        if result.error is not None and not isinstance(result.error, errors.TopicExistsError):
            raise result.error
        log.info("broker %s: created topic %s on first use", self.broker_id, name)

    async def _partition_for_produce(self, topic: str, partition: int) -> Partition:
        if self.membership is not None and topic not in self.membership.topics:
            validate_topic(topic)
            if self.config.auto_create_topics_enable:
                await self._auto_create(topic)
        return self._lookup(topic, partition)

    async def create_topics(self, topics: list[NewTopic], *, validate_only: bool = False) -> list[TopicResult]:
        names = [t.name for t in topics]
        out = []
        for t in topics:
            try:
                if names.count(t.name) > 1:
                    raise InvalidRequestError(message=(
                        f"Create topics request contains multiple entries for the topic {t.name}."))
                if t.assignments:
                    raise InvalidRequestError(message=(
                        "Explicit replica assignments are not supported in cluster mode; "
                        "give --partitions and --replication-factor."))
                n = t.num_partitions if t.num_partitions != -1 else self.config.num_partitions
                rf = t.replication_factor if t.replication_factor != -1 else self.config.default_replication_factor
                assignment = await asyncio.to_thread(self._create_in_tree, t.name, n, rf, dict(t.configs),
                                                     validate_only)
                out.append(TopicResult(t.name, assignment.topic_id))
            except BrokerError as e:
                out.append(TopicResult(t.name, "", e))
            except (errors.NotConnectedError, errors.ConnectionLossError, errors.OperationTimeoutError,
                    errors.UnavailableError) as e:
                out.append(TopicResult(t.name, "", errors.RequestTimedOutError(message=(
                    f"The cluster's metadata cannot be reached: {e}"))))
        return out

    def _create_in_tree(self, name: str, partitions: int, rf: int, configs: dict[str, str],
                        validate_only: bool) -> meta.TopicAssignment:
        m = self.membership
        client = m.client(wait=READY_WAIT_S)
        if validate_only:
            check_topic_configs(configs, self.config)
            return plan_assignment(client, name, partitions, rf)
        if m.is_controller:
            try:
                assignment = m.controller.create_topic(name, partitions, rf, configs)
            except errors.NotControllerError:
                assignment = propose_topic(client, name, partitions, rf, configs, broker=self.config)
        else:
            assignment = propose_topic(client, name, partitions, rf, configs, broker=self.config)
        m.wait_for_states(name, assignment.partitions, CREATE_WAIT_S)
        return assignment

    async def delete_topics(self, names: list[str]) -> list[TopicResult]:
        out = []
        for name in names:
            found = self.membership.topics.get(name)
            if found is None:
                out.append(TopicResult(name, "", UnknownTopicOrPartitionError()))
                continue
            try:
                await asyncio.to_thread(self._delete_in_tree, name, found[0])
                out.append(TopicResult(name, found[0].topic_id))
            except errors.NoNodeError:
                out.append(TopicResult(name, "", UnknownTopicOrPartitionError()))
            except errors.DcliError as e:
                out.append(TopicResult(name, found[0].topic_id, errors.RequestTimedOutError(message=(
                    f"Deleting topic {name} failed: {e}"))))
        return out

    def _delete_in_tree(self, name: str, assignment: meta.TopicAssignment) -> None:
        client = self.membership.client(wait=READY_WAIT_S)
        t = client.transaction()
        for p in range(assignment.partitions):
            if client.exists(meta.state_path(name, p)):
                t.delete(meta.state_path(name, p))
            if client.exists(meta.partition_path(name, p)):
                t.delete(meta.partition_path(name, p))
        if client.exists(meta.partitions_path(name)):
            t.delete(meta.partitions_path(name))
        t.delete(meta.topic_path(name))
        if client.exists(meta.topic_config_path(name)):
            t.delete(meta.topic_config_path(name))
        t.commit()

    async def elect_leaders(self, partitions: list[tuple[str, int]] | None, *, unclean: bool = False,
                            forwarded: bool = False) -> dict[tuple[str, int], BrokerError | None]:
        """Done by the controller: this broker if it is the one, else forwarded to it once."""
        m = self.membership
        if m.is_controller:
            return await asyncio.to_thread(m.controller.elect_leaders, partitions, unclean=unclean)
        target = m.brokers.get(m.controller_id)
        if forwarded or target is None:
            raise errors.NotControllerError()
        request = pb.ElectLeadersRequest(election_type=1 if unclean else 0, forwarded=True,
                                         all_partitions=partitions is None,
                                         partitions=[pb.TopicPartition(topic=t, partition=i)
                                                     for t, i in partitions or ()])
        link = self.peers.link(target.broker_id)
        try:
            reply = await link.elect_leaders(request, timeout=30)
        except PeerUnreachable as e:
            raise errors.NotControllerError(message=(
                f"The controller (broker {target.broker_id}) cannot be reached: {e}")) from None
        finally:
            await link.close()
        if reply.error_code:
            raise errors.kafka_error(reply.error_code, reply.error_message)
        return {(r.topic, r.partition): errors.kafka_error(r.error_code, r.error_message) if r.error_code else None
                for r in reply.results}

    async def create_partitions(self, topic: str, count: int, *, validate_only: bool = False) -> TopicResult:
        return TopicResult(topic, "", InvalidRequestError(message=(
            "Adding partitions to a topic is not supported in cluster mode yet.")))

    def describe_configs(self, topic: str = "") -> list:
        if not topic:
            return super().describe_configs(topic)
        validate_topic(topic)
        if self.membership is None or topic not in self.membership.topics:
            raise UnknownTopicOrPartitionError()
        return self._topic_configs(self._tree_topic(topic))

    # -- producer ids ---------------------------------------------------------------------------------

    def _check_producer_id(self, producer_id: int) -> None:
        """Another broker may have handed it out: any id below the tree's block end is fine."""

    async def _reserve_producer_ids(self) -> tuple[int, int]:
        try:
            return await asyncio.to_thread(self._reserve_in_tree)
        except errors.DcliError as e:       # the tree is between leaders: the client tries again
            raise CoordinatorNotAvailableError(message=f"No producer id block could be reserved: {e}") from None

    def _reserve_in_tree(self) -> tuple[int, int]:
        client = self.membership.client(wait=READY_WAIT_S)
        while True:
            try:
                data, stat = client.get(PRODUCER_ID_BLOCK_PATH)
                start = int(json.loads(data.decode())["block_end"]) + 1
            except errors.NoNodeError:
                start, stat = 0, None
            doc = json.dumps({"version": 1, "broker": self.broker_id, "block_start": str(start),
                              "block_end": str(start + PRODUCER_ID_BLOCK - 1)}).encode()
            try:
                if stat is None:
                    client.create(PRODUCER_ID_BLOCK_PATH, doc)
                else:
                    client.set(PRODUCER_ID_BLOCK_PATH, doc, stat.version)
                return start, start + PRODUCER_ID_BLOCK
            except (errors.BadVersionError, errors.NodeExistsError):
                continue            # another broker took this block first


class _Fetcher:
    """Fetches, for every partition this broker follows with one leader, from that leader."""

    def __init__(self, broker: ReplicatedBroker, leader: int):
        self.broker = broker
        self.leader = leader
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._truncate: set[tuple[str, int]] = set()
        self._wake = asyncio.Event()
        self.stopped = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def idle(self) -> bool:
        return not self.partitions

    def add(self, key: tuple[str, int], p: Partition) -> None:
        self.partitions[key] = p
        self._truncate.add(key)
        self._wake.set()

    def remove(self, key: tuple[str, int]) -> None:
        self.partitions.pop(key, None)
        self._truncate.discard(key)

    def stop(self) -> None:
        self.stopped = True
        self._task.cancel()

    async def _run(self) -> None:
        link = self.broker.peers.link(self.leader)
        me = self.broker.broker_id
        try:
            while not self.stopped:
                if self.leader not in self.broker.membership.brokers:
                    await asyncio.sleep(RETRY_S)          # the leader is not registered (yet)
                    continue
                if not self.partitions:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                try:
                    for key in list(self._truncate):
                        await self._truncate_one(link, key)
                    await self._fetch(link, me)
                except PeerUnreachable as e:
                    log.debug("broker %s: fetch from %s: %s", me, self.leader, e)
                    await asyncio.sleep(RETRY_S)
                except errors.DcliError as e:          # the leader refused: not (yet) the leader, ...
                    log.info("broker %s: fetch from %s: %s", me, self.leader, e)
                    await asyncio.sleep(RETRY_S)
        except asyncio.CancelledError:
            pass
        finally:
            await link.close()

    async def _truncate_one(self, link, key: tuple[str, int]) -> None:
        """Truncate to where this replica's log diverges from the leader's (KIP-101, KIP-279)."""
        p = self.partitions.get(key)
        if p is None:
            self._truncate.discard(key)
            return
        epoch = p.last_epoch
        if epoch >= 0:
            reply = await link.offset_for_leader_epoch(pb.OffsetForLeaderEpochRequest(
                replica_id=self.broker.broker_id, topic=key[0], partition=key[1],
                current_leader_epoch=p.leader_epoch, leader_epoch=epoch), timeout=5)
            if reply.error_code:
                raise errors.kafka_error(reply.error_code, reply.error_message)
            if self.partitions.get(key) is not p:
                return
            if reply.leader_epoch < 0:
                target = reply.end_offset
            else:
                target = min(reply.end_offset, p.epoch_end(reply.leader_epoch)[1])
            if target < p.log_end_offset:
                log.info("broker %s: %s truncates from %s to %s (leader %s, epoch %s)", self.broker.broker_id,
                         p.name, p.log_end_offset, target, self.leader, p.leader_epoch)
                p.truncate(target)
        self._truncate.discard(key)

    async def _fetch(self, link, me: int) -> None:
        wanted = {k: p for k, p in self.partitions.items() if k not in self._truncate}
        if not wanted:
            return
        request = pb.FetchRequest(replica_id=me, max_wait_ms=FETCH_WAIT_MS, min_bytes=1, max_bytes=FETCH_MAX_BYTES,
                                  partitions=[pb.FetchPartition(topic=t, partition=i, fetch_offset=p.log_end_offset,
                                                                partition_max_bytes=PARTITION_FETCH_BYTES,
                                                                current_leader_epoch=p.leader_epoch)
                                              for (t, i), p in wanted.items()])
        reply = await link.fetch(request, timeout=FETCH_WAIT_MS / 1000 + 10)
        backoff = False
        for r in reply.partitions:
            key = (r.topic, r.partition)
            p = self.partitions.get(key)
            if p is None or p is not wanted.get(key) or p.failed is not None:
                continue
            if r.error_code == errors.OffsetOutOfRangeError.kafka_code:
                self._out_of_range(p, r)
                continue
            if r.error_code:
                backoff = True          # not leader (yet), fenced epoch: the tree will say more
                continue
            if r.records:
                try:
                    if p.append_replicated(r.records):
                        self.broker.replica_appended(p)
                except (BrokerError, OSError) as e:
                    log.error("broker %s: appending %s from %s failed: %s", me, p.name, self.leader, e)
                    backoff = True
                    continue
            p.set_high_watermark(min(r.high_watermark, p.log_end_offset))
        if backoff:
            await asyncio.sleep(RETRY_S)

    def _out_of_range(self, p: Partition, r) -> None:
        if p.log_end_offset < r.log_start_offset:
            log.info("broker %s: %s starts over at the leader's log start %s", self.broker.broker_id, p.name,
                     r.log_start_offset)
            p.restart_at(r.log_start_offset)
        elif p.log_end_offset > r.log_end_offset >= 0:
            p.truncate(r.log_end_offset)

