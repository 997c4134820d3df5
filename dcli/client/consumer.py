"""Consumer: Kafka's consumer model over dcli's Broker service.

    from dcli.client import Consumer

    with Consumer("127.0.0.1:7181", group_id="readers", auto_offset_reset="earliest") as c:
        c.subscribe(["chat"])
        for record in c.poll(timeout_ms=1000):
            print(record.partition, record.offset, record.value)

Two ways to get partitions, as in Kafka: `assign([(topic, partition), ...])` takes them
directly; `subscribe([...])` with a `group_id` joins the group (Kafka's classic protocol: the
coordinator picks a leader, the leader assigns with the range or roundrobin assignor, everyone
gets its share) and rejoins whenever the group rebalances. Positions start at the committed
offset, or by `auto_offset_reset` ("earliest" / "latest" / "none") when there is none or it is
out of range. A committed offset is the next offset to read. With `enable_auto_commit` the
positions are committed every `auto_commit_interval_ms` (from poll()), before a rebalance and
on close().

Each partition is fetched from its leader (one Fetch per leader broker, with the leader epoch
the metadata gave); when a broker answers that it no longer leads, or cannot be reached, the
metadata is asked for again and a later poll fetches from the new leader (nothing is raised).
The group's requests go to its coordinator (FindCoordinator), found again when it moves.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from typing import NamedTuple

import grpc

from dcli.client import assignors
from dcli.client.broker_common import (RETRY_BACKOFF_S, BrokerChannel, error_class,
                                       raise_for, rpc_error)
from dcli.v1 import broker_pb2 as bpb
from dcli.wire import errors
from dcli.wire.consumer_protocol import (Assignment, Subscription, decode_assignment,
                                         decode_subscription, encode_assignment, encode_subscription)
from dcli.wire.records import decode_rows, iter_batches, validate_batch

EARLIEST, LATEST = -2, -1
OFFSET_OUT_OF_RANGE = 1
REBALANCE_IN_PROGRESS = 27
UNKNOWN_MEMBER_ID = 25
ILLEGAL_GENERATION = 22
MEMBER_ID_REQUIRED = 79
FETCH_TIMEOUT_S = 30            # a Fetch's deadline beyond its max wait
POSITION_WAIT_S = 1.0           # what poll() gives a missing position at least (even poll(0))


class ConsumerRecord(NamedTuple):
    """One record as poll() returns it: immutable, its fields by name. A NamedTuple because
    the decoder builds each one in a single step (wire.records.decode_rows), at a fifth of
    the cost of a frozen dataclass."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int         # 0 CreateTime, 1 LogAppendTime
    key: bytes | None
    value: bytes | None
    headers: tuple
    leader_epoch: int


def _verify(batch, tp: tuple[str, int], position: int) -> None:
    """The batch's CRC-32C, as Kafka's consumer checks it (check.crcs): a batch damaged between
    the producer and here raises, naming the partition and the position to seek past."""
    try:
        validate_batch(batch)
    except errors.CorruptRecordError as e:
        raise errors.CorruptRecordError(
            "", f"Record batch for partition {tp[0]}-{tp[1]} at offset {position} is invalid, cause: {e.message}. "
                "If needed, please seek past the record to continue consumption.") from None


class _Chunk:
    """One partition's share of a Fetch answer in the buffer: its batches, decoded one at a
    time as poll() reaches them (as Kafka's CompletedFetch does), so that a poll of 500
    records decodes about 500, however much was fetched."""

    __slots__ = ("tp", "batches", "next_batch", "records", "next_record", "end")

    def __init__(self, tp: tuple[str, int], batches: list, end: int):
        self.tp = tp
        self.batches = batches
        self.next_batch = 0
        self.records: list[ConsumerRecord] = []
        self.next_record = 0
        self.end = end          # the offset after its last batch


class _Fetch(NamedTuple):
    """A Fetch request on its way to one broker: the call, the broker's address and the offset
    it asked for per partition."""

    call: grpc.Future
    address: str
    offsets: dict


class NoOffsetForPartitionError(errors.BrokerError):
    template = "Undefined offset with no reset policy for partitions: {path}"


