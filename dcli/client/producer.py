"""Producer: Kafka's producer model over dcli's Broker service.

    from dcli.client import Producer

    with Producer("127.0.0.1:7181", acks="all") as p:
        fut = p.send("chat", b"hello", key=b"alice")     # a Future of RecordMetadata
        p.flush()
        print(fut.result().partition, fut.result().offset)

Records accumulate per partition and leave as one Kafka record batch v2 when `batch_size` bytes
are waiting or `linger_ms` has passed since the first (or at `flush()`); one request carries the
ready batches of every partition. Keyed records go to `murmur2(key) % partitions` as in Kafka;
records without a key go round robin (the seed's description; `partitioner="sticky"` keeps a
partition until its batch leaves, as Kafka >= 2.4).

Each request goes to the leader of its partitions: the ready batches leave as one Produce
request per leader broker (Metadata says which). A partition whose leader is unknown keeps its
batches until the metadata names one; a batch a broker refuses because it no longer leads (or
because it cannot be reached) is sent again, the same bytes with the same sequence numbers, to
the leader the metadata names next.

Retries, as Kafka's producer: whether a failed batch is sent again is asked of its error
(`retriable`; `invalid_metadata`: the leader may have moved, so its topic's metadata is asked
for again, from any live broker, first). A retry waits `retry_backoff_ms`, doubled with each
failure of the batch up to `retry_backoff_max_ms` (Kafka's exponential backoff with 20 %
jitter). `retries` counts the sends that failed; a send that never left because no connection
to the leader could be made (a dead leader the metadata still names) is not one, as Kafka's
producer sends nothing to a broker it is not connected to. Whatever the count, a batch not
acknowledged within `delivery_timeout_ms` of its creation fails with a timeout.

Delivery semantics: `acks=0` is fire and forget (at most once: no answer, no retry); `acks=1`
waits for the leader's append and `acks="all"` for durability. With `retries > 0` a batch whose
request failed is sent again (at least once). `enable_idempotence=True` (the default, as Kafka
>= 3.0) numbers every batch per partition under a producer id and epoch, so a batch sent again
after a lost answer is recognized by the broker and not appended twice (exactly once per
partition); it needs `acks="all"` and allows up to 5 batches in flight per partition.
"""
from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import grpc

from dcli.client.broker_common import BrokerChannel, call_failure, raise_for
from dcli.v1 import broker_pb2 as bpb
from dcli.wire import errors
from dcli.wire.murmur2 import partition_for_key
from dcli.wire.produce_request import encode_produce_request
from dcli.wire.records import RECORD_BATCH_OVERHEAD, RecordBatchBuilder, increment_sequence

INFINITY = float("inf")
_time_ns = time.time_ns
ACKS = {"all": -1, "-1": -1, -1: -1, "1": 1, 1: 1, "0": 0, 0: 0}
PARTITIONERS = ("round-robin", "sticky")
RETRY_JITTER = 0.2                  # Kafka's CommonClientConfigs.RETRY_BACKOFF_JITTER
LOGGER = logging.getLogger("dcli.client.producer")


@dataclass(frozen=True)
class RecordMetadata:
    topic: str
    partition: int
    offset: int              # -1 with acks=0
    timestamp: int


class FutureRecordMetadata:
    """What `send()` returns: the future of one record's RecordMetadata (Kafka's class of the
    same name). It is a view of its batch's outcome, so a record costs no Future and no lock of
    its own; `result()`, `exception()`, `done()` and `add_done_callback()` behave as
    concurrent.futures.Future's (a callback gets this object)."""

    __slots__ = ("_batch", "_index", "_timestamp")

    def __init__(self, batch: _Batch, index: int, timestamp: int):
        self._batch, self._index, self._timestamp = batch, index, timestamp

    def result(self, timeout: float | None = None) -> RecordMetadata:
        b = self._batch
        b.wait(timeout)
        if b.error is not None:
            raise b.error
        base_offset, log_append_time = b.outcome
        return RecordMetadata(b.topic, b.partition, base_offset + self._index if base_offset >= 0 else -1,
                              log_append_time if log_append_time >= 0 else self._timestamp)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        b = self._batch
        b.wait(timeout)
        return b.error

    def done(self) -> bool:
        return self._batch.settled

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def add_done_callback(self, fn) -> None:
        b = self._batch
        with b.lock:
            if not b.settled:
                b.callbacks.append((fn, self))      # run by _Batch.settle, on the thread that settles
                return
        fn(self)


