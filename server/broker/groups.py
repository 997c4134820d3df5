"""Consumer groups: Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat,
LeaveGroup) as a deterministic state machine, plus the group side of offset commits and the
admin calls (list, describe, delete). No gRPC, no asyncio, no clock: every call takes `now_ms`.

States, as kafka-consumer-groups prints them::

    Empty --join--> PreparingRebalance --all rejoined / timeout--> CompletingRebalance
      ^                 ^         ^                                   |  leader's SyncGroup
      |                 |         +---- join, leave, expiry ----------+  v
      +-- no members ---+-------------- join, leave, expiry -------- Stable
    (deleted, or Empty with no offsets left: Dead, and the group is forgotten)

The rules are those of Kafka's GroupCoordinator (2.x-3.x, before KIP-848), with Kafka's error
codes and messages; where Kafka's choice depended on hash-map order this module uses join
order (protocol vote ties, the member list, the next leader).

JoinGroup and SyncGroup may have to wait (for the other members to rejoin, for the leader's
assignment). The caller passes an opaque `waiter` (an asyncio future, a token in tests); the
coordinator never calls anything: it puts a `Reply(waiter, result)` in its outbox when the
answer is known, now or during a later call, and `drain()` hands them over. An asyncio
servicer stays thin::

    def _deliver(self):
        for waiter, result in self.groups.drain():
            if not waiter.done():          # the client may have gone away
                waiter.set_result(result)
        self._timer_changed.set()          # next_deadline_ms() may have moved

    async def JoinGroup(self, request, context):
        waiter = asyncio.get_running_loop().create_future()
        self.groups.join(now_ms(), JoinRequest(...from request...), waiter)
        self._deliver()
        return to_proto(await waiter)      # a JoinResult

    async def Heartbeat(self, request, context):
        result = self.groups.heartbeat(now_ms(), request.group_id, request.generation_id,
                                       request.member_id)
        self._deliver()                    # the call may have expired other members
        return HeartbeatResponse(error_code=result.error_code, error_message=result.error_message)

    async def OffsetCommit(self, request, context):
        results = self.groups.commit_offsets(now_ms(), ...)
        self._deliver()
        await asyncio.to_thread(self.offsets.flush)   # the durability point, see offsets.py
        return ...

    async def run_timers(self):            # one task: session expiry, rebalance timeouts
        while True:
            deadline = self.groups.next_deadline_ms()
            timeout = None if deadline is None else max(0, deadline - now_ms()) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_changed.wait(), timeout)
            self.groups.tick(now_ms())
            self._deliver()
            self._timer_changed.clear()    # after _deliver, which set it: no busy loop

Every call first runs the group's timers that are due at `now_ms` (so a late tick changes
nothing), then handles the request, then runs timers again (a zero delay fires at once).
`now_ms` is wall-clock epoch milliseconds: commits store it as their commit timestamp, which
offset expiry compares across restarts. A clock stepping back only makes timers fire later.

Member ids: a first JoinGroup (empty member id) gets `{client_id}-{uuid4}` and is admitted in
the same call (JoinGroup v0-v3 behaviour). With `require_known_member_id` (JoinGroup v4+) it
gets MEMBER_ID_REQUIRED (79) with the new id instead, and must join again with it within its
session timeout (KIP-394: a retried first join then cannot leave a ghost member behind).
Group membership lives in memory only: after a restart members find UNKNOWN_MEMBER_ID and join
again; groups with committed offsets come back as Empty groups.
"""
from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from dcli.wire.consumer_protocol import ConsumerProtocolError, decode_subscription
from dcli.wire.errors import (
    BrokerError, GroupIdNotFoundError, GroupMaxSizeReachedError, IllegalGenerationError, InconsistentGroupProtocolError,
    InvalidGroupIdError, InvalidSessionTimeoutError, MemberIdRequiredError, NonEmptyGroupError, NotCoordinatorError,
    OffsetMetadataTooLargeError, PolicyViolationError, RebalanceInProgressError, UnknownMemberIdError)
from dcli_server.broker.limits import offset_topic_error
from dcli_server.broker.offsets import CommittedOffsets, OffsetCommit

CONSUMER_PROTOCOL_TYPE = "consumer"
NO_GENERATION = -1
NO_OFFSET = -1


# -- configuration --------------------------------------------------------------------------------

_MINUTE_MS = 60_000

