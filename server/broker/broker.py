"""The broker of one node: its partitions under `<data_dir>/broker/`, produce with acks 0/1/all and
idempotent producers, fetch with long polls, offsets, housekeeping; replicated across the nodes'
brokers as Kafka does it. A node alone is a broker cluster of one: the same code, with this
broker the only replica and leader of every partition.

    broker = Broker(data_dir / "broker", BrokerConfig(broker_id=1), peers=peer_listener.brokers)
    await broker.start()
    broker.attach(start_membership(node, 1, host, port))      # the tree says who leads what
    [created] = await broker.create_topics([NewTopic("chat", 3)])
    [result] = await broker.produce(-1, 30000, [("chat", 0, batch_bytes)])
    [fetched] = await broker.fetch([FetchItem("chat", 0, 0)], max_wait_ms=500, min_bytes=1)
    await broker.close()

The class is built from four parts, one module each: this one, the data path (produce, fetch,
durability, offsets); admin.py, topics in the coordination tree (metadata, create, grow,
delete, configs, elections); replication.py, acting on the tree's partition states (open, lead,
follow, the ISR); producer_ids.py, producer ids in blocks reserved in the tree. Topic metadata lives only in the tree (cluster_meta.py); what is
on disk here is the partitions' logs (partition_dirs.py) and `meta.properties`.

Everything runs on the server's event loop. Appends are plain writes and stay on it; fsync and
directory changes go to a thread. Durability (fsync "always", the default): every append marks
its partition dirty and wakes the committer, which fsyncs all dirty partitions in one round
(group commit: produce requests that arrive meanwhile share the next one; the partitions are
fsync'd in parallel when a producer or a consumer waits for the round) and then moves each
partition's durable offset and high watermark to the log end it saw before the fsync.
acks=all answers once the durable offset passes the batch and every ISR member has it;
acks=1 once the batch is written; acks=0 likewise, with no result. Consumers read below the high
watermark only, so nobody sees a record that a power cut could take back. With fsync "batch"
the committer runs every 100 ms and the high watermark follows the log end at once; with "off"
nothing is fsync'd before close.

Domain errors are the BrokerError classes (Kafka's codes); results carry them per partition or
per topic so that one bad partition does not fail the others.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dcli.wire.errors import (
    BrokerError, FencedLeaderEpochError, InvalidRequestError, KafkaStorageError,
    NotEnoughReplicasAfterAppendError, NotEnoughReplicasError, NotLeaderOrFollowerError, RequestTimedOutError,
    UnknownLeaderEpochError, UnknownTopicOrPartitionError,
)
from dcli.wire.topics import validate_topic
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.admin import TopicAdmin
from dcli_server.broker.config import BrokerConfig, parse_properties
from dcli_server.broker.partition import Partition, check_decompressed_sizes, compressed, split_batches
from dcli_server.broker.partition_dirs import PartitionDirs
from dcli_server.broker.peers import BrokerPeers, NoPeers
from dcli_server.broker.producer_ids import ProducerIds
from dcli_server.broker.replication import Replication, close_logs as _close_logs
from dcli_server.broker.requests import (
    DEFAULT_PARTITION_MAX_BYTES, EARLIEST, LATEST, MAX_FETCH_BYTES, FetchItem, FetchResult, OffsetResult,
    ProduceResult, storage_error as _storage_error,
)
from dcli_server.broker.topics import BrokerStateError, new_topic_id
from dcli_server.storage.files import write_atomically

log = logging.getLogger(__name__)

DEFAULT_PRODUCE_TIMEOUT_MS = 30_000      # a request's 0 (proto3's "unset")
BATCH_FLUSH_INTERVAL_S = 0.1
FSYNC_THREADS = 8                        # partitions fsync'd at once in a group commit
META_FILE = "meta.properties"
METADATA_KEY = "dcli.metadata"          # "tree" once the broker's metadata is in the tree


class Broker(TopicAdmin, Replication, ProducerIds):
    """See the module's docstring."""

    def __init__(self, directory: Path, config: BrokerConfig | None = None, *,
                 fsync: str = "always", host: str = "127.0.0.1", port: int = 7181,
                 peers: BrokerPeers | None = None) -> None:
        if fsync not in ("always", "batch", "off"):
            raise ValueError(f"fsync must be always, batch or off, not {fsync!r}")
        self.directory = Path(directory)
        self.config = config or BrokerConfig()
        self.broker_id = self.config.broker_id if self.config.broker_id >= 0 else 1
        self.fsync = fsync
        self.host, self.port = host, port
        self.cluster_id = ""
        self.peers = peers or NoPeers()     # how this broker calls the others (the listener layer's)
        self._dirs: PartitionDirs | None = None
        self._partitions: dict[str, list[Partition | None]] = {}   # None: hosted elsewhere
        self._topics: dict[str, meta.TopicAssignment] = {}         # what the partitions were opened as
        self._dirty: set[Partition] = set()
        self._dirty_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        Replication.__init__(self)
        ProducerIds.__init__(self)

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the directory; the partitions open as the tree's states arrive (`attach`)."""
        await asyncio.to_thread(self._open)
        loop = asyncio.get_running_loop()
        if self.fsync != "off":
            self._tasks.append(loop.create_task(self._committer()))
        self._tasks.append(loop.create_task(self._housekeeping()))

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load_meta()
        self._dirs = PartitionDirs(self.directory)

    def _load_meta(self) -> None:
        """meta.properties as Kafka keeps it: the cluster id and this node's id, and
        `dcli.metadata=tree`: this directory's topics are in the tree (migrate.py)."""
        path = self.directory / META_FILE
        try:
            props = parse_properties(path.read_text())
        except FileNotFoundError:
            props = {"cluster.id": new_topic_id(), "node.id": str(self.broker_id), "version": "1"}
        stored = props.get("node.id", props.get("broker.id"))
        if stored is not None and stored != str(self.broker_id):
            raise BrokerStateError(path, 0, f"configured broker.id {self.broker_id} does not match "
                                            f"stored node.id {stored}")
        if props.get(METADATA_KEY) != "tree":
            props[METADATA_KEY] = "tree"
            write_atomically(path, "".join(f"{k}={v}\n" for k, v in props.items()).encode())
        self.cluster_id = props.get("cluster.id", "")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in self._tasks:
            t.cancel()
        self._stop_fetchers()
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

    # -- partitions ------------------------------------------------------------------------

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

    # -- produce ----------------------------------------------------------------------------

    async def _partition_for_produce(self, topic: str, partition: int) -> Partition:
        if not self._scanned.is_set():
            await self.ready()
        if self.membership is not None and topic not in self.membership.topics:
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
                batches = split_batches(records, p.name, p.log.config)
                if compressed(batches):     # inflating is bounded, and off the event loop
                    await asyncio.to_thread(check_decompressed_sizes, batches, p.name, p.log.config)
                    p.check_leader()
                appended = p.append(batches)
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
        partition has an error, wait up to `max_wait_ms` for appends to bring more. Both are
        clamped to the broker's bounds (dcli.fetch.max.wait.ms, fetch.max.bytes), as Kafka
        clamps max_bytes to fetch.max.bytes."""
        if not self._scanned.is_set():
            await self.ready()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(max_wait_ms, 0), self.config.fetch_max_wait_ms) / 1000
        cap = min(self.config.fetch_max_bytes, MAX_FETCH_BYTES)
        max_bytes = min(max_bytes, cap) if max_bytes > 0 else cap
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
    passed it (every ISR member has the batch too; with no other replica, the same moment).
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


def _clean(partition_log, high_watermark: int) -> int:
    try:
        deleted = partition_log.delete_old_segments(max_offset=high_watermark)
        partition_log.compact()
        return deleted
    except ValueError:              # closed meanwhile (topic deleted)
        return 0

