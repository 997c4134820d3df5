"""The broker of one node: topics and their partitions under `<data_dir>/broker/`, produce with
acks 0/1/all and idempotent producers, fetch with long polls, offsets, housekeeping.

    broker = Broker(data_dir / "broker", BrokerConfig(broker_id=1))
    await broker.start()
    [created] = await broker.create_topics([NewTopic("chat", 3)])
    [result] = await broker.produce(-1, 30000, [("chat", 0, batch_bytes)])
    [fetched] = await broker.fetch([FetchItem("chat", 0, 0)], max_wait_ms=500, min_bytes=1)
    await broker.close()

Everything runs on the server's event loop. Appends are plain writes and stay on it; fsync and
directory changes go to a thread. Durability (fsync "always", the default): every append marks
its partition dirty and wakes the committer, which fsyncs all dirty partitions in one round
(group commit: produce requests that arrive meanwhile share the next one; the partitions are
fsync'd in parallel when a producer or a consumer waits for the round) and then moves each
partition's durable offset and high watermark to the log end it saw before the fsync.
acks=all answers once the durable offset passes the batch; acks=1 once the batch is written;
acks=0 likewise, with no result. Consumers read below the high watermark only, so nobody sees
a record that a power cut could take back. With fsync "batch" the committer runs every 100 ms
and the high watermark follows the log end at once; with "off" nothing is fsync'd before close.

Domain errors are the BrokerError classes (Kafka's codes); results carry them per partition or
per topic so that one bad partition does not fail the others.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from dcli.wire.errors import (
    BrokerError, ElectionNotNeededError, FencedLeaderEpochError, InvalidProducerIdMappingError, InvalidRequestError,
    KafkaStorageError, NotEnoughReplicasAfterAppendError, NotEnoughReplicasError,
    NotLeaderOrFollowerError, RequestTimedOutError, UnknownLeaderEpochError, UnknownTopicOrPartitionError,
)
from dcli.wire.topics import is_internal, validate_topic
from dcli_server.broker.config import BrokerConfig, parse_properties
from dcli_server.broker.partition import Partition, split_batches
from dcli_server.storage.files import write_atomically
from dcli_server.broker.topics import (
    BrokerStateError, TopicInfo, TopicStore, new_topic_id, plan_partitions, plan_topic,
)

log = logging.getLogger(__name__)

DEFAULT_PRODUCE_TIMEOUT_MS = 30_000      # a request's 0 (proto3's "unset")
DEFAULT_PARTITION_MAX_BYTES = 1 << 20    # max.partition.fetch.bytes
MAX_FETCH_BYTES = 32 << 20               # a fetch answer stays well inside one gRPC message
PRODUCER_ID_BLOCK = 1000                 # ids reserved on disk at a time
MAX_PRODUCER_EPOCH = 32766               # Short.MAX_VALUE - 1: the next bump takes a new id
BATCH_FLUSH_INTERVAL_S = 0.1
FSYNC_THREADS = 8                        # partitions fsync'd at once in a group commit
META_FILE = "meta.properties"
PRODUCER_IDS_FILE = "producer-ids"
EARLIEST, LATEST = -2, -1


# -- requests and results ---------------------------------------------------------------------


@dataclass
class NewTopic:
    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str] = field(default_factory=dict)
    assignments: Mapping[int, list[int]] = field(default_factory=dict)


@dataclass
class TopicResult:
    name: str
    topic_id: str = ""
    error: BrokerError | None = None


@dataclass
class PartitionDescription:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


@dataclass
class TopicDescription:
    name: str
    topic_id: str = ""
    error: BrokerError | None = None
    is_internal: bool = False
    partitions: list[PartitionDescription] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)   # the non-default ones


@dataclass
class ConfigValue:
    name: str
    value: str
    is_default: bool
    read_only: bool = False


@dataclass
class ProduceResult:
    topic: str
    partition: int
    error: BrokerError | None = None
    base_offset: int = -1
    log_start_offset: int = -1


@dataclass
class FetchItem:
    topic: str
    partition: int
    fetch_offset: int
    partition_max_bytes: int = DEFAULT_PARTITION_MAX_BYTES
    current_leader_epoch: int = -1


@dataclass
class FetchResult:
    topic: str
    partition: int
    error: BrokerError | None = None
    high_watermark: int = -1
    log_start_offset: int = -1
    log_end_offset: int = -1
    records: bytes = b""


@dataclass
class OffsetResult:
    topic: str
    partition: int
    error: BrokerError | None = None
    offset: int = -1
    timestamp: int = -1


def _storage_error(exc: BaseException) -> KafkaStorageError:
    return KafkaStorageError(message=f"Disk error when trying to access log file on the disk: {exc}")


# -- the broker ---------------------------------------------------------------------------------


class Broker:
    def __init__(self, directory: Path, config: BrokerConfig | None = None, *,
                 fsync: str = "always", host: str = "127.0.0.1", port: int = 7181) -> None:
        if fsync not in ("always", "batch", "off"):
            raise ValueError(f"fsync must be always, batch or off, not {fsync!r}")
        self.directory = Path(directory)
        self.config = config or BrokerConfig()
        self.broker_id = self.config.broker_id if self.config.broker_id >= 0 else 1
        self.fsync = fsync
        self.host, self.port = host, port
        self.cluster_id = ""
        self._store: TopicStore | None = None
        self._partitions: dict[str, list[Partition | None]] = {}   # None: hosted elsewhere
        self._admin = asyncio.Lock()
        self._dirty: set[Partition] = set()
        self._dirty_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._pid_lock = asyncio.Lock()
        self._next_pid = 0
        self._pid_block_end = 0
        self._closed = False

    @property
    def brokers(self) -> list[int]:
        """The live brokers: this one."""
        return [self.broker_id]

    def broker_infos(self) -> list[tuple[int, str, int]]:
        """(id, host, port) of each live broker: this one."""
        return [(self.broker_id, self.host, self.port)]

    @property
    def controller_id(self) -> int:
        return self.broker_id

    def coordinator_for(self, group_id: str) -> tuple[int, str, int]:
        """(broker id, host, port) of the broker that coordinates `group_id`: this one."""
        return self.broker_id, self.host, self.port

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        loop = asyncio.get_running_loop()
        if self.fsync != "off":
            self._tasks.append(loop.create_task(self._committer()))
        self._tasks.append(loop.create_task(self._housekeeping()))

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load_meta()
        self._load_producer_ids()
        self._store = TopicStore(self.directory)
        opened: dict[str, list[Partition]] = {}
        try:
            for info in self._store.topics.values():
                opened[info.name] = self._open_partitions(info, range(info.partitions))
        except BaseException:
            for parts in opened.values():
                for p in parts:
                    p.log.close()
            raise
        self._partitions = opened

    def _open_partitions(self, info: TopicInfo, indexes: Iterable[int]) -> list[Partition]:
        out = []
        log_config = self.config.log_config(info.configs)
        min_isr = int(info.configs.get("min.insync.replicas", self.config.min_insync_replicas))
        try:
            for i in indexes:
                path = self._store.ensure_partition_dir(info, i)
                p = Partition.open(path, info.name, i, info.topic_id, log_config,
                                   broker_id=self.broker_id, replicas=info.replicas[i])
                p.min_insync_replicas = min_isr
                p.hw_counts_durable = self.fsync == "always"
                out.append(p)
        except BaseException:
            for p in out:
                p.log.close()
            raise
        return out

    def _load_meta(self) -> None:
        """meta.properties as Kafka keeps it: the cluster id and this node's id."""
        path = self.directory / META_FILE
        try:
            props = parse_properties(path.read_text())
        except FileNotFoundError:
            self.cluster_id = new_topic_id()
            write_atomically(path, (f"cluster.id={self.cluster_id}\nnode.id={self.broker_id}\n"
                                     "version=1\n").encode())
            return
        stored = props.get("node.id", props.get("broker.id"))
        if stored is not None and stored != str(self.broker_id):
            raise BrokerStateError(path, 0, f"configured broker.id {self.broker_id} does not match "
                                            f"stored node.id {stored}")
        self.cluster_id = props.get("cluster.id", "")

    def _load_producer_ids(self) -> None:
        path = self.directory / PRODUCER_IDS_FILE
        try:
            text = path.read_text().strip()
            self._pid_block_end = int(text)
        except FileNotFoundError:
            self._pid_block_end = 0
        except ValueError:
            raise BrokerStateError(path, 0, f"unreadable producer id block {text!r}") from None
        # The rest of the last block may have been handed out before a crash: never reuse it.
        self._next_pid = self._pid_block_end

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        parts = self._local_partitions()
        self._partitions = {}
        for p in parts:
            p.detach(KafkaStorageError(message="The broker is shutting down."))
        await asyncio.to_thread(_close_logs, parts)

    # -- durability -------------------------------------------------------------------------

    def _appended(self, p: Partition) -> None:
        end = p.log_end_offset
        if self.fsync == "always":
            self._dirty.add(p)
            self._dirty_event.set()
            return
        p.update_high_watermark()
        if self.fsync == "off":
            p.set_durable(end)
        else:
            self._dirty.add(p)

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.fsync == "always":
                await self._dirty_event.wait()
                self._dirty_event.clear()
            else:
                await asyncio.sleep(BATCH_FLUSH_INTERVAL_S)
            if not self._dirty:
                continue
            # The ends are read here, on the loop, before the fsync: it covers at least them.
            targets = [(p, p.log_end_offset) for p in self._dirty if p.failed is None]
            self._dirty.clear()
            parts = [p for p, _ in targets]
            # In parallel when someone waits (an acks=all producer, a consumer's long poll): a
            # round takes about one fsync instead of one per partition. Otherwise one after
            # the other, which makes rounds longer and so fewer: less CPU for fsyncs when only
            # acks=1 producers write.
            parallel = any(p.has_waiters() for p in parts)
            errors = await loop.run_in_executor(None, _flush_all, parts, parallel)
            for (p, end), err in zip(targets, errors):
                if err is not None:
                    if p.failed is None:
                        log.error("broker: fsync of %s failed; the partition goes offline: %s", p.name, err)
                        p.detach(_storage_error(err))
                    continue
                p.set_durable(end)      # and, leading, the high watermark it allows

    async def _housekeeping(self) -> None:
        interval = self.config.log_retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_housekeeping()
            except Exception:  # housekeeping must not die: retention would stop for good
                log.exception("broker: housekeeping failed")

    async def run_housekeeping(self) -> int:
        """Retention and compaction over every partition (each in a thread); returns the
        number of segments deleted."""
        deleted = 0
        for p in self._local_partitions():
            if p.failed is None:
                deleted += await asyncio.to_thread(_clean, p.log, p.high_watermark)
        return deleted

    # -- topics -----------------------------------------------------------------------------

    def _lookup(self, topic: str, partition: int) -> Partition:
        parts = self._partitions.get(topic)
        if parts is None or not 0 <= partition < len(parts):
            raise UnknownTopicOrPartitionError()
        p = parts[partition]
        if p is None:
            raise NotLeaderOrFollowerError()
        return p

    def _local_partitions(self) -> list[Partition]:
        return [p for parts in self._partitions.values() for p in parts if p is not None]

    def _describe(self, info: TopicInfo) -> TopicDescription:
        parts = [PartitionDescription(p.index, p.leader_id, p.leader_epoch, p.replicas, p.isr,
                                      tuple(b for b in p.replicas if b not in self.brokers))
                 for p in self._partitions[info.name]]
        configs = {c.name: c.value for c in self._topic_configs(info) if not c.is_default}
        return TopicDescription(info.name, info.topic_id, None, is_internal(info.name), parts, configs)

    def _topic_configs(self, info: TopicInfo) -> list[ConfigValue]:
        out = []
        for name, value in sorted(self.config.topic_defaults().items()):
            if name in info.configs:
                out.append(ConfigValue(name, info.configs[name], False))
            else:
                out.append(ConfigValue(name, value, not self.config.topic_default_is_explicit(name)))
        return out

    def topic_names(self) -> list[str]:
        return sorted(self._partitions)

    async def metadata(self, topics: list[str] | None = None, *,
                       allow_auto_topic_creation: bool = False) -> list[TopicDescription]:
        """Descriptions of `topics` (None: all), creating unknown ones when both the request
        and auto.create.topics.enable allow it."""
        if topics is None:
            return [self._describe(self._store.topics[n]) for n in self.topic_names()]
        out = []
        for name in topics:
            try:
                if name not in self._partitions:
                    validate_topic(name)
                    if not (allow_auto_topic_creation and self.config.auto_create_topics_enable):
                        raise UnknownTopicOrPartitionError()
                    await self._auto_create(name)
                out.append(self._describe(self._store.topics[name]))
            except BrokerError as e:
                out.append(TopicDescription(name, error=e, is_internal=is_internal(name)))
        return out

    async def _auto_create(self, name: str) -> None:
        async with self._admin:
            if name in self._partitions:
                return
            info = plan_topic(name, -1, -1, {}, {}, brokers=self.brokers, config=self.config,
                              existing=self._store.topics)
            await self._commit_create(info)
            log.info("broker: created topic %s with %d partition(s) on first use", name, info.partitions)

    async def _commit_create(self, info: TopicInfo) -> None:
        def work() -> list[Partition]:
            self._store.create(info)
            return self._open_partitions(info, range(info.partitions))
        try:
            self._partitions[info.name] = await asyncio.to_thread(work)
        except OSError as e:
            raise _storage_error(e) from None

    async def create_topics(self, topics: list[NewTopic], *, validate_only: bool = False) -> list[TopicResult]:
        names = [t.name for t in topics]
        out = []
        async with self._admin:
            for t in topics:
                try:
                    if names.count(t.name) > 1:
                        raise InvalidRequestError(message=(
                            f"Create topics request contains multiple entries for the topic {t.name}."))
                    info = plan_topic(t.name, t.num_partitions, t.replication_factor, t.configs,
                                      t.assignments, brokers=self.brokers, config=self.config,
                                      existing=self._store.topics)
                    if not validate_only:
                        await self._commit_create(info)
                    out.append(TopicResult(t.name, info.topic_id))
                except BrokerError as e:
                    out.append(TopicResult(t.name, "", e))
        return out

    async def delete_topics(self, names: list[str]) -> list[TopicResult]:
        out = []
        async with self._admin:
            for name in names:
                info = self._store.get(name)
                if info is None:
                    out.append(TopicResult(name, "", UnknownTopicOrPartitionError()))
                    continue
                parts = self._partitions.pop(name, [])
                for p in parts:
                    p.detach(UnknownTopicOrPartitionError())
                    self._dirty.discard(p)

                def work(parts=parts, name=name) -> None:
                    _close_logs(parts)
                    self._store.delete(name)
                try:
                    await asyncio.to_thread(work)
                except OSError as e:
                    out.append(TopicResult(name, info.topic_id, _storage_error(e)))
                    continue
                out.append(TopicResult(name, info.topic_id))
        return out

    async def create_partitions(self, topic: str, count: int, *, validate_only: bool = False) -> TopicResult:
        async with self._admin:
            try:
                info = self._store.get(topic)
                if info is None:
                    raise UnknownTopicOrPartitionError(message=f"Topic '{topic}' does not exist.")
                grown = plan_partitions(info, count, brokers=self.brokers, config=self.config,
                                        existing=self._store.topics)
                if not validate_only:
                    def work() -> list[Partition]:
                        self._store.add_partitions(grown)
                        return self._open_partitions(grown, range(info.partitions, grown.partitions))
                    try:
                        self._partitions[topic] = self._partitions[topic] + await asyncio.to_thread(work)
                    except OSError as e:
                        raise _storage_error(e) from None
                return TopicResult(topic, info.topic_id)
            except BrokerError as e:
                return TopicResult(topic, info.topic_id if info else "", e)

    async def elect_leaders(self, partitions: list[tuple[str, int]] | None, *, unclean: bool = False,
                            forwarded: bool = False) -> dict[tuple[str, int], BrokerError | None]:
        """Kafka's ElectLeaders. One broker leads every partition it holds, and it is each one's
        only (so preferred) replica: nothing to elect."""
        wanted = ([(t, i) for t in self.topic_names() for i in range(len(self._partitions[t]))]
                  if partitions is None else partitions)
        out: dict[tuple[str, int], BrokerError | None] = {}
        for topic, index in wanted:
            try:
                self._lookup(topic, index)
                out[(topic, index)] = ElectionNotNeededError()
            except BrokerError as e:
                out[(topic, index)] = e
        return out

    def describe_configs(self, topic: str = "") -> list[ConfigValue]:
        """A topic's settings (every topic-level name, overrides marked non-default), or with
        "" the broker's own. Raises InvalidTopicError or UnknownTopicOrPartitionError."""
        if not topic:
            return [ConfigValue(n, v, d, read_only=True) for n, v, d in self.config.entries()]
        validate_topic(topic)
        info = self._store.get(topic)
        if info is None:
            raise UnknownTopicOrPartitionError()
        return self._topic_configs(info)

    # -- producer ids -----------------------------------------------------------------------

    async def init_producer_id(self, producer_id: int = -1, producer_epoch: int = -1) -> tuple[int, int]:
        """(producer id, epoch): a new id at epoch 0, or the given id with its epoch bumped
        (KIP-360), or a new id when the epoch would overflow. Ids are reserved on disk in
        blocks before they are handed out, so none is handed out twice, even after a crash."""
        if producer_id >= 0:
            self._check_producer_id(producer_id)
            if producer_epoch < 0:
                raise InvalidRequestError(message="A producer id needs its current epoch to be bumped.")
            if producer_epoch < MAX_PRODUCER_EPOCH:
                return producer_id, producer_epoch + 1
        async with self._pid_lock:
            if self._next_pid >= self._pid_block_end:
                self._next_pid, self._pid_block_end = await self._reserve_producer_ids()
            pid = self._next_pid
            self._next_pid += 1
        return pid, 0

    def _check_producer_id(self, producer_id: int) -> None:
        if producer_id >= self._next_pid:
            raise InvalidProducerIdMappingError(message=(
                f"Producer id {producer_id} was never handed out by this broker."))

    async def _reserve_producer_ids(self) -> tuple[int, int]:
        """The next block of ids, [start, end), recorded on disk before any is handed out."""
        start = self._pid_block_end
        end = start + PRODUCER_ID_BLOCK
        try:
            await asyncio.to_thread(write_atomically, self.directory / PRODUCER_IDS_FILE, f"{end}\n".encode())
        except OSError as e:
            raise _storage_error(e) from None
        return start, end

    # -- produce ----------------------------------------------------------------------------

    async def _partition_for_produce(self, topic: str, partition: int) -> Partition:
        if topic not in self._partitions:
            validate_topic(topic)
            if self.config.auto_create_topics_enable:
                await self._auto_create(topic)
        return self._lookup(topic, partition)

    async def produce(self, acks: int, timeout_ms: int,
                      items: list[tuple[str, int, bytes]]) -> list[ProduceResult]:
        """Append each partition's batches; see the module docstring for when this returns.
        With acks=0 the results are computed but nobody waits for them."""
        if acks not in (-1, 0, 1):
            raise InvalidRequestError(message=f"acks must be 0, 1 or -1 (all), not {acks}")
        results: list[ProduceResult] = []
        waits: list[tuple[int, Partition, int]] = []
        for topic, index, records in items:
            result = ProduceResult(topic, index)
            results.append(result)
            try:
                p = await self._partition_for_produce(topic, index)
                p.check_leader()
                if acks == -1 and len(p.isr) < p.min_insync_replicas:
                    raise NotEnoughReplicasError(message=(
                        f"The size of the current ISR {set(p.isr)} is insufficient to satisfy the "
                        f"min.isr requirement of {p.min_insync_replicas} for partition {p.name}"))
                appended = p.append(split_batches(records, p.name, p.log.config))
                self._appended(p)
                result.base_offset = appended.base_offset
                result.log_start_offset = p.log_start_offset
                if acks == -1:
                    waits.append((len(results) - 1, p, appended.last_offset + 1))
            except BrokerError as e:
                result.error = e
            except OSError as e:
                result.error = _storage_error(e)
        if waits:
            await self._wait_durable(results, waits, timeout_ms or DEFAULT_PRODUCE_TIMEOUT_MS)
        return results

    async def _wait_durable(self, results: list[ProduceResult], waits, timeout_ms: int) -> None:
        tasks = [_acks_all(p, end) for _, p, end in waits]
        done, pending = await asyncio.wait(tasks, timeout=max(timeout_ms, 0) / 1000)
        for (i, p, _), task in zip(waits, tasks):
            r = results[i]
            if task in pending:
                task.cancel()
                r.error = RequestTimedOutError(message=(
                    f"The records appended to {p.name} were not made durable within {timeout_ms} ms."))
            elif task.exception() is not None:
                exc = task.exception()
                r.error = exc if isinstance(exc, BrokerError) else _storage_error(exc)
            elif len(p.isr) < p.min_insync_replicas:
                r.error = NotEnoughReplicasAfterAppendError()

    # -- fetch ------------------------------------------------------------------------------

    async def fetch(self, items: list[FetchItem], *, max_wait_ms: int = 0, min_bytes: int = 1,
                    max_bytes: int = MAX_FETCH_BYTES, replica_id: int = -1) -> list[FetchResult]:
        """Read each partition from its fetch offset, at most `max_bytes` in all (but at least
        one batch), below the high watermark. When fewer than `min_bytes` are there and no
        partition has an error, wait up to `max_wait_ms` for appends to bring more."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(max_wait_ms, 0) / 1000
        max_bytes = min(max_bytes, MAX_FETCH_BYTES) if max_bytes > 0 else MAX_FETCH_BYTES
        while True:
            results, total, errored = self._read(items, max_bytes, replica_id)
            remaining = deadline - loop.time()
            if total >= min_bytes or errored or remaining <= 0 or self._closed:
                return results
            woken = loop.create_future()
            watched = []
            for it in items:
                parts = self._partitions.get(it.topic, ())
                if 0 <= it.partition < len(parts) and parts[it.partition] is not None:
                    watched.append(parts[it.partition])
            follower = replica_id >= 0 and replica_id != self.broker_id
            for p in watched:
                (p.add_append_waiter if follower else p.add_data_waiter)(woken)
            try:
                await asyncio.wait([woken], timeout=remaining)
            finally:
                for p in watched:
                    (p.discard_append_waiter if follower else p.discard_data_waiter)(woken)

    def _read(self, items: list[FetchItem], max_bytes: int, replica_id: int):
        results = []
        total = 0
        errored = False
        for it in items:
            r = FetchResult(it.topic, it.partition)
            results.append(r)
            try:
                p = self._lookup(it.topic, it.partition)
                # A follower (a replica's broker) reads up to the log end; consumers read from
                # the leader, below the high watermark.
                follower = replica_id != self.broker_id and replica_id in p.replicas
                p.check_leader()
                self._check_epoch(p, it.current_leader_epoch)
                if follower and p.follower_fetched(replica_id, it.fetch_offset):
                    self._isr_may_grow(p)
                r.high_watermark, r.log_start_offset = p.high_watermark, p.log_start_offset
                r.log_end_offset = p.log_end_offset
                limit = it.partition_max_bytes if it.partition_max_bytes > 0 else DEFAULT_PARTITION_MAX_BYTES
                left = max_bytes - total
                data = p.read(it.fetch_offset, max(min(limit, left), 1), to_log_end=follower)
                if total and len(data) > left:
                    data = b""  # only the first partition with data may go over max_bytes
                r.records = data
                total += len(data)
            except BrokerError as e:
                r.error, errored = e, True
            except OSError as e:
                r.error, errored = _storage_error(e), True
        return results, total, errored

    @staticmethod
    def _check_epoch(p: Partition, epoch: int) -> None:
        """A request's view of the leader epoch (-1: unchecked) against the partition's."""
        if epoch >= 0 and epoch < p.leader_epoch:
            raise FencedLeaderEpochError()
        if epoch > p.leader_epoch:
            raise UnknownLeaderEpochError()

    async def offset_for_leader_epoch(self, topic: str, index: int, current_epoch: int,
                                      epoch: int) -> tuple[int, int]:
        """(the largest leader epoch <= `epoch` in this leader's log, where it ends)."""
        p = self._lookup(topic, index)
        p.check_leader()
        self._check_epoch(p, current_epoch)
        return p.epoch_end(epoch)

    def _isr_may_grow(self, p: Partition) -> None:
        """A follower out of the ISR caught up with leader `p` (cluster mode acts on it)."""

    # -- offsets ----------------------------------------------------------------------------

    def list_offsets(self, items: list[tuple[str, int, int]]) -> list[OffsetResult]:
        """For each (topic, partition, timestamp): -2 the log start, -1 the high watermark,
        else the first offset whose record's timestamp is at or after it (-1 when none)."""
        out = []
        for topic, index, ts in items:
            r = OffsetResult(topic, index)
            out.append(r)
            try:
                p = self._lookup(topic, index)
                p.check_leader()
                if ts == EARLIEST:
                    r.offset = p.log_start_offset
                elif ts == LATEST:
                    r.offset = p.high_watermark
                elif ts < 0:
                    raise InvalidRequestError(message=(
                        f"Timestamp {ts} is neither -2 (earliest), -1 (latest) nor a time in ms."))
                else:
                    found = p.offset_for_timestamp(ts)
                    if found is not None:
                        r.offset, r.timestamp = found
            except BrokerError as e:
                r.error = e
            except OSError as e:
                r.error = _storage_error(e)
        return out


def _acks_all(p: Partition, end: int) -> asyncio.Future:
    """acks=all: resolved once the leader's log is fsync'd below `end` and the high watermark
    passed it (on one node the same moment; in a cluster every ISR member has the batch too).
    The fsync waiter counts at once, before the committer runs (see `has_waiters`)."""
    durable = p.durable_future(end)

    async def both() -> None:
        await durable
        await p.hw_future(end)
    return asyncio.ensure_future(both())


# -- work done in threads -----------------------------------------------------------------------


_FSYNC_POOL = ThreadPoolExecutor(max_workers=FSYNC_THREADS, thread_name_prefix="dcli-fsync")   # threads start on use


def _flush_all(parts: list[Partition], parallel: bool = True) -> list[BaseException | None]:
    """fsync every partition's log; in parallel, the file system commits the fsyncs together,
    so that the round takes about as long as one."""
    if not parallel or len(parts) == 1:
        return [_flush_one(p) for p in parts]
    return list(_FSYNC_POOL.map(_flush_one, parts))


def _flush_one(p: Partition) -> BaseException | None:
    try:
        p.log.flush()
    except ValueError:              # closed meanwhile (topic deleted): nobody waits for it
        pass
    except OSError as e:
        return e
    return None


def _close_logs(parts: list[Partition]) -> None:
    for p in parts:
        try:
            p.log.close()
        except OSError as e:
            log.error("broker: closing %s failed: %s", p.name, e)


def _clean(partition_log, high_watermark: int) -> int:
    try:
        deleted = partition_log.delete_old_segments(max_offset=high_watermark)
        partition_log.compact()
        return deleted
    except ValueError:              # closed meanwhile (topic deleted)
        return 0