# Kafka's broker config name -> (field, multiplier to milliseconds or 1)
_PROPERTIES = {
    "group.min.session.timeout.ms": ("min_session_timeout_ms", 1),
    "group.max.session.timeout.ms": ("max_session_timeout_ms", 1),
    "group.initial.rebalance.delay.ms": ("initial_rebalance_delay_ms", 1),
    "offsets.retention.minutes": ("offsets_retention_ms", _MINUTE_MS),
    "offsets.retention.check.interval.ms": ("offsets_retention_check_interval_ms", 1),
    "offset.metadata.max.bytes": ("offset_metadata_max_bytes", 1),
    "group.max.size": ("group_max_size", 1),
    "dcli.max.groups": ("max_groups", 1),
}


@dataclass(frozen=True)
class GroupConfig:
    """The broker's group settings, with Kafka's defaults; `from_properties` takes Kafka's names."""

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 3_000
    new_member_join_timeout_ms: int = 300_000  # Kafka's GroupCoordinator.NewMemberJoinTimeoutMs
    offsets_retention_ms: int = 7 * 24 * 60 * _MINUTE_MS
    offsets_retention_check_interval_ms: int = 600_000
    offset_metadata_max_bytes: int = 4096
    group_max_size: int = 1000  # members and members-to-be (MEMBER_ID_REQUIRED) of one group
    max_groups: int = 10_000  # groups kept at once; a new one past it is refused (POLICY_VIOLATION)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{f.name} must be a non-negative integer, not {value!r}")
        if self.min_session_timeout_ms > self.max_session_timeout_ms:
            raise ValueError("group.min.session.timeout.ms is above group.max.session.timeout.ms")

    @classmethod
    def from_properties(cls, props: Mapping[str, object]) -> GroupConfig:
        values: dict[str, int] = {}
        for name, raw in props.items():
            if name not in _PROPERTIES:
                raise ValueError(f"unknown group config name: {name}")
            attr, scale = _PROPERTIES[name]
            try:
                values[attr] = int(str(raw).strip()) * scale
            except ValueError:
                raise ValueError(f"Invalid value {raw} for configuration {name}: Not a number") from None
        return cls(**values)


# -- requests and results -----------------------------------------------------------------------


class GroupState(str, Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class JoinRequest:
    group_id: str
    member_id: str = ""
    client_id: str = ""
    client_host: str = ""
    session_timeout_ms: int = 45_000
    rebalance_timeout_ms: int = 300_000  # <= 0: the session timeout (JoinGroup v0 has none)
    protocol_type: str = CONSUMER_PROTOCOL_TYPE
    protocols: tuple[tuple[str, bytes], ...] = ()  # (assignor name, subscription), preferred first
    require_known_member_id: bool = False  # JoinGroup v4+: MEMBER_ID_REQUIRED on a first join

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", tuple((n, bytes(m)) for n, m in self.protocols))


@dataclass(frozen=True)
class MemberInfo:
    """A member as JoinGroup gives the leader and DescribeGroups shows it."""

    member_id: str
    client_id: str = ""
    client_host: str = ""
    metadata: bytes = b""
    assignment: bytes = b""


@dataclass(frozen=True)
class JoinResult:
    error_code: int = 0
    error_message: str = ""
    generation_id: int = NO_GENERATION
    protocol_type: str = ""
    protocol_name: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[MemberInfo, ...] = ()  # only for the leader


@dataclass(frozen=True)
class SyncResult:
    error_code: int = 0
    error_message: str = ""
    assignment: bytes = b""


@dataclass(frozen=True)
class Result:
    """The answer of Heartbeat, LeaveGroup, or one item of a batch call."""

    error_code: int = 0
    error_message: str = ""


@dataclass(frozen=True)
class LeaveResult:
    """`error_code` is the request's (LeaveGroup v0-v2: the one member's error); `members`
    has each member's (LeaveGroup v3+)."""

    error_code: int = 0
    error_message: str = ""
    members: tuple[tuple[str, Result], ...] = ()


class Reply(NamedTuple):
    waiter: Any
    result: JoinResult | SyncResult


class PartitionResult(NamedTuple):
    topic: str
    partition: int
    error_code: int = 0
    error_message: str = ""


class CommittedOffset(NamedTuple):
    topic: str
    partition: int
    offset: int  # -1: none committed
    metadata: str = ""


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str = ""
    protocol: str = ""  # only when Stable, as Kafka
    generation_id: int = NO_GENERATION
    leader: str = ""
    members: tuple[MemberInfo, ...] = ()  # metadata and assignment only when Stable
    error_code: int = 0
    error_message: str = ""


class ListedGroup(NamedTuple):
    group_id: str
    protocol_type: str
    state: str


class TickReport(NamedTuple):
    expired_members: tuple[tuple[str, str], ...]  # (group, member) removed by a timeout
    expired_offsets: int  # tombstones written: flush the offset store when non-zero
    removed_groups: tuple[str, ...]  # Empty groups without offsets, now Dead and forgotten


def _err(cls: type[BrokerError]) -> dict[str, Any]:
    return {"error_code": cls.kafka_code, "error_message": cls.template}


def _result(cls: type[BrokerError] | None) -> Result:
    return Result() if cls is None else Result(**_err(cls))


# -- the state ----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Member:
    member_id: str
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    joined_ms: int
    last_heard_ms: int
    is_new: bool = True
    assignment: bytes = b""
    join_waiters: list = field(default_factory=list)
    sync_waiters: list = field(default_factory=list)

    def metadata(self, protocol: str | None) -> bytes:
        return next((m for n, m in self.protocols if n == protocol), b"")

    def vote(self, candidates: set[str]) -> str:
        return next(n for n, _ in self.protocols if n in candidates)


@dataclass(eq=False)
class _Group:
    group_id: str
    state: GroupState
    state_since_ms: int | None  # None: loaded from the offsets log, time unknown
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, _Member] = field(default_factory=dict)  # in join order
    pending_members: dict[str, int] = field(default_factory=dict)  # MEMBER_ID_REQUIRED: id -> expiry
    pending_sync: set[str] = field(default_factory=set)
    join_deadline_ms: int | None = None
    initial_remaining_ms: int | None = None  # not None: the first rebalance's delay is running
    new_member_added: bool = False
    sync_deadline_ms: int | None = None

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def supports(self, protocol_type: str, protocols: Sequence[tuple[str, bytes]]) -> bool:
        """Kafka's GroupMetadata.supportsProtocols: a first member needs a type and a protocol;
        later ones the group's type and a protocol every current member supports."""
        if self.state == GroupState.EMPTY or not self.members:
            return bool(protocol_type) and bool(protocols)
        counts = Counter(n for m in self.members.values() for n in dict(m.protocols))
        return (protocol_type == self.protocol_type
                and any(counts[n] == len(self.members) for n, _ in protocols))

    def select_protocol(self) -> str:
        """Each member votes for its most preferred protocol that all support; most votes
        win, a tie goes to the earliest member's vote."""
        members = list(self.members.values())
        candidates = set(dict(members[0].protocols))
        for m in members[1:]:
            candidates &= set(dict(m.protocols))
        votes = [m.vote(candidates) for m in members]
        counts = Counter(votes)
        best = max(counts.values())
        return next(v for v in votes if counts[v] == best)

    def member_list(self) -> tuple[MemberInfo, ...]:
        return tuple(MemberInfo(m.member_id, m.client_id, m.client_host, m.metadata(self.protocol_name))
                     for m in self.members.values())