class Consumer:
    def __init__(self, bootstrap_servers: str = "127.0.0.1:7181", *, group_id: str | None = None,
                 client_id: str = "dcli-consumer", auto_offset_reset: str = "latest",
                 enable_auto_commit: bool = True, auto_commit_interval_ms: int = 5000,
                 session_timeout_ms: int = 45000, heartbeat_interval_ms: int = 3000,
                 max_poll_interval_ms: int = 300000, max_poll_records: int = 500,
                 fetch_max_wait_ms: int = 500, fetch_min_bytes: int = 1,
                 max_partition_fetch_bytes: int = 1 << 20, fetch_max_bytes: int = 50 << 20,
                 partition_assignment_strategy=("range", "roundrobin"), check_crcs: bool = True):
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise errors.UsageError(f"Invalid value {auto_offset_reset} for configuration auto.offset.reset: "
                                    "String must be one of: latest, earliest, none")
        unknown = [s for s in partition_assignment_strategy if s not in assignors.BY_NAME]
        if unknown:
            raise errors.UsageError(f"Unknown assignor: {unknown[0]} (range, roundrobin)")
        self._broker = BrokerChannel(bootstrap_servers)
        self.group_id = group_id
        self.client_id = client_id
        self.reset = auto_offset_reset
        self.auto_commit = enable_auto_commit and group_id is not None
        self.auto_commit_s = auto_commit_interval_ms / 1000
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_s = heartbeat_interval_ms / 1000
        self.rebalance_timeout_ms = max_poll_interval_ms
        self.max_poll_records = max_poll_records
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.partition_fetch_bytes = max_partition_fetch_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.strategies = tuple(partition_assignment_strategy)
        self.check_crcs = check_crcs        # Kafka's check.crcs: a batch damaged on the way is refused
        self._subscription: tuple[str, ...] = ()
        self._assigned: list[tuple[str, int]] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._buffer: list[_Chunk] = []       # fetched and not yet polled, in order
        self._fetches: list[_Fetch] = []      # on their way (at most one per partition)
        self._fetch_done = threading.Event()    # set as each of them finishes
        self._retry_at: dict[tuple[str, int], float] = {}   # leader moved: not fetched before then
        self._member_id = ""
        self._generation = -1
        self._needs_join = False
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._last_commit = time.monotonic()
        self._closed = False

    # ---- partitions ----

    def assign(self, partitions: list[tuple[str, int]]) -> None:
        """Read these partitions directly (no group management)."""
        if self._subscription:
            raise errors.UsageError("Subscription to topics and manual assignment are mutually exclusive")
        self._set_assignment(list(partitions))

    def subscribe(self, topics: list[str]) -> None:
        if self.group_id is None:
            raise errors.UsageError("To use the group management or offset commit APIs, you must "
                                    "provide a valid group.id in the consumer configuration.")
        if self._assigned and not self._subscription:
            raise errors.UsageError("Subscription to topics and manual assignment are mutually exclusive")
        self._subscription = tuple(topics)
        self._needs_join = True

    def assignment(self) -> list[tuple[str, int]]:
        return list(self._assigned)

    def position(self, tp: tuple[str, int]) -> int:
        if tp not in self._positions:
            self._reset_positions([tp])
        return self._positions[tp]

    def seek(self, tp: tuple[str, int], offset: int) -> None:
        self._positions[tp] = offset
        self._buffer = [chunk for chunk in self._buffer if chunk.tp != tp]
        self._cancel_fetches()      # one asked for the old position; the next poll asks anew

    def seek_to_beginning(self, tps=None) -> None:
        for tp in tps or self._assigned:
            self.seek(tp, self._list_offset(tp, EARLIEST))

    def seek_to_end(self, tps=None) -> None:
        for tp in tps or self._assigned:
            self.seek(tp, self._list_offset(tp, LATEST))

    # ---- reading ----

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records from the assigned partitions, waiting up to `timeout_ms` for some."""
        limit = max_records or self.max_poll_records
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if self._subscription and self._needs_join:
                self._join()
            self._maybe_auto_commit()
            if not self._buffer and self._assigned:
                self._fill(deadline)
            if self._buffer:
                records = self._take(limit)
                if records:
                    return records
                continue            # the batches held nothing at or after the position
            if time.monotonic() >= deadline:
                return []
            if not self._assigned:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))   # nothing to fetch yet

    def _take(self, limit: int) -> list[ConsumerRecord]:
        """Up to `limit` buffered records, in order; positions move past them."""
        out: list[ConsumerRecord] = []
        buffer = self._buffer
        positions = self._positions
        while buffer and len(out) < limit:
            chunk = buffer[0]
            records, i = chunk.records, chunk.next_record
            if i == len(records):
                if chunk.next_batch < len(chunk.batches):
                    topic, partition = tp = chunk.tp
                    batch = chunk.batches[chunk.next_batch]
                    chunk.batches[chunk.next_batch] = None
                    chunk.next_batch += 1
                    if self.check_crcs:
                        _verify(batch, tp, positions[tp])
                    # a batch may begin before the position: min_offset
                    chunk.records = decode_rows(batch, ConsumerRecord, topic, partition, positions[tp])
                    chunk.next_record = 0
                else:
                    buffer.pop(0)
                    positions[chunk.tp] = chunk.end     # past records a compaction left out, too
                continue
            want = limit - len(out)
            taken = records if i == 0 and want >= len(records) else records[i : i + want]
            out += taken
            chunk.next_record = i + len(taken)
            positions[chunk.tp] = taken[-1].offset + 1
        return out

    # ---- fetching: each leader is asked for its partitions; a Fetch is sent ahead while the
    # application reads the answer of the last one ----

    def _fill(self, deadline: float) -> None:
        """Buffer the answers of the Fetches on their way. The partitions none asks for are
        asked of their leaders first; such a new Fetch is waited for as a blocking call (its own
        max wait bounds it), those sent ahead only until `deadline`."""
        self._broker.refresh_stale()        # leaders that moved since the last poll
        wait_ms = max(0, min(self.fetch_max_wait_ms, int((deadline - time.monotonic()) * 1000)))
        sent = self._send_fetches(self._unasked(deadline), wait_ms)
        if not self._fetches:
            # no leader known yet: wait a little (Kafka's retry.backoff.ms), within the poll
            time.sleep(max(0.0, min(RETRY_BACKOFF_S, deadline - time.monotonic())))
            return
        until = time.monotonic() + wait_ms / 1000 + FETCH_TIMEOUT_S if sent else deadline
        for f in self._finished(until):
            self._fetches.remove(f)
            try:
                reply = f.call.result()
            except grpc.FutureCancelledError:
                continue
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise rpc_error(e, f.address) from None
                # the leader went away: ask who leads now, and fetch again after a pause
                self._broker.unreachable(f.address, {t for t, _ in f.offsets})
                self._back_off(f.offsets)
                continue
            self._buffer_reply(reply, f)

    def _unasked(self, deadline: float) -> dict[tuple[str, int], int]:
        """The positions of the assigned partitions no Fetch on its way asks for (and not
        waiting after their leader moved). A partition without a position gets one first; when
        its leader or the coordinator cannot say by `deadline` (or within POSITION_WAIT_S), it
        waits for a later poll."""
        now = time.monotonic()
        missing = [tp for tp in self._assigned if tp not in self._positions and self._retry_at.get(tp, 0.0) <= now]
        if missing:
            try:
                self._reset_positions(missing, timeout=max(POSITION_WAIT_S, deadline - now))
            except errors.DcliError as e:
                if not e.retriable:
                    raise
                self._back_off(missing)
        asked = {tp for f in self._fetches for tp in f.offsets}
        now = time.monotonic()
        return {tp: self._positions[tp] for tp in self._assigned
                if tp in self._positions and tp not in asked and self._retry_at.get(tp, 0.0) <= now}

    def _send_fetches(self, offsets: dict[tuple[str, int], int], wait_ms: int) -> bool:
        """One Fetch per leader for `offsets`, each partition with its leader's epoch as the
        metadata gave it; whether any was sent. A partition without a known leader waits."""
        leaders = self._broker.leaders(offsets)
        self._back_off([tp for tp in offsets if tp not in leaders])
        by_leader: dict[str, tuple[list, dict]] = {}
        for tp, offset in offsets.items():
            leader = leaders.get(tp)
            if leader is None:
                continue
            parts, asked = by_leader.setdefault(leader.address, ([], {}))
            parts.append(bpb.FetchPartition(topic=tp[0], partition=tp[1], fetch_offset=offset,
                                            partition_max_bytes=self.partition_fetch_bytes,
                                            current_leader_epoch=leader.epoch))
            asked[tp] = offset
        for address, (parts, asked) in by_leader.items():
            req = bpb.FetchRequest(replica_id=-1, max_wait_ms=wait_ms, min_bytes=self.fetch_min_bytes,
                                   max_bytes=self.fetch_max_bytes, partitions=parts)
            call = self._broker.stub(address).Fetch.future(req, timeout=wait_ms / 1000 + FETCH_TIMEOUT_S)
            call.add_done_callback(lambda _: self._fetch_done.set())
            self._fetches.append(_Fetch(call, address, asked))
        return bool(by_leader)

    def _finished(self, until: float) -> list[_Fetch]:
        """The Fetches that have finished, waiting until `until` for one to."""
        while True:
            self._fetch_done.clear()
            done = [f for f in self._fetches if f.call.done()]
            left = until - time.monotonic()
            if done or left <= 0:
                return done
            self._fetch_done.wait(left)

    def _back_off(self, tps) -> None:
        at = time.monotonic() + RETRY_BACKOFF_S
        for tp in tps:
            self._retry_at[tp] = at

    def _cancel_fetches(self) -> None:
        for f in self._fetches:
            f.call.cancel()
        self._fetches = []

    def _buffer_reply(self, reply: bpb.FetchResponse, fetch: _Fetch) -> None:
        """Put a Fetch answer in the (empty) buffer, and send the next Fetch for its partitions
        from where this answer ends (read from the batch headers) so that the broker reads
        while the records here are decoded and polled. A partition whose leader moved is
        fetched again, from its leader, after a pause."""
        fetched, moved = [], []
        for fp in reply.partitions:
            tp = (fp.topic, fp.partition)
            start = self._positions.get(tp)
            if start is None or fetch.offsets.get(tp) != start:
                continue            # unassigned or moved (seek) since it was asked for
            if fp.error_code == OFFSET_OUT_OF_RANGE:
                self._reset_positions([tp], out_of_range=True)
                continue
            if error_class(fp.error_code).invalid_metadata:
                moved.append(tp)
                continue
            if fp.error_code:
                raise raise_for(fp.error_code, fp.error_message)
            batches, end = [], start
            for h, batch in iter_batches(memoryview(fp.records)):
                if h.next_offset > start:
                    batches.append(batch)
                    end = h.next_offset
            if batches:
                fetched.append((tp, start, batches, end))
        if moved:
            self._broker.invalidate({t for t, _ in moved})
            self._back_off(moved)
        ahead = {tp: self._positions[tp] for tp in fetch.offsets if tp in self._positions and tp not in moved}
        ahead.update((tp, end) for tp, _, _, end in fetched)
        if ahead:
            self._send_fetches(ahead, self.fetch_max_wait_ms)
        self._buffer += [_Chunk(tp, batches, end) for tp, _, batches, end in fetched]

    def _reset_positions(self, tps, out_of_range: bool = False, timeout: float = 30.0) -> None:
        committed = {} if out_of_range or self.group_id is None else self.committed_offsets(tps, timeout)
        for tp in tps:
            offset = committed.get(tp, -1)
            if offset < 0:
                if self.reset == "none":
                    raise NoOffsetForPartitionError(f"{tp[0]}-{tp[1]}")
                offset = self._list_offset(tp, EARLIEST if self.reset == "earliest" else LATEST, timeout)
            self._positions[tp] = offset

    def _list_offset(self, tp, which: int, timeout: float = 30.0) -> int:
        return self._broker.list_offsets([tp], which, timeout)[tp]

    # ---- offsets ----

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Commit `offsets` (default: the current positions) for the group."""
        if self.group_id is None:
            raise errors.UsageError("Offset commit needs a group.id")
        offsets = dict(self._positions) if offsets is None else offsets
        if not offsets:
            return
        reply = self._group_call("OffsetCommit", bpb.OffsetCommitRequest(
            group_id=self.group_id, generation_id=self._generation, member_id=self._member_id,
            partitions=[bpb.OffsetCommitPartition(topic=t, partition=p, offset=o) for (t, p), o in offsets.items()]))
        for r in reply.partitions:
            if r.error_code in (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID):
                self._needs_join = True
            if r.error_code:
                raise raise_for(r.error_code, r.error_message)
        self._last_commit = time.monotonic()

    def committed_offsets(self, tps, timeout: float = 30.0) -> dict[tuple[str, int], int]:
        reply = self._group_call("OffsetFetch", bpb.OffsetFetchRequest(group_id=self.group_id, partitions=[
            bpb.FetchPartition(topic=t, partition=p) for t, p in tps]), timeout)
        if reply.error_code:
            raise raise_for(reply.error_code, reply.error_message)
        return {(c.topic, c.partition): c.offset for c in reply.partitions if not c.error_code}

    def _maybe_auto_commit(self) -> None:
        if self.auto_commit and self._positions and time.monotonic() - self._last_commit >= self.auto_commit_s:
            try:
                self.commit()
            except errors.DcliError:
                pass        # a rebalance or no coordinator now: the next one commits again

    # ---- the group ----

    def _join(self) -> None:
        """JoinGroup (and SyncGroup) until this member has a generation and an assignment."""
        if self.auto_commit and self._positions and self._generation >= 0:
            try:
                self.commit()
            except errors.DcliError:
                pass
        self._stop_heartbeats()
        metadata = encode_subscription(Subscription(self._subscription))
        while True:
            reply = self._group_call("JoinGroup", bpb.JoinGroupRequest(
                group_id=self.group_id, session_timeout_ms=self.session_timeout_ms,
                rebalance_timeout_ms=self.rebalance_timeout_ms, member_id=self._member_id,
                client_id=self.client_id, client_host=f"/{os.uname().nodename}",
                protocol_type="consumer",
                protocols=[bpb.JoinGroupProtocol(name=s, metadata=metadata) for s in self.strategies]),
                timeout=self.rebalance_timeout_ms / 1000 + 30)
            if reply.error_code == MEMBER_ID_REQUIRED:
                self._member_id = reply.member_id
                continue
            if reply.error_code == UNKNOWN_MEMBER_ID:
                self._member_id = ""
                continue
            if reply.error_code:
                raise raise_for(reply.error_code, reply.error_message)
            self._member_id, self._generation = reply.member_id, reply.generation_id
            assignments = []
            if reply.leader == reply.member_id:
                assignments = self._assign_as_leader(reply.protocol_name, reply.members)
            sync = self._group_call("SyncGroup", bpb.SyncGroupRequest(
                group_id=self.group_id, generation_id=self._generation, member_id=self._member_id,
                assignments=assignments), timeout=self.rebalance_timeout_ms / 1000 + 30)
            if sync.error_code in (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION):
                continue
            if sync.error_code == UNKNOWN_MEMBER_ID:
                self._member_id = ""
                continue
            if sync.error_code:
                raise raise_for(sync.error_code, sync.error_message)
            mine = decode_assignment(sync.assignment)
            self._set_assignment([(t, p) for t, ps in mine.partitions.items() for p in ps])
            self._needs_join = False
            self._start_heartbeats()
            return

    def _assign_as_leader(self, protocol: str, members) -> list[bpb.SyncGroupAssignment]:
        wanted = {m.member_id: list(decode_subscription(m.metadata).topics) for m in members}
        topics = sorted({t for ts in wanted.values() for t in ts})
        counts = {}
        for t in topics:
            try:
                counts[t] = self._broker.partition_count(t)
            except errors.BrokerError:
                counts[t] = 0
        result = assignors.BY_NAME[protocol].assign(wanted, counts)
        return [bpb.SyncGroupAssignment(member_id=m, assignment=encode_assignment(Assignment(result.get(m, {}))))
                for m in wanted]

    def _set_assignment(self, partitions: list[tuple[str, int]]) -> None:
        self._cancel_fetches()
        self._retry_at.clear()
        self._assigned = sorted(set(partitions))
        self._positions = {tp: o for tp, o in self._positions.items() if tp in self._assigned}
        self._buffer = [chunk for chunk in self._buffer if chunk.tp in self._assigned]

    def _start_heartbeats(self) -> None:
        self._stop_heartbeat = threading.Event()
        self._heartbeat = threading.Thread(target=self._heartbeats, args=(self._stop_heartbeat,),
                                           name="dcli-consumer-heartbeat", daemon=True)
        self._heartbeat.start()

    def _stop_heartbeats(self) -> None:
        self._stop_heartbeat.set()

    def _heartbeats(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            try:
                r = self._group_call("Heartbeat", bpb.HeartbeatRequest(
                    group_id=self.group_id, generation_id=self._generation, member_id=self._member_id),
                    timeout=self.heartbeat_s + 10)
            except errors.DcliError:
                continue                     # no coordinator now: looked for again at the next beat
            if error_class(r.error_code).coordinator_moved:
                continue
            if r.error_code:
                self._needs_join = True      # the next poll rejoins
                return

    # ---- life cycle ----

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_heartbeats()
        self._cancel_fetches()
        try:
            if self.auto_commit and self._positions and self._generation >= 0:
                try:
                    self.commit()
                except errors.DcliError:
                    pass
            if self.group_id and self._member_id:
                try:
                    self._group_call("LeaveGroup", bpb.LeaveGroupRequest(group_id=self.group_id,
                                                                         member_ids=[self._member_id]))
                except errors.DcliError:
                    pass
        finally:
            self._broker.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _group_call(self, method: str, request, timeout: float = 30.0):
        """`method` on the group's coordinator (found with FindCoordinator, and found again
        when it moves or cannot be reached, within `timeout`)."""
        return self._broker.call_coordinator(self.group_id, method, request, timeout)


def random_group() -> str:
    """The console consumer's group when none is given (Kafka: console-consumer-<0..99999>)."""
    return f"console-consumer-{uuid.uuid4().int % 100000}"