class _Batch(RecordBatchBuilder):
    """Records of one partition that leave together, encoded as they are sent (the builder),
    and the outcome they share: (base offset, log append time), or the error."""

    __slots__ = ("topic", "partition", "reserved", "bytes", "base_sequence", "attempts", "unsent",
                 "created", "not_before", "lock", "settled", "outcome", "error", "callbacks", "_waiter")

    def __init__(self, topic: str, partition: int, now: float, reserved: int):
        super().__init__()
        self.topic, self.partition = topic, partition
        self.reserved = reserved          # bytes of buffer_memory it holds until it settles
        self.bytes = b""
        self.base_sequence = -1
        self.attempts = 0                 # failed sends, each followed by a retry
        self.unsent = 0                   # of them, those that never left (no connection)
        self.created = now                # also the start of its linger
        self.not_before = 0.0             # a retry waits retry.backoff.ms
        # The records' callbacks wait here: one lock per batch, not a Future.add_done_callback
        # (and its Condition) per record. A batch is made on the application's thread, so a
        # Future (and its Condition) is made only for a caller who waits before it settles.
        self.lock = threading.Lock()
        self.settled = False
        self.outcome: tuple[int, int] = (-1, -1)
        self.error: BaseException | None = None
        self.callbacks: list = []
        self._waiter: Future | None = None

    def wait(self, timeout: float | None) -> None:
        """Return once the batch has settled; TimeoutError after `timeout` seconds."""
        if self.settled:
            return
        with self.lock:
            if self.settled:
                return
            if self._waiter is None:
                self._waiter = Future()
            waiter = self._waiter
        waiter.result(timeout)

    def settle(self, outcome: tuple[int, int], error: BaseException | None) -> None:
        with self.lock:
            self.outcome, self.error, self.settled = outcome, error, True
            callbacks, self.callbacks = self.callbacks, []
            waiter = self._waiter
        if waiter is not None:
            waiter.set_result(None)
        for fn, record_future in callbacks:
            try:
                fn(record_future)
            except Exception:
                LOGGER.exception("exception calling callback for %r", record_future)


class _Topic:
    """What send() needs of a topic, found with one lookup: its name and partition count, the
    round robin over its partitions, and each partition's open batch (also in Producer._open)."""

    __slots__ = ("name", "partitions", "next_partition", "open")

    def __init__(self, name: str, partitions: int):
        self.name = name
        self.partitions = partitions
        self.next_partition = itertools.cycle(range(partitions)).__next__    # one C call a record
        self.open: list[_Batch | None] = [None] * partitions


