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
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from typing import NamedTuple

import grpc

from dcli.client import assignors
from dcli.client.broker_common import BrokerChannel, raise_for, rpc_error
from dcli.v1 import broker_pb2 as bpb
from dcli.wire import errors
from dcli.wire.consumer_protocol import (Assignment, Subscription, decode_assignment,
                                         decode_subscription, encode_assignment, encode_subscription)
from dcli.wire.records import decode_rows, iter_batches

EARLIEST, LATEST = -2, -1
OFFSET_OUT_OF_RANGE = 1
REBALANCE_IN_PROGRESS = 27
UNKNOWN_MEMBER_ID = 25
ILLEGAL_GENERATION = 22
MEMBER_ID_REQUIRED = 79


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
    """A Fetch request on its way: the call and the offset it asked for per partition."""

    call: grpc.Future
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
                 partition_assignment_strategy=("range", "roundrobin")):
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
        self._subscription: tuple[str, ...] = ()
        self._assigned: list[tuple[str, int]] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._buffer: list[_Chunk] = []       # fetched and not yet polled, in order
        self._next_fetch: _Fetch | None = None   # sent ahead while the buffer is read
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
        self._cancel_fetch()        # it asked for the old position; the next poll asks anew

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

    # ---- fetching: one Fetch is sent ahead while the application reads the last one ----

    def _fill(self, deadline: float) -> None:
        """Buffer the answer of the Fetch sent ahead (waiting for it until `deadline`), or of a
        new one when none is on its way."""
        pending = self._next_fetch
        if pending is None:
            wait = max(0, min(self.fetch_max_wait_ms, int((deadline - time.monotonic()) * 1000)))
            pending = self._send_fetch(self._positions_to_fetch(), wait)
            timeout = None          # the request's own max wait bounds it, as a blocking call
        else:
            timeout = max(0.0, deadline - time.monotonic())
        try:
            reply = pending.call.result(timeout=timeout)
        except grpc.FutureTimeoutError:
            self._next_fetch = pending      # still on its way: the next poll picks it up
            return
        except grpc.FutureCancelledError:
            self._next_fetch = None
            return
        except grpc.RpcError as e:
            self._next_fetch = None
            raise rpc_error(e, self._broker.servers[0]) from None
        self._next_fetch = None
        self._buffer_reply(reply, pending.offsets)

    def _positions_to_fetch(self) -> dict[tuple[str, int], int]:
        missing = [tp for tp in self._assigned if tp not in self._positions]
        if missing:
            self._reset_positions(missing)
        return {tp: self._positions[tp] for tp in self._assigned}

    def _send_fetch(self, offsets: dict[tuple[str, int], int], wait_ms: int) -> _Fetch:
        req = bpb.FetchRequest(replica_id=-1, max_wait_ms=wait_ms, min_bytes=self.fetch_min_bytes,
                               max_bytes=self.fetch_max_bytes, partitions=[
                                   bpb.FetchPartition(topic=t, partition=p, fetch_offset=o,
                                                      partition_max_bytes=self.partition_fetch_bytes,
                                                      current_leader_epoch=-1)
                                   for (t, p), o in offsets.items()])
        return _Fetch(self._broker.stub.Fetch.future(req, timeout=wait_ms / 1000 + 30), offsets)

    def _cancel_fetch(self) -> None:
        if self._next_fetch is not None:
            self._next_fetch.call.cancel()
            self._next_fetch = None

    def _buffer_reply(self, reply: bpb.FetchResponse, offsets: dict[tuple[str, int], int]) -> None:
        """Put a Fetch answer in the (empty) buffer, and send the next Fetch from where this
        answer ends (read from the batch headers) so that the broker reads while the records
        here are decoded and polled."""
        fetched = []
        for fp in reply.partitions:
            tp = (fp.topic, fp.partition)
            start = self._positions.get(tp)
            if start is None or offsets.get(tp) != start:
                continue            # unassigned or moved (seek) since it was asked for
            if fp.error_code == OFFSET_OUT_OF_RANGE:
                self._reset_positions([tp], out_of_range=True)
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
        ahead = {tp: self._positions[tp] for tp in self._assigned if tp in self._positions}
        ahead.update((tp, end) for tp, _, _, end in fetched)
        if len(ahead) == len(self._assigned):
            self._next_fetch = self._send_fetch(ahead, self.fetch_max_wait_ms)
        self._buffer += [_Chunk(tp, batches, end) for tp, _, batches, end in fetched]

    def _reset_positions(self, tps, out_of_range: bool = False) -> None:
        committed = {} if out_of_range or self.group_id is None else self.committed_offsets(tps)
        for tp in tps:
            offset = committed.get(tp, -1)
            if offset < 0:
                if self.reset == "none":
                    raise NoOffsetForPartitionError(f"{tp[0]}-{tp[1]}")
                offset = self._list_offset(tp, EARLIEST if self.reset == "earliest" else LATEST)
            self._positions[tp] = offset

    def _list_offset(self, tp, which: int) -> int:
        reply = self._call("ListOffsets", bpb.ListOffsetsRequest(partitions=[
            bpb.ListOffsetsPartition(topic=tp[0], partition=tp[1], timestamp=which)]))
        [r] = reply.partitions
        if r.error_code:
            raise raise_for(r.error_code, r.error_message)
        return r.offset

    # ---- offsets ----

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Commit `offsets` (default: the current positions) for the group."""
        if self.group_id is None:
            raise errors.UsageError("Offset commit needs a group.id")
        offsets = dict(self._positions) if offsets is None else offsets
        if not offsets:
            return
        reply = self._call("OffsetCommit", bpb.OffsetCommitRequest(
            group_id=self.group_id, generation_id=self._generation, member_id=self._member_id,
            partitions=[bpb.OffsetCommitPartition(topic=t, partition=p, offset=o) for (t, p), o in offsets.items()]))
        for r in reply.partitions:
            if r.error_code in (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID):
                self._needs_join = True
            if r.error_code:
                raise raise_for(r.error_code, r.error_message)
        self._last_commit = time.monotonic()

    def committed_offsets(self, tps) -> dict[tuple[str, int], int]:
        reply = self._call("OffsetFetch", bpb.OffsetFetchRequest(group_id=self.group_id, partitions=[
            bpb.FetchPartition(topic=t, partition=p) for t, p in tps]))
        if reply.error_code:
            raise raise_for(reply.error_code, reply.error_message)
        return {(c.topic, c.partition): c.offset for c in reply.partitions if not c.error_code}

    def _maybe_auto_commit(self) -> None:
        if self.auto_commit and self._positions and time.monotonic() - self._last_commit >= self.auto_commit_s:
            try:
                self.commit()
            except errors.BrokerError:
                pass        # a rebalance: the next join commits again

    # ---- the group ----

    def _join(self) -> None:
        """JoinGroup (and SyncGroup) until this member has a generation and an assignment."""
        if self.auto_commit and self._positions and self._generation >= 0:
            try:
                self.commit()
            except errors.BrokerError:
                pass
        self._stop_heartbeats()
        metadata = encode_subscription(Subscription(self._subscription))
        while True:
            reply = self._call("JoinGroup", bpb.JoinGroupRequest(
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
            sync = self._call("SyncGroup", bpb.SyncGroupRequest(
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
        self._cancel_fetch()
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
                r = self._broker.stub.Heartbeat(bpb.HeartbeatRequest(
                    group_id=self.group_id, generation_id=self._generation, member_id=self._member_id),
                    timeout=self.heartbeat_s + 10)
            except grpc.RpcError:
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
        self._cancel_fetch()
        try:
            if self.auto_commit and self._positions and self._generation >= 0:
                try:
                    self.commit()
                except errors.BrokerError:
                    pass
            if self.group_id and self._member_id:
                try:
                    self._call("LeaveGroup", bpb.LeaveGroupRequest(group_id=self.group_id,
                                                                   member_ids=[self._member_id]))
                except errors.DcliError:
                    pass
        finally:
            self._broker.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, request, timeout: float = 30.0):
        try:
            return getattr(self._broker.stub, method)(request, timeout=timeout)
        except grpc.RpcError as e:
            raise rpc_error(e, self._broker.servers[0]) from None


def random_group() -> str:
    """The console consumer's group when none is given (Kafka: console-consumer-<0..99999>)."""
    return f"console-consumer-{uuid.uuid4().int % 100000}"
