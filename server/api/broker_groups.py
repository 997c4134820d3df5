"""The consumer-group RPCs of the Broker service: Kafka's classic protocol, served by the pure
GroupCoordinator (server/broker/groups.py) with committed offsets in the coordination tree
(TreeOffsetStore).

The coordinator never blocks: a JoinGroup or SyncGroup that must wait for the rest of the group
hands it a future, answered when the coordinator says so (`drain()`); one timer task drives
session expiry, rebalance timeouts and the initial rebalance delay. A commit is answered only
after a flush of the offset store (a write to the tree, committed by its quorum) that began after
the commit was made (commits share one).

Every method first checks the request's ids against the broker's bounds (limits.py): a group id
too long is INVALID_GROUP_ID and a member or client id too long INVALID_REQUEST, answered before
the group's offsets are read or anything is kept for it. An OffsetCommit for a partition that
does not exist is UNKNOWN_TOPIC_OR_PARTITION before the coordinator sees it (Kafka's KafkaApis
does the same), so what the tree keeps for a group is bounded by the partitions that exist.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from dcli.v1 import broker_pb2 as pb
from dcli.wire import errors
from dcli.wire.errors import (BrokerError, CoordinatorNotAvailableError, NotCoordinatorError,
                              UnknownTopicOrPartitionError)
from dcli_server.api.errors import guarded, kafka_fields
from dcli_server.broker.groups import GroupConfig, GroupCoordinator, JoinRequest, PartitionResult
from dcli_server.broker.limits import check_groups_in_request, group_request_error
from dcli_server.broker.offsets import CommittedOffsets, OffsetCommit

log = logging.getLogger("dcli.server")


def now_ms() -> int:
    return int(time.time() * 1000)     # wall clock: it is stored as the commit time


class Groups:
    """The group coordinator, its offset store and the task that keeps time for them."""

    def __init__(self, offsets: CommittedOffsets, config: GroupConfig | None = None):
        """`offsets`: where committed offsets are kept (a TreeOffsetStore)."""
        self.config = config or GroupConfig()
        self.offsets = offsets
        self.coordinator: GroupCoordinator | None = None
        self._timer_changed: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._flush_lock: asyncio.Lock | None = None
        self._written = 0          # commits written to the store
        self._flushed = 0          # commits covered by a finished fsync

    async def start(self) -> None:
        self.coordinator = GroupCoordinator(self.config, self.offsets)
        self._timer_changed = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run_timers())]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.offsets is not None:
            try:
                await asyncio.to_thread(self.offsets.flush)
            except errors.DcliError as e:       # unacknowledged commits: the clients commit again
                log.warning("offsets not written at close: %s", e)
            await asyncio.to_thread(self.offsets.close)

    async def ensure_loaded(self, group_id: str, epoch: int = 0) -> None:
        """Read the group's offsets from the tree before coordinating it, and again in each new
        coordination `epoch` (another broker may have coordinated it since)."""
        if not self.offsets.loaded(group_id, epoch):
            await asyncio.to_thread(self.offsets.load, group_id, epoch)
            self.coordinator.adopt(group_id)

    def unload(self, group_id: str) -> None:
        """Another broker coordinates the group now."""
        self.coordinator.unload(group_id)
        self.offsets.forget(group_id)
        self.deliver()

    def deliver(self) -> None:
        for waiter, result in self.coordinator.drain():
            if not waiter.done():
                waiter.set_result(result)
        self._timer_changed.set()

    async def durable(self) -> None:
        """Wait until every commit made so far is flushed (one flush serves many)."""
        self._written += 1
        target = self._written
        async with self._flush_lock:
            if self._flushed >= target:
                return
            covered = self._written
            await asyncio.to_thread(self.offsets.flush)
            self._flushed = max(self._flushed, covered)

    async def _run_timers(self) -> None:
        while True:
            deadline = self.coordinator.next_deadline_ms()
            wait = None if deadline is None else max(0, deadline - now_ms()) / 1000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._timer_changed.wait(), wait)
            report = self.coordinator.tick(now_ms())
            self.deliver()
            self._timer_changed.clear()      # after deliver(): it sets the event itself
            if report.expired_offsets:
                await self.durable()


class GroupRpcs:
    """Mixed into BrokerService: `self._groups` is a started Groups, `self._broker` the Broker
    (which says which broker coordinates a group)."""

    _groups: Groups

    async def _refused(self, group_id: str, **ids) -> BrokerError | None:
        """Why this broker must not serve `group_id` now (ids past the bounds, NOT_COORDINATOR,
        or no coordinator yet), or None once its offsets are loaded. `ids`: the request's member
        id, client id, ... (limits.group_request_error)."""
        broker = self._broker
        if (e := group_request_error(broker.config, group_id, **ids)) is not None:
            return e
        try:
            node, _, _ = broker.coordinator_for(group_id)
        except BrokerError as e:
            return e
        if node != broker.broker_id:
            self._groups.unload(group_id)
            return NotCoordinatorError()
        try:
            await self._groups.ensure_loaded(group_id, broker.coordination_epoch)
        except errors.DcliError as e:
            return CoordinatorNotAvailableError(message=f"The group's offsets cannot be read: {e}")
        return None

    @guarded
    async def JoinGroup(self, request: pb.JoinGroupRequest, context) -> pb.JoinGroupResponse:
        if (e := await self._refused(request.group_id, member_id=request.member_id, client_id=request.client_id,
                                     client_host=request.client_host, protocol_type=request.protocol_type,
                                     protocols=[p.name for p in request.protocols])) is not None:
            return pb.JoinGroupResponse(member_id=request.member_id, generation_id=-1, **kafka_fields(e))
        g = self._groups
        waiter = asyncio.get_running_loop().create_future()
        g.coordinator.join(now_ms(), JoinRequest(
            group_id=request.group_id, member_id=request.member_id, client_id=request.client_id,
            client_host=request.client_host, session_timeout_ms=request.session_timeout_ms,
            rebalance_timeout_ms=request.rebalance_timeout_ms, protocol_type=request.protocol_type,
            protocols=tuple((p.name, p.metadata) for p in request.protocols)), waiter)
        g.deliver()
        r = await waiter
        return pb.JoinGroupResponse(
            error_code=r.error_code, error_message=r.error_message, generation_id=r.generation_id,
            protocol_name=r.protocol_name, leader=r.leader, member_id=r.member_id,
            members=[pb.GroupMember(member_id=m.member_id, client_id=m.client_id,
                                    client_host=m.client_host, metadata=m.metadata) for m in r.members])

    @guarded
    async def SyncGroup(self, request: pb.SyncGroupRequest, context) -> pb.SyncGroupResponse:
        if (e := await self._refused(request.group_id, member_id=request.member_id)) is not None:
            return pb.SyncGroupResponse(**kafka_fields(e))
        g = self._groups
        waiter = asyncio.get_running_loop().create_future()
        g.coordinator.sync(now_ms(), request.group_id, request.generation_id, request.member_id,
                           {a.member_id: a.assignment for a in request.assignments}, waiter)
        g.deliver()
        r = await waiter
        return pb.SyncGroupResponse(error_code=r.error_code, error_message=r.error_message,
                                    assignment=r.assignment)

    @guarded
    async def Heartbeat(self, request: pb.HeartbeatRequest, context) -> pb.HeartbeatResponse:
        if (e := await self._refused(request.group_id, member_id=request.member_id)) is not None:
            return pb.HeartbeatResponse(**kafka_fields(e))
        r = self._groups.coordinator.heartbeat(now_ms(), request.group_id, request.generation_id,
                                               request.member_id)
        self._groups.deliver()
        return pb.HeartbeatResponse(error_code=r.error_code, error_message=r.error_message)

    @guarded
    async def LeaveGroup(self, request: pb.LeaveGroupRequest, context) -> pb.LeaveGroupResponse:
        longest = max(request.member_ids, key=len, default="")
        if (e := await self._refused(request.group_id, member_id=longest)) is not None:
            return pb.LeaveGroupResponse(**kafka_fields(e))
        r = self._groups.coordinator.leave(now_ms(), request.group_id, list(request.member_ids))
        self._groups.deliver()
        return pb.LeaveGroupResponse(error_code=r.error_code, error_message=r.error_message)

    @guarded
    async def OffsetCommit(self, request: pb.OffsetCommitRequest, context) -> pb.OffsetCommitResponse:
        if (e := await self._refused(request.group_id, member_id=request.member_id)) is not None:
            return pb.OffsetCommitResponse(partitions=[
                pb.PartitionError(topic=p.topic, partition=p.partition, **kafka_fields(e)) for p in request.partitions])
        g = self._groups
        # Kafka's KafkaApis answers a partition it does not know UNKNOWN_TOPIC_OR_PARTITION before
        # the coordinator sees it: what the tree keeps is bounded by the partitions that exist
        exists = [self._exists(p.topic, p.partition) for p in request.partitions]
        known = [p for p, ok in zip(request.partitions, exists) if ok]
        committed = iter(g.coordinator.commit_offsets(
            now_ms(), request.group_id, request.generation_id, request.member_id,
            [OffsetCommit(p.topic, p.partition, p.offset, p.metadata) for p in known]) if known else ())
        unknown = UnknownTopicOrPartitionError()
        results = [next(committed) if ok else PartitionResult(p.topic, p.partition, unknown.kafka_code, unknown.message)
                   for p, ok in zip(request.partitions, exists)]
        g.deliver()
        failed = None
        if any(not r.error_code for r in results):
            try:
                await g.durable()
            except errors.DcliError as exc:     # not written: the client commits again
                failed = CoordinatorNotAvailableError(message=f"The offsets could not be stored: {exc}")
        return pb.OffsetCommitResponse(partitions=[
            pb.PartitionError(topic=r.topic, partition=r.partition,
                              **(kafka_fields(failed) if failed is not None and not r.error_code else
                                 {"error_code": r.error_code, "error_message": r.error_message}))
            for r in results])

    def _exists(self, topic: str, partition: int) -> bool:
        membership = self._broker.membership
        found = membership.topics.get(topic) if membership is not None else None
        return found is not None and 0 <= partition < found.partitions

    @guarded
    async def OffsetFetch(self, request: pb.OffsetFetchRequest, context) -> pb.OffsetFetchResponse:
        if (e := await self._refused(request.group_id)) is not None:
            return pb.OffsetFetchResponse(**kafka_fields(e))
        wanted = [(p.topic, p.partition) for p in request.partitions] or None
        found = self._groups.coordinator.fetch_offsets(request.group_id, wanted)
        return pb.OffsetFetchResponse(partitions=[
            pb.CommittedOffset(topic=c.topic, partition=c.partition, offset=c.offset, metadata=c.metadata)
            for c in found])

    @guarded
    async def ListGroups(self, request: pb.ListGroupsRequest, context) -> pb.ListGroupsResponse:
        await self._load_coordinated()
        return pb.ListGroupsResponse(groups=[
            pb.ListedGroup(group_id=g.group_id, protocol_type=g.protocol_type, state=g.state)
            for g in self._groups.coordinator.list_groups() if self._coordinates(g.group_id)])

    async def _load_coordinated(self) -> None:
        """Read the groups with offsets in the tree that this broker coordinates, so that a
        listing shows them (Empty) after a restart, as Kafka's does."""
        try:
            names = await asyncio.to_thread(self._groups.offsets.group_ids)
            for group_id in names:
                if self._coordinates(group_id):
                    await self._groups.ensure_loaded(group_id, self._broker.coordination_epoch)
        except errors.DcliError as e:       # list what is known; the tree is between leaders
            log.info("groups not read from the tree: %s", e)

    def _coordinates(self, group_id: str) -> bool:
        try:
            return self._broker.coordinator_for(group_id)[0] == self._broker.broker_id
        except BrokerError:
            return False

    @guarded
    async def DescribeGroups(self, request: pb.DescribeGroupsRequest, context) -> pb.DescribeGroupsResponse:
        check_groups_in_request(len(request.group_ids), self._broker.config, "DescribeGroups")
        refused = {}
        for group in dict.fromkeys(request.group_ids):
            if (e := await self._refused(group)) is not None:
                refused[group] = e
        described = self._groups.coordinator.describe([g for g in request.group_ids if g not in refused])
        return pb.DescribeGroupsResponse(groups=[
            pb.DescribedGroup(group_id=g, **kafka_fields(e)) for g, e in refused.items()] + [
            pb.DescribedGroup(group_id=d.group_id, error_code=d.error_code, error_message=d.error_message,
                              state=d.state, protocol_type=d.protocol_type, protocol=d.protocol,
                              generation_id=d.generation_id, leader=d.leader, members=[
                                  pb.GroupMember(member_id=m.member_id, client_id=m.client_id,
                                                 client_host=m.client_host, metadata=m.metadata,
                                                 assignment=m.assignment) for m in d.members])
            for d in described])

    @guarded
    async def DeleteGroups(self, request: pb.DeleteGroupsRequest, context) -> pb.DeleteGroupsResponse:
        check_groups_in_request(len(request.group_ids), self._broker.config, "DeleteGroups")
        g = self._groups
        refused = {}
        for group in dict.fromkeys(request.group_ids):
            if (e := await self._refused(group)) is not None:
                refused[group] = e
        results = g.coordinator.delete_groups(now_ms(), [x for x in request.group_ids if x not in refused])
        g.deliver()
        if any(not r.error_code for _, r in results):
            await g.durable()
        return pb.DeleteGroupsResponse(results=[
            pb.PartitionError(topic=group, **kafka_fields(e)) for group, e in refused.items()] + [
            pb.PartitionError(topic=group, error_code=r.error_code, error_message=r.error_message)
            for group, r in results])