class Producer:
    def __init__(self, bootstrap_servers: str = "127.0.0.1:7181", *, acks="all", linger_ms: int = 5,
                 batch_size: int = 16384, retries: int = 2147483647, retry_backoff_ms: int = 100,
                 retry_backoff_max_ms: int = 1000, request_timeout_ms: int = 30000,
                 delivery_timeout_ms: int = 120000,
                 enable_idempotence: bool | None = None, partitioner: str = "round-robin",
                 max_in_flight: int = 5, buffer_memory: int = 32 << 20, max_block_ms: int = 60000,
                 client_id: str = "dcli-producer"):
        if acks not in ACKS:
            raise errors.UsageError(f"Invalid value {acks} for configuration acks: String must be one of: all, -1, 0, 1")
        if partitioner not in PARTITIONERS:
            raise errors.UsageError(f"partitioner must be one of {', '.join(PARTITIONERS)}")
        for name, value in (("batch.size", batch_size), ("linger.ms", linger_ms),
                            ("retries", retries), ("retry.backoff.ms", retry_backoff_ms),
                            ("retry.backoff.max.ms", retry_backoff_max_ms), ("request.timeout.ms", request_timeout_ms),
                            ("buffer.memory", buffer_memory), ("max.block.ms", max_block_ms)):
            if value < 0:
                raise errors.UsageError(f"Invalid value {value} for configuration {name}: Value must be at least 0")
        self.acks = ACKS[acks]
        if enable_idempotence is None:          # Kafka's default: on, unless acks/retries forbid it
            enable_idempotence = self.acks == -1 and retries > 0
        if enable_idempotence and (self.acks != -1 or retries == 0):
            raise errors.UsageError("Must set acks to all and retries above 0 in order to use the idempotent producer.")
        self.idempotent = enable_idempotence
        self.linger_s = linger_ms / 1000
        self.batch_size = batch_size
        self.retries = retries
        self.retry_backoff_s = retry_backoff_ms / 1000
        self.retry_backoff_max_s = max(retry_backoff_ms, retry_backoff_max_ms) / 1000
        self.request_timeout_s = request_timeout_ms / 1000
        self.delivery_timeout_s = delivery_timeout_ms / 1000
        self.partitioner = partitioner
        self._sticky_partitioner = partitioner == "sticky"
        self.buffer_memory = buffer_memory
        self.max_block_s = max_block_ms / 1000
        self.max_in_flight = max(1, min(max_in_flight, 5 if enable_idempotence else max_in_flight))
        self.client_id = client_id
        self._broker = BrokerChannel(bootstrap_servers)
        # send() takes the plain lock (a C-level `with`); the Condition shares it, for waits.
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._open: dict[tuple[str, int], _Batch] = {}            # the batch filling up, per partition
        self._ready: dict[tuple[str, int], list[_Batch]] = {}      # batches waiting to be sent, in order
        self._in_flight: dict[tuple[str, int], int] = {}
        self._topics: dict[str, _Topic] = {}
        self._unfinished = 0                  # batches (open ones included) not settled yet
        self._requests: dict[str, int] = {}   # Produce requests on their way, per broker
        self._buffered = 0                    # bytes reserved by batches not yet settled
        self._sender_wakes_at: float | None = None   # while the sender waits: until when
        self._sticky: dict[str, int] = {}
        self._sequences: dict[tuple[str, int], int] = {}
        self._producer_id, self._epoch = -1, -1
        self._flushing = 0
        self._closed = False
        self._error: Exception | None = None
        self._sender = threading.Thread(target=self._run, name="dcli-producer", daemon=True)
        self._sender.start()

    # ---- the application's side ----

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             partition: int | None = None, headers=(), timestamp_ms: int | None = None) -> FutureRecordMetadata:
        """Queue one record; the future gives its RecordMetadata once the broker has it."""
        if self._closed:
            raise errors.UsageError("Cannot send after the producer is closed.")
        state = self._topics.get(topic)
        if state is None:
            state = self._topic_state(topic)
        if partition is not None:
            if not 0 <= partition < state.partitions:
                raise errors.UsageError(f"Invalid partition given with record: {partition} is not in "
                                        f"the range [0...{state.partitions}].")
        elif key is not None:
            partition = partition_for_key(key, state.partitions)
        if headers:
            headers = tuple(headers)
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        # acquire/release rather than `with`: half the cost, on the path every record takes
        lock = self._lock
        lock.acquire()
        try:
            if partition is None:
                partition = self._choose_locked(state) if self._sticky_partitioner else state.next_partition()
            batch = state.open[partition]
            index = -1 if batch is None else batch.append(key, value, headers, timestamp_ms, self.batch_size)
            if index < 0:
                batch = self._append_new_locked(state, partition, key, value, headers, timestamp_ms)
                index = 0
        finally:
            lock.release()
        return FutureRecordMetadata(batch, index, timestamp_ms)

    def _topic_state(self, topic: str) -> _Topic:
        state = _Topic(topic, self._broker.partition_count(topic))     # metadata, once
        with self._lock:
            return self._topics.setdefault(topic, state)

    def _append_new_locked(self, state: _Topic, partition: int, key, value, headers, timestamp: int) -> _Batch:
        """A new batch of the partition holding the record, after the open one (if any) leaves
        because it is full; waits while the buffered batches hold `buffer_memory` (Kafka's
        buffer.memory), at most `max_block_ms`, for the sender to free some."""
        tp = (state.name, partition)
        # At most the record's encoded size (Kafka's estimateSizeInBytesUpperBound)
        size = 21 + (len(value) if value is not None else 0) + (len(key) if key is not None else 0)
        if headers:
            size += sum(len(k) + len(v or b"") + 10 for k, v in headers)
        reserved = min(max(self.batch_size, size + RECORD_BATCH_OVERHEAD), self.buffer_memory)
        deadline = None
        while True:
            batch = state.open[partition]
            if batch is not None:
                if batch.append(key, value, headers, timestamp, self.batch_size) >= 0:
                    return batch            # another thread opened it while this one waited
                self._cut_locked(tp)        # full: it leaves, a new one starts
            if not self._buffered or self._buffered + reserved <= self.buffer_memory:
                break
            if self._closed:
                raise errors.UsageError("Cannot send after the producer is closed.")
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.max_block_s
            if now >= deadline:
                raise errors.OperationTimeoutError("", "Failed to allocate memory within the configured "
                                                   f"max blocking time {int(self.max_block_s * 1000)} ms.")
            self._cv.wait(deadline - now)
        now = time.monotonic()
        batch = _Batch(state.name, partition, now, reserved)
        batch.append(key, value, headers, timestamp)      # before it is anywhere: if this raises
        self._open[tp] = state.open[partition] = batch
        self._buffered += reserved
        self._unfinished += 1
        wakes_at = self._sender_wakes_at
        if wakes_at is not None and wakes_at > now + self.linger_s:
            self._cv.notify_all()               # a linger clock earlier than the sender's
        return batch

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued now and wait until each record is answered (or failed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._flushing += 1
            self._cv.notify_all()
            try:
                while self._unfinished:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise errors.OperationTimeoutError("", f"Failed to flush accumulated records within {timeout} s")
                    self._cv.wait(left)
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            with self._cv:
                self._cv.notify_all()
            self._sender.join(timeout=5)
            self._broker.close()

    def partitions_for(self, topic: str) -> list[int]:
        return list(range(self._broker.partition_count(topic)))

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- partitioning ----

    def _choose_locked(self, state: _Topic) -> int:
        """The partition of a record without a key with the sticky partitioner (the caller
        holds the lock): the same until its batch leaves, then the next one."""
        partition = self._sticky.get(state.name)
        if partition is None:
            partition = self._sticky[state.name] = state.next_partition()
        return partition

    # ---- the sender thread ----

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed or self._unfinished:
                    self._drain_ready_locked()
                    requests, expired = self._sendable_locked()
                    refresh = self._broker.refresh_wait()
                    if requests or expired or refresh == 0:
                        break
                    wait = self._next_wake_locked(refresh)
                    self._sender_wakes_at = INFINITY if wait is None else time.monotonic() + wait
                    self._cv.wait(wait)
                    self._sender_wakes_at = None
                else:
                    return
            self._settle_all([(b, (-1, -1), self._expired(b)) for b in expired])
            if refresh == 0:
                self._broker.refresh_stale()    # Metadata of the topics whose leaders moved
            for address, batches in requests.items():
                self._send(address, batches)

    def _drain_ready_locked(self) -> None:
        """Close the open batches that lingered long enough or are being flushed."""
        now = time.monotonic()
        for tp in [tp for tp, b in self._open.items()
                   if (self._flushing or self._closed or now - b.created >= self.linger_s)
                   and not self._blocked_locked(tp)]:
            self._cut_locked(tp)

    def _blocked_locked(self, tp) -> bool:
        """The partition cannot send now (batches queued, or max_in_flight batches of it or
        requests to its leader out): its open batch stays open and keeps filling, as Kafka's
        accumulator does, rather than leaving as many small batches queue up behind the
        requests in flight."""
        if self._ready.get(tp) or self._in_flight.get(tp, 0) >= self.max_in_flight:
            return True
        leader = self._broker.leader(*tp)
        return leader is not None and self._requests.get(leader.address, 0) >= self.max_in_flight

    def _cut_locked(self, tp) -> None:
        self._ready.setdefault(tp, []).append(self._open.pop(tp))
        self._topics[tp[0]].open[tp[1]] = None
        if self._sender_wakes_at is not None:
            self._cv.notify_all()               # only a waiting sender needs it
        if self._sticky_partitioner:
            self._sticky.pop(tp[0], None)       # the batch left: stick to another partition

    def _sendable_locked(self) -> tuple[dict[str, list[_Batch]], list[_Batch]]:
        """The batches to send now, by the address of their partition's leader (one request
        each), and those that waited for a leader longer than delivery_timeout_ms. A partition
        whose leader is unknown keeps its batches; its topic is asked for again meanwhile."""
        requests: dict[str, list[_Batch]] = {}
        expired: list[_Batch] = []
        now = time.monotonic()
        for tp, queue in self._ready.items():
            if not queue or queue[0].not_before > now:
                continue        # empty or backing off
            leader = self._broker.leader(*tp)
            if leader is None:
                while queue and now - queue[0].created >= self.delivery_timeout_s:
                    expired.append(queue.pop(0))
                    self._in_flight[tp] = self._in_flight.get(tp, 0) + 1     # settled as if sent
                continue
            address = leader.address
            out = requests.get(address)
            if out is None:
                if self._requests.get(address, 0) >= self.max_in_flight:
                    continue    # max.in.flight.requests.per.connection
                out = requests[address] = []
            while queue and self._in_flight.get(tp, 0) < self.max_in_flight:
                if queue[0].not_before > now:
                    break       # backing off
                if queue[0].attempts and self._in_flight.get(tp, 0):
                    break       # a retry goes alone, after the batches before it have answered
                out.append(queue.pop(0))
                self._in_flight[tp] = self._in_flight.get(tp, 0) + 1
        for address in [a for a, batches in requests.items() if not batches]:
            del requests[address]
        for address in requests:
            self._requests[address] = self._requests.get(address, 0) + 1
        return requests, expired

    def _next_wake_locked(self, refresh: float | None) -> float | None:
        now = time.monotonic()
        waits = [self.linger_s - (now - b.created) for tp, b in self._open.items() if not self._blocked_locked(tp)]
        waits += [q[0].not_before - now for q in self._ready.values() if q and q[0].not_before > now]
        if refresh is not None:
            waits.append(refresh)       # a leader to look up again
        return max(0.0, min(waits)) if waits else None

    def _send(self, address: str, batches: list[_Batch]) -> None:
        """One Produce request for `batches` to the broker at `address` (their partitions'
        leader); its answer is handled on gRPC's thread."""
        try:
            if self.idempotent and self._producer_id < 0:
                self._init_producer_id()
            for b in batches:
                if not b.bytes:
                    b.bytes = self._build(b)
        except errors.DcliError as e:
            self._request_done(address)
            self._retry_or_fail(batches, e, sent=False)     # nothing left: no attempt counted
            return
        req = encode_produce_request(self.acks, int(self.request_timeout_s * 1000),
                                     [(b.topic, b.partition, b.bytes) for b in batches])
        call = self._broker.encoded_produce(address).future(req, timeout=self.request_timeout_s + 5)
        call.add_done_callback(lambda c: self._answered(address, batches, c))

    def _request_done(self, address: str) -> None:
        with self._lock:
            self._requests[address] -= 1
            if self._sender_wakes_at is not None:
                self._cv.notify_all()           # a request may leave

    def _answered(self, address: str, batches: list[_Batch], call) -> None:
        self._request_done(address)
        try:
            reply = call.result()
        except grpc.RpcError as e:
            # the broker went away or stopped answering: who leads now is asked of the others
            # before the retry
            err = call_failure(e, address)
            self._broker.unreachable(address, {b.topic for b in batches})
            self._retry_or_fail(batches, err, sent=not isinstance(err, errors.BrokerUnreachableError))
            return
        if self.acks == 0:
            self._settle_all([(b, (-1, -1), None) for b in batches])
            return
        # One result per batch, in the request's order (a request may carry several batches
        # of one partition, so the partition alone does not say which result is whose).
        answers = list(reply.partitions)
        if len(answers) != len(batches) or any((r.topic, r.partition) != (b.topic, b.partition)
                                               for r, b in zip(answers, batches)):
            by_partition = {(r.topic, r.partition): r for r in answers}
            answers = [by_partition.get((b.topic, b.partition)) for b in batches]
        settled = []
        for b, r in zip(batches, answers):
            if r is None:
                self._retry_or_fail([b], errors.UnavailableError("", "the broker did not answer for this partition"))
            elif r.error_code == 0:
                settled.append((b, (r.base_offset, r.log_append_time_ms), None))
            else:
                err = raise_for(r.error_code, r.error_message)
                if err.invalid_metadata:
                    self._broker.invalidate([b.topic])
                # an out of order sequence behind a batch being sent again closes when it lands
                if err.retriable or (isinstance(err, errors.OutOfOrderSequenceError) and self._retry_pending(b)):
                    self._retry_or_fail([b], err)
                else:
                    settled.append((b, (-1, -1), err))
        self._settle_all(settled)

    def _init_producer_id(self) -> None:
        r = self._broker.call_any("InitProducerId", bpb.InitProducerIdRequest(producer_id=-1, producer_epoch=-1),
                                  self.request_timeout_s)
        if r.error_code:
            raise raise_for(r.error_code, r.error_message)
        self._producer_id, self._epoch = r.producer_id, r.producer_epoch

    def _build(self, b: _Batch) -> bytes:
        if self.idempotent:
            tp = (b.topic, b.partition)
            b.base_sequence = self._sequences.get(tp, 0)
            self._sequences[tp] = increment_sequence(b.base_sequence, b.count)
            return b.build(producer_id=self._producer_id, producer_epoch=self._epoch,
                           base_sequence=b.base_sequence)
        return b.build()

    def _retry_pending(self, b: _Batch) -> bool:
        """An earlier batch of this partition is being sent again: this one's gap closes then."""
        with self._cv:
            return any(o.attempts and o.base_sequence < b.base_sequence
                       for o in self._ready.get((b.topic, b.partition), []))

    def _retry_or_fail(self, batches: list[_Batch], err: errors.DcliError, sent: bool = True) -> None:
        """Queue `batches` to be sent again after their backoff, or settle them: with `err`
        when it is not retriable (or `retries` ran out, or acks=0, or the producer closed),
        with a timeout once `delivery_timeout_ms` has passed. `sent`: the request may have
        reached the broker; one that never left is not counted against `retries`."""
        now = time.monotonic()
        retry, failed = [], []
        for b in batches:
            final = self._final_error(b, err, sent, now)
            if final is None:
                retry.append(b)
            else:
                failed.append((b, (-1, -1), final))
        self._settle_all(failed)
        if not retry:
            return
        with self._cv:       # back in line at once (later batches wait behind it), sent after a pause
            for b in retry:
                tp = (b.topic, b.partition)
                b.attempts += 1
                b.unsent += not sent
                b.not_before = now + self._backoff(b.attempts)
                self._in_flight[tp] -= 1
                queue = self._ready.setdefault(tp, [])
                queue.append(b)
                # same bytes, same order: the built ones by sequence, then those never sent
                queue.sort(key=lambda x: (not x.bytes, x.base_sequence, x.created))
            self._cv.notify_all()

    def _final_error(self, b: _Batch, err: errors.DcliError, sent: bool, now: float) -> errors.DcliError | None:
        """What batch `b` fails with after this failure (`err`), or None: it is sent again.
        The error decides (`retriable`); `retries` counts only failures of requests that may
        have reached the broker (`sent`); delivery.timeout.ms bounds them all."""
        if not err.retriable or self.acks == 0 or self._closed:
            return err
        if now - b.created >= self.delivery_timeout_s:
            return self._expired(b, err)
        if sent and b.attempts - b.unsent >= self.retries:
            return err
        return None

    def _backoff(self, failures: int) -> float:
        """Seconds before a batch's retry after its `failures`-th failure: retry.backoff.ms
        doubled each time, at most retry.backoff.max.ms, with Kafka's jitter of +-20 %."""
        base = min(self.retry_backoff_s * 2 ** min(failures - 1, 30), self.retry_backoff_max_s)
        return base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)

    def _expired(self, b: _Batch, cause: BaseException | None = None) -> errors.OperationTimeoutError:
        """Kafka's error for a batch not acknowledged within delivery.timeout.ms."""
        err = errors.OperationTimeoutError("", f"Expiring {b.count} record(s) for {b.topic}-{b.partition}: "
                                           f"{int(self.delivery_timeout_s * 1000)} ms has passed since batch creation")
        err.__cause__ = cause
        return err

    def _settle_all(self, settled: list[tuple[_Batch, tuple[int, int], Exception | None]]) -> None:
        """Settle each batch (its callbacks run here) with its outcome or error, then give
        back what they held, under one acquisition of the lock for the whole answer."""
        if not settled:
            return
        for b, outcome, err in settled:
            b.settle(outcome, err)
        with self._lock:
            in_flight = self._in_flight
            for b, _, _ in settled:
                tp = (b.topic, b.partition)
                in_flight[tp] = in_flight.get(tp, 1) - 1
                self._buffered -= b.reserved
            self._unfinished -= len(settled)
            self._cv.notify_all()