# -- the coordinator ------------------------------------------------------------------------------


class GroupCoordinator:
    """Every consumer group of this broker, and their committed offsets through `offsets`.

        groups = GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=0), offsets=store)
        groups.join(now, JoinRequest("g", client_id="c", protocols=(("range", sub),)), waiter)
        [(waiter, result)] = groups.drain()        # result: JoinResult, generation 1
    """

    def __init__(self, config: GroupConfig | None = None, offsets: CommittedOffsets | None = None, *,
                 new_uuid: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.config = config or GroupConfig()
        self.offsets = offsets
        self._new_uuid = new_uuid
        self._groups: dict[str, _Group] = {}
        self._outbox: list[Reply] = []
        self._expired: list[tuple[str, str]] = []
        self._next_offsets_check_ms: int | None = None
        for group_id in offsets.groups() if offsets is not None else ():
            # Kafka loads groups that have only offsets as Empty groups with no protocol type.
            self._groups[group_id] = _Group(group_id, GroupState.EMPTY, None)

    def adopt(self, group_id: str) -> None:
        """The offsets of `group_id` were just loaded (this broker coordinates it now): a group
        with offsets and no state here becomes Empty, as at start."""
        if group_id not in self._groups and self.offsets is not None and self.offsets.has_offsets(group_id):
            self._groups[group_id] = _Group(group_id, GroupState.EMPTY, None)

    def unload(self, group_id: str) -> None:
        """Another broker coordinates `group_id` now: forget it; members still waiting here are
        told NOT_COORDINATOR and find the new coordinator."""
        g = self._groups.pop(group_id, None)
        if g is None:
            return
        for m in g.members.values():
            self._answer(m.join_waiters, JoinResult(member_id=m.member_id, **_err(NotCoordinatorError)))
            self._answer(m.sync_waiters, SyncResult(**_err(NotCoordinatorError)))

    # -- replies ------------------------------------------------------------------------------

    def drain(self) -> list[Reply]:
        """The replies that became known since the last drain, oldest first."""
        out, self._outbox = self._outbox, []
        return out

    def _answer(self, waiters: list, result: JoinResult | SyncResult) -> None:
        self._outbox.extend(Reply(w, result) for w in waiters)
        waiters.clear()

    def _join_reply(self, g: _Group, m: _Member, now: int) -> None:
        self._answer(m.join_waiters, JoinResult(
            generation_id=g.generation_id, protocol_type=g.protocol_type or "",
            protocol_name=g.protocol_name or "", leader=g.leader_id or "", member_id=m.member_id,
            members=g.member_list() if m.member_id == g.leader_id else ()))
        m.last_heard_ms = now

    def _join_error(self, waiter: Any, member_id: str, cls: type[BrokerError]) -> None:
        self._outbox.append(Reply(waiter, JoinResult(member_id=member_id, **_err(cls))))

    # -- JoinGroup ----------------------------------------------------------------------------

    def join(self, now_ms: int, request: JoinRequest, waiter: Any) -> None:
        """Handle a JoinGroup; its JoinResult reaches `waiter` through `drain()`, now or when
        the rebalance completes."""
        req = request
        if not req.group_id:
            return self._join_error(waiter, req.member_id, InvalidGroupIdError)
        cfg = self.config
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            return self._join_error(waiter, req.member_id, InvalidSessionTimeoutError)
        g = self._groups.get(req.group_id)
        if g is not None:
            self._advance(g, now_ms)
        if not req.member_id:
            if g is None:
                if not (req.protocol_type and req.protocols):
                    return self._join_error(waiter, "", InconsistentGroupProtocolError)
                if (full := self._no_room_for_group(req.group_id)) is not None:
                    return self._outbox.append(Reply(waiter, JoinResult(
                        error_code=full.kafka_code, error_message=full.message)))
                g = self._groups[req.group_id] = _Group(req.group_id, GroupState.EMPTY, now_ms)
            elif len(g.members) + len(g.pending_members) >= cfg.group_max_size:
                # Kafka's check for a new member (KAFKA-7641): the group is full
                return self._join_error(waiter, "", GroupMaxSizeReachedError)
            self._join_unknown_member(g, req, waiter, now_ms)
        elif g is None:
            return self._join_error(waiter, req.member_id, UnknownMemberIdError)
        else:
            self._join_known_member(g, req, waiter, now_ms)
        if g.state == GroupState.PREPARING_REBALANCE:
            self._try_complete_join(g, now_ms)
        self._advance(g, now_ms)

    def _no_room_for_group(self, group_id: str) -> BrokerError | None:
        """POLICY_VIOLATION when a new group would be one more than dcli.max.groups."""
        if len(self._groups) < self.config.max_groups:
            return None
        return PolicyViolationError(message=(
            f"The coordinator holds {len(self._groups)} groups, at most {self.config.max_groups} "
            f"(dcli.max.groups); group '{group_id}' cannot be created."))

    def _join_unknown_member(self, g: _Group, req: JoinRequest, waiter: Any, now: int) -> None:
        if not g.supports(req.protocol_type, req.protocols):
            return self._join_error(waiter, "", InconsistentGroupProtocolError)
        member_id = f"{req.client_id}-{self._new_uuid()}"
        if req.require_known_member_id:
            g.pending_members[member_id] = now + req.session_timeout_ms
            return self._join_error(waiter, member_id, MemberIdRequiredError)
        self._add_member_and_rebalance(g, member_id, req, waiter, now)

    def _join_known_member(self, g: _Group, req: JoinRequest, waiter: Any, now: int) -> None:
        if not g.supports(req.protocol_type, req.protocols):
            return self._join_error(waiter, req.member_id, InconsistentGroupProtocolError)
        if req.member_id in g.pending_members:
            del g.pending_members[req.member_id]
            return self._add_member_and_rebalance(g, req.member_id, req, waiter, now)
        m = g.members.get(req.member_id)
        if m is None or g.state == GroupState.EMPTY:
            return self._join_error(waiter, req.member_id, UnknownMemberIdError)
        unchanged = m.protocols == req.protocols
        if g.state == GroupState.PREPARING_REBALANCE:
            self._update_member_and_rebalance(g, m, req, waiter, now)
        elif unchanged and (g.state == GroupState.COMPLETING_REBALANCE or m.member_id != g.leader_id):
            # A retried join, or a follower's join to a stable group: the current generation.
            m.join_waiters.append(waiter)
            self._join_reply(g, m, now)
        else:
            # The leader rejoining a stable group, or changed subscriptions: rebalance.
            self._update_member_and_rebalance(g, m, req, waiter, now)

    def _add_member_and_rebalance(self, g: _Group, member_id: str, req: JoinRequest, waiter: Any,
                                  now: int) -> None:
        if g.state == GroupState.PREPARING_REBALANCE and g.generation_id == 0:
            g.new_member_added = True  # the first rebalance's delay may be extended
        if not g.members:
            g.protocol_type = req.protocol_type
        g.members[member_id] = _Member(
            member_id, req.client_id, req.client_host, req.session_timeout_ms,
            req.rebalance_timeout_ms if req.rebalance_timeout_ms > 0 else req.session_timeout_ms,
            req.protocol_type, req.protocols, joined_ms=now, last_heard_ms=now,
            join_waiters=[waiter])
        if g.leader_id is None:
            g.leader_id = member_id
        self._maybe_prepare_rebalance(g, now)

    def _update_member_and_rebalance(self, g: _Group, m: _Member, req: JoinRequest, waiter: Any,
                                     now: int) -> None:
        m.protocols = req.protocols
        m.session_timeout_ms = req.session_timeout_ms
        m.rebalance_timeout_ms = (req.rebalance_timeout_ms if req.rebalance_timeout_ms > 0
                                  else req.session_timeout_ms)
        m.join_waiters.append(waiter)
        self._maybe_prepare_rebalance(g, now)

    # -- rebalancing ----------------------------------------------------------------------------

    def _transition(self, g: _Group, state: GroupState, now: int) -> None:
        g.state, g.state_since_ms = state, now

    def _maybe_prepare_rebalance(self, g: _Group, now: int) -> None:
        if g.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
            self._prepare_rebalance(g, now)

    def _prepare_rebalance(self, g: _Group, now: int) -> None:
        if g.state == GroupState.COMPLETING_REBALANCE:
            # Members waiting for the leader's assignment must join again.
            for m in g.members.values():
                m.assignment = b""
                if m.sync_waiters:
                    self._answer(m.sync_waiters, SyncResult(**_err(RebalanceInProgressError)))
                    m.last_heard_ms = now
        g.pending_sync.clear()
        g.sync_deadline_ms = None
        if g.state == GroupState.EMPTY:
            delay = self.config.initial_rebalance_delay_ms
            g.join_deadline_ms = now + delay
            g.initial_remaining_ms = max(g.rebalance_timeout_ms - delay, 0)
        else:
            g.join_deadline_ms = now + g.rebalance_timeout_ms
            g.initial_remaining_ms = None
        self._transition(g, GroupState.PREPARING_REBALANCE, now)
        self._try_complete_join(g, now)

    def _try_complete_join(self, g: _Group, now: int) -> None:
        if (g.state == GroupState.PREPARING_REBALANCE and g.initial_remaining_ms is None
                and not g.pending_members
                and all(m.join_waiters for m in g.members.values())):
            self._complete_join(g, now)

    def _on_join_deadline(self, g: _Group, now: int) -> None:
        remaining = g.initial_remaining_ms
        if remaining is not None and g.new_member_added and remaining != 0:
            # Kafka's InitialDelayedJoin: members are still arriving; wait once more, within
            # the rebalance timeout.
            g.new_member_added = False
            delay = min(self.config.initial_rebalance_delay_ms, remaining)
            g.initial_remaining_ms = max(remaining - delay, 0)
            g.join_deadline_ms = now + delay
            return
        self._complete_join(g, now)

    def _complete_join(self, g: _Group, now: int) -> None:
        for m in [m for m in g.members.values() if not m.join_waiters]:
            self._remove_member(g, m)  # did not rejoin in time
        g.join_deadline_ms = g.initial_remaining_ms = None
        g.new_member_added = False
        g.generation_id += 1
        if not g.members:
            g.protocol_name = None
            self._transition(g, GroupState.EMPTY, now)
            return
        g.protocol_name = g.select_protocol()
        self._transition(g, GroupState.COMPLETING_REBALANCE, now)
        g.pending_sync = set(g.members)
        g.sync_deadline_ms = now + g.rebalance_timeout_ms
        for m in g.members.values():
            self._join_reply(g, m, now)
            m.is_new = False

    def _on_sync_deadline(self, g: _Group, now: int) -> None:
        g.sync_deadline_ms = None
        if g.state not in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE) or not g.pending_sync:
            return
        for member_id in sorted(g.pending_sync, key=list(g.members).index):
            self._expired.append((g.group_id, member_id))
            self._remove_member(g, g.members[member_id])
        self._prepare_rebalance(g, now)

    def _remove_member(self, g: _Group, m: _Member) -> None:
        self._answer(m.join_waiters, JoinResult(member_id=m.member_id, **_err(UnknownMemberIdError)))
        self._answer(m.sync_waiters, SyncResult(**_err(UnknownMemberIdError)))
        del g.members[m.member_id]
        g.pending_sync.discard(m.member_id)
        if not g.pending_sync:
            g.sync_deadline_ms = None
        if g.leader_id == m.member_id:
            g.leader_id = next(iter(g.members), None)

    def _remove_member_and_update(self, g: _Group, m: _Member, now: int) -> None:
        self._remove_member(g, m)
        if g.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(g, now)
        elif g.state == GroupState.PREPARING_REBALANCE:
            self._try_complete_join(g, now)

    # -- timers ---------------------------------------------------------------------------------

    def _member_deadline(self, m: _Member) -> int | None:
        if m.join_waiters:
            # A member with a JoinGroup in flight is alive; a new one only for so long.
            return m.joined_ms + self.config.new_member_join_timeout_ms if m.is_new else None
        if m.sync_waiters:
            return None
        return m.last_heard_ms + m.session_timeout_ms

    def _next_event(self, g: _Group) -> tuple[int, int, str] | None:
        """(time, kind, member id) of the group's earliest timer; kinds in the order they
        fire when due at the same time."""
        events = []
        if g.join_deadline_ms is not None:
            events.append((g.join_deadline_ms, 0, ""))
        if g.sync_deadline_ms is not None:
            events.append((g.sync_deadline_ms, 1, ""))
        events += [(t, 2, member_id) for member_id, t in g.pending_members.items()]
        for m in g.members.values():
            t = self._member_deadline(m)
            if t is not None:
                events.append((t, 3, m.member_id))
        return min(events, default=None, key=lambda e: e[:2])

    def _advance(self, g: _Group, now: int) -> None:
        """Fire the group's timers due at `now`, each at its own time, in time order."""
        while self._groups.get(g.group_id) is g:
            event = self._next_event(g)
            if event is None or event[0] > now:
                return
            at, kind, member_id = event
            if kind == 0:
                self._on_join_deadline(g, at)
            elif kind == 1:
                self._on_sync_deadline(g, at)
            elif kind == 2:
                del g.pending_members[member_id]
                self._try_complete_join(g, at)
            else:
                self._expired.append((g.group_id, member_id))
                self._remove_member_and_update(g, g.members[member_id], at)

    def next_deadline_ms(self) -> int | None:
        """When `tick` next has something to do (None: nothing is scheduled)."""
        times = [e[0] for e in map(self._next_event, self._groups.values()) if e is not None]
        if self._groups and self._next_offsets_check_ms is not None:
            times.append(self._next_offsets_check_ms)
        return min(times, default=None)

    def tick(self, now_ms: int) -> TickReport:
        """Run every timer due at `now_ms`: session and join timeouts, rebalance and sync
        deadlines, and (every offsets.retention.check.interval.ms) offset expiry and the
        removal of Empty groups that have no offsets left. Drain the replies afterwards."""
        for g in list(self._groups.values()):
            self._advance(g, now_ms)
        expired_offsets, removed = 0, []
        if self._next_offsets_check_ms is None:
            self._next_offsets_check_ms = now_ms + self.config.offsets_retention_check_interval_ms
        elif now_ms >= self._next_offsets_check_ms:
            self._next_offsets_check_ms = now_ms + self.config.offsets_retention_check_interval_ms
            expired_offsets, removed = self.cleanup(now_ms)
        expired, self._expired = tuple(self._expired), []
        return TickReport(expired, expired_offsets, tuple(removed))

    def cleanup(self, now_ms: int) -> tuple[int, list[str]]:
        """Kafka's cleanupGroupMetadata: expire old offsets, forget Empty groups with none
        left. Returns (tombstones written, groups removed)."""
        retention = self.config.offsets_retention_ms
        expired, removed = 0, []
        for g in list(self._groups.values()):
            self._advance(g, now_ms)
            if self.offsets is not None and self.offsets.has_offsets(g.group_id):
                if g.state == GroupState.EMPTY:
                    # Since the group became Empty, or since the last commit into it.
                    since = g.state_since_ms if g.protocol_type is not None else None
                    expired += self.offsets.expire(g.group_id, now_ms, retention, since_ms=since)
                elif g.state == GroupState.STABLE and g.protocol_type == CONSUMER_PROTOCOL_TYPE:
                    topics = self._subscribed_topics(g)
                    if topics is not None:
                        expired += self.offsets.expire(g.group_id, now_ms, retention,
                                                       keep_topics=topics)
            if g.state == GroupState.EMPTY and not (
                    self.offsets is not None and self.offsets.has_offsets(g.group_id)):
                g.state = GroupState.DEAD
                del self._groups[g.group_id]
                removed.append(g.group_id)
        return expired, removed

    @staticmethod
    def _subscribed_topics(g: _Group) -> frozenset[str] | None:
        topics: set[str] = set()
        try:
            for m in g.members.values():
                topics.update(decode_subscription(m.metadata(g.protocol_name)).topics)
        except ConsumerProtocolError:
            return None  # not a consumer's subscription: keep every offset, as Kafka does
        return frozenset(topics)

    # -- SyncGroup, Heartbeat, LeaveGroup ---------------------------------------------------------

    def sync(self, now_ms: int, group_id: str, generation_id: int, member_id: str,
             assignments: Mapping[str, bytes], waiter: Any) -> None:
        """Handle a SyncGroup; its SyncResult reaches `waiter` through `drain()`: at once, or
        (a follower before the leader) when the leader's assignment arrives."""
        if not group_id:
            return self._outbox.append(Reply(waiter, SyncResult(**_err(InvalidGroupIdError))))
        g = self._groups.get(group_id)
        if g is not None:
            self._advance(g, now_ms)
        m = g.members.get(member_id) if g is not None else None
        error: type[BrokerError] | None = None
        if m is None or g.state == GroupState.EMPTY:
            error = UnknownMemberIdError
        elif generation_id != g.generation_id:
            error = IllegalGenerationError
        elif g.state == GroupState.PREPARING_REBALANCE:
            error = RebalanceInProgressError
        if error is not None:
            return self._outbox.append(Reply(waiter, SyncResult(**_err(error))))
        m.last_heard_ms = now_ms
        g.pending_sync.discard(member_id)
        if not g.pending_sync:
            g.sync_deadline_ms = None
        m.sync_waiters.append(waiter)
        if g.state == GroupState.STABLE:
            self._answer(m.sync_waiters, SyncResult(assignment=m.assignment))
        elif member_id == g.leader_id:
            # Members the leader left out get an empty assignment, as in Kafka.
            for other in g.members.values():
                other.assignment = bytes(assignments.get(other.member_id, b""))
            self._transition(g, GroupState.STABLE, now_ms)
            for other in g.members.values():
                if other.sync_waiters:
                    self._answer(other.sync_waiters, SyncResult(assignment=other.assignment))
                    other.last_heard_ms = now_ms
        self._advance(g, now_ms)

    def heartbeat(self, now_ms: int, group_id: str, generation_id: int, member_id: str) -> Result:
        if not group_id:
            return _result(InvalidGroupIdError)
        g = self._groups.get(group_id)
        if g is None:
            return _result(UnknownMemberIdError)
        self._advance(g, now_ms)
        m = g.members.get(member_id)
        if m is None or g.state == GroupState.EMPTY:
            return _result(UnknownMemberIdError)
        if generation_id != g.generation_id:
            return _result(IllegalGenerationError)
        m.last_heard_ms = now_ms
        if g.state == GroupState.PREPARING_REBALANCE:
            return _result(RebalanceInProgressError)
        return Result()

    def leave(self, now_ms: int, group_id: str, member_ids: Iterable[str]) -> LeaveResult:
        """Remove members at once (their group rebalances without waiting for their session
        to expire)."""
        member_ids = list(member_ids)
        if not group_id:
            return LeaveResult(**_err(InvalidGroupIdError))
        g = self._groups.get(group_id)
        results = []
        for member_id in member_ids:
            if g is not None:
                self._advance(g, now_ms)
            if g is not None and member_id in g.pending_members:
                del g.pending_members[member_id]
                self._try_complete_join(g, now_ms)
                results.append((member_id, Result()))
            elif g is not None and member_id in g.members:
                self._remove_member_and_update(g, g.members[member_id], now_ms)
                results.append((member_id, Result()))
            else:
                results.append((member_id, _result(UnknownMemberIdError)))
        if g is not None:
            self._advance(g, now_ms)
        top = results[0][1] if len(results) == 1 else Result()
        return LeaveResult(top.error_code, top.error_message, tuple(results))

    # -- offsets --------------------------------------------------------------------------------

    def _validate_commit(self, g: _Group, generation_id: int, member_id: str) -> type[BrokerError] | None:
        if generation_id >= 0 or member_id:
            if member_id and member_id not in g.members:
                return UnknownMemberIdError
            if generation_id != g.generation_id:
                return IllegalGenerationError
            return None
        if g.state != GroupState.EMPTY:
            return UnknownMemberIdError  # a commit from outside a group that has members
        return None

    def commit_offsets(self, now_ms: int, group_id: str, generation_id: int, member_id: str,
                       offsets: Sequence[OffsetCommit]) -> list[PartitionResult]:
        """Kafka's handleCommitOffsets: a member commits with its generation; a commit from
        outside (generation -1, no member id: kafka-consumer-groups --reset-offsets) only into
        an Empty or unknown group. Accepted offsets are appended to the offset store and
        visible at once; flush the store before acknowledging them."""
        if self.offsets is None:
            raise RuntimeError("this coordinator has no offset store")
        g = self._groups.get(group_id)
        created = False
        if g is not None:
            self._advance(g, now_ms)
        elif generation_id < 0:
            if (full := self._no_room_for_group(group_id)) is not None:
                return [PartitionResult(c.topic, c.partition, full.kafka_code, full.message) for c in offsets]
            g = self._groups[group_id] = _Group(group_id, GroupState.EMPTY, now_ms)
            created = True
        error = IllegalGenerationError if g is None else self._validate_commit(g, generation_id, member_id)
        if error is None and g.state == GroupState.COMPLETING_REBALANCE:
            error = RebalanceInProgressError
        if error is not None:
            return [PartitionResult(c.topic, c.partition, **_err(error)) for c in offsets]
        if member_id in g.members:
            g.members[member_id].last_heard_ms = now_ms
        limit = self.config.offset_metadata_max_bytes
        accepted, results = [], []
        for c in offsets:
            if (bad_topic := offset_topic_error(c.topic)) is not None:
                results.append(PartitionResult(c.topic, c.partition, bad_topic.kafka_code, bad_topic.message))
            elif len(c.metadata.encode("utf-8")) > limit:
                results.append(PartitionResult(c.topic, c.partition, **_err(OffsetMetadataTooLargeError)))
            else:
                accepted.append(c)
                results.append(PartitionResult(c.topic, c.partition))
        if created and not accepted:
            del self._groups[group_id]      # nothing kept for it: no group either
        self.offsets.commit(group_id, accepted, now_ms)
        return results

    def fetch_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
                      ) -> list[CommittedOffset]:
        """Committed offsets of the group: every one, or each of `partitions` (-1 when none)."""
        stored = self.offsets.fetch(group_id) if self.offsets is not None else {}
        if partitions is None:
            return [CommittedOffset(t, p, v.offset, v.metadata) for (t, p), v in sorted(stored.items())]
        out = []
        for t, p in partitions:
            v = stored.get((t, p))
            out.append(CommittedOffset(t, p, v.offset, v.metadata) if v else CommittedOffset(t, p, NO_OFFSET))
        return out

    # -- admin --------------------------------------------------------------------------------------

    def list_groups(self, states: Iterable[str] | None = None) -> list[ListedGroup]:
        wanted = None if states is None else {str(s).lower() for s in states}
        return [ListedGroup(g.group_id, g.protocol_type or "", g.state.value)
                for g in self._groups.values()
                if wanted is None or g.state.value.lower() in wanted]

    def describe(self, group_ids: Iterable[str]) -> list[GroupDescription]:
        """Kafka's DescribeGroups: an unknown group is described as Dead, without an error;
        members carry their subscription and assignment only when the group is Stable."""
        out = []
        for group_id in group_ids:
            g = self._groups.get(group_id)
            if g is None:
                out.append(GroupDescription(group_id, GroupState.DEAD.value))
                continue
            stable = g.state == GroupState.STABLE
            members = tuple(
                MemberInfo(m.member_id, m.client_id, m.client_host,
                           m.metadata(g.protocol_name) if stable else b"",
                           m.assignment if stable else b"")
                for m in g.members.values())
            out.append(GroupDescription(
                group_id, g.state.value, g.protocol_type or "",
                (g.protocol_name or "") if stable else "", g.generation_id, g.leader_id or "",
                members))
        return out

    def delete_groups(self, now_ms: int, group_ids: Iterable[str]) -> list[tuple[str, Result]]:
        """Delete Empty groups and their offsets (tombstones: flush the offset store before
        acknowledging); a group with members is refused with NON_EMPTY_GROUP."""
        out = []
        for group_id in group_ids:
            g = self._groups.get(group_id)
            if g is not None:
                self._advance(g, now_ms)
            if g is None or g.state == GroupState.DEAD:
                out.append((group_id, _result(GroupIdNotFoundError)))
            elif g.state != GroupState.EMPTY:
                out.append((group_id, _result(NonEmptyGroupError)))
            else:
                g.state = GroupState.DEAD
                del self._groups[group_id]
                if self.offsets is not None:
                    self.offsets.delete_group(group_id, now_ms)
                out.append((group_id, Result()))
        return out

    def state_of(self, group_id: str) -> GroupState:
        g = self._groups.get(group_id)
        return GroupState.DEAD if g is None else g.state
