"""Replica: the Raft core (consensus/raft.py) driven on the event loop, with disk and network.

The replica owns the RaftNode, its storage and its transport, ticks the clock, and runs the
Ready loop in the order the core requires: persist (one fsync covers everything appended
since the previous one: group commit), send, hand committed entries to the state machine,
advance. Its owner (the coordination node) gives it two callbacks::

    replica = Replica(ReplicaConfig(node_id=1, peers={1: "127.0.0.1:7181"}, directory=...),
                      apply=on_committed, on_state=on_role_change)
    await replica.start()
    index = replica.propose(txn_bytes)     # leader only: raises ProposalDropped elsewhere

``apply(snapshot, entries)`` gets a snapshot to load (from the leader, or None) and the newly
committed entries, in order; ``on_state(soft_state)`` hears of role and leader changes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dcli_server.consensus import (NONE, Config, ConfChange, ConfChangeType, Entry, Message, MessageType,
                                   RaftNode, Role,
                                   Snapshot, SoftState, decode, encode)
from dcli_server.consensus.storage import RaftStorage
from dcli.wire.errors import UsageError
from dcli.wire.peers import Member, parse_member
from dcli_server.cluster.transport import NoPeers, RaftTransport
from dcli_server.storage import FsyncMode
from dcli_server.storage.files import DamagedFileError, write_atomically

log = logging.getLogger("dcli.server.raft")

# An fsync faster than this runs on the loop. In a thread it would cost far more than it takes:
# its completion waits behind every callback the loop has queued, tens of milliseconds under a
# stream of requests, and the Ready loop (so every commit) waits with it. Only an fsync on the
# loop is timed, since a thread's timing includes its wait for the interpreter lock; a slow
# disk's fsyncs run in a thread, and every PROBE_FSYNC_EVERY-th runs on the loop again, to
# notice when the disk is fast again.
INLINE_FSYNC_S = 0.002
PROBE_FSYNC_EVERY = 32
# A new commit index goes to the followers with the next append; once the log has had no new
# entry for this long, in appends of its own (Config.lazy_commit). Under a steady stream of
# writes, or a client writing one request at a time, no message says only "committed".
ANNOUNCE_COMMIT_S = 0.002
# A message costs far more here than an entry in it (gRPC-Python's cost per message): at most
# two appends in flight per follower, so that what is proposed meanwhile leaves in one, and
# larger appends to carry it.
INFLIGHT_APPENDS = 2
ENTRIES_PER_APPEND = 256
# A Ready's fsync can take seconds when other writers load the disk (a broker's, on the same
# machine: 1-2.6 s measured), and the Ready loop sends nothing meanwhile. A silent leader's
# followers drop their lease after an election timeout and elect whoever asks first, a node
# that just restarted say, although the leader is alive and connected. So heartbeats, and the
# followers' answers, leave during an fsync (RaftNode.take_liveness_messages) -- for this long:
# a disk stuck for longer must let another node lead.
HEARTBEATS_DURING_FSYNC_S = 5.0
# A learner is promoted to voter once its log is at most this many entries behind the leader's:
# what the appends in flight to a follower in step hold, so a busy cluster promotes it too.
PROMOTE_WITHIN = INFLIGHT_APPENDS * ENTRIES_PER_APPEND
_LEADER_SENDS = frozenset({MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAP})


def read_members(path: Path) -> dict[int, Member]:
    """members.json: the addresses of members added since --peers ("client/peer", or a client
    address alone from an older version). An empty file is what an older version's unsynced write
    left after a power loss: it is reported and read as no additions (the log re-applies the
    changes after the snapshot); anything else unreadable stops the node."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    if not text.strip():
        log.warning("%s is empty (a write cut by a power loss?): using --peers", path)
        return {}
    try:
        return {int(k): parse_member(str(v)) for k, v in json.loads(text).items()}
    except (ValueError, AttributeError, UsageError) as e:
        raise DamagedFileError(f"{path} is damaged ({e}): restore it, or remove it to use --peers only") from None


@dataclass
class ReplicaConfig:
    node_id: int
    peers: dict[int, str]           # every voter's client address, this node's included
    directory: Path
    fsync: FsyncMode = FsyncMode.ALWAYS
    tick_s: float = 0.05
    election_tick: int = 10         # elections after 0.5-1 s without a leader (at 50 ms ticks)
    heartbeat_tick: int = 1
    join: bool = False              # a node added to a running cluster: no bootstrap, wait for the leader
    peer_addresses: dict[int, str] = field(default_factory=dict)   # where the nodes reach each other


class Replica:
    def __init__(self, config: ReplicaConfig, *, apply: Callable[[Snapshot | None, list[Entry]], None],
                 on_state: Callable[[SoftState], None], transport: RaftTransport | None = None):
        self.config = config
        self._apply = apply
        self._on_state = on_state
        self.storage = RaftStorage(config.directory, config.fsync)
        # the members' client and peer addresses: --peers, then every membership change since
        self.peers = dict(config.peers)
        self.peer_addresses = dict(config.peer_addresses)
        self._members_file = config.directory / "members.json"
        for node_id, member in read_members(self._members_file).items():
            self.peers[node_id], self.peer_addresses[node_id] = member
        self.transport = transport or NoPeers()
        self.raft: RaftNode | None = None
        self.applied = 0
        self._kick: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._fsync_cost_s = 0.0        # moving average of the fsyncs timed on the loop
        self._fsyncs_offloaded = 0      # in a thread since the last one timed on the loop
        self._announce: asyncio.TimerHandle | None = None
        self._announce_after = 0        # the last index when the announcement was scheduled
        self._newest_snapshot: Snapshot | None = None   # taken here; the log keeps what follows the one before
        self.last_contact: dict[int, float] = {}     # peer -> monotonic time of its last message
        self._fsync_since: float | None = None         # monotonic start of the fsync under way

    # ---- life cycle ----

    def load(self) -> tuple[Snapshot, list[Entry]]:
        """Open the log; returns the snapshot and the committed entries after it, for the
        state machine to rebuild from before `start()`."""
        persisted = self.storage.load()
        fresh = persisted.hard_state.term == 0 and persisted.snapshot.index == 0 and not persisted.entries
        cfg = Config(node_id=self.config.node_id, election_tick=self.config.election_tick,
                     heartbeat_tick=self.config.heartbeat_tick, lazy_commit=True,
                     max_inflight_msgs=INFLIGHT_APPENDS, max_entries_per_msg=ENTRIES_PER_APPEND,
                     promote_within=PROMOTE_WITHIN)
        snap = persisted.snapshot
        # the state machine replays up to the stored commit index before the loop starts
        self.applied = max(persisted.hard_state.commit, snap.index)
        self.raft = RaftNode(cfg, random.Random(), persisted=persisted,
                             peers=sorted(self.config.peers) if fresh and not self.config.join else (),
                             applied=None if fresh else self.applied)
        entries = [] if fresh else (self.raft.log.slice(snap.index + 1, self.applied + 1) or [])
        return snap, entries

    async def start(self) -> None:
        self._kick = asyncio.Event()
        for node_id, address in self.peer_addresses.items():
            if node_id != self.config.node_id:
                self.transport.add_peer(node_id, address)
        if self.raft.voters == {self.config.node_id}:
            # alone: no one to wait for, so take the lead at once instead of after a timeout
            for _ in range(3 * self.config.election_tick):
                if self.raft.role == Role.LEADER:
                    break
                self.raft.tick()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._ticker()), loop.create_task(self._ready_loop())]
        self._kick.set()

    @property
    def tasks(self) -> list[asyncio.Task]:
        return self._tasks

    async def stop(self) -> None:
        if self._announce is not None:
            self._announce.cancel()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.storage.sync)
        self.storage.close()

    # ---- inputs ----

    def step(self, data: bytes, sender: int | None = None) -> None:
        """One message from another node. `sender`: who the transport says sent it; a message
        claiming another sender, or from a node that is not a member, is refused (ValueError)."""
        m: Message = decode(data)
        if m.to != self.config.node_id:
            return
        if sender is not None and m.from_ != sender:
            raise ValueError(f"a raft message from node {sender} claims to be from node {m.from_}")
        if m.from_ not in self.peers:
            raise ValueError(f"a raft message from node {m.from_}, which is not a member")
        self.last_contact[m.from_] = time.monotonic()
        self.raft.step(m)
        if self._fsync_since is not None:
            self._send_liveness()
        self._kick.set()

    def observe_commit(self, index: int, term: int) -> None:
        """The leader says (index, term) is committed (beside its answers to forwarded requests)."""
        self.raft.observe_commit(index, term)
        self._kick.set()

    def commit_hint(self) -> tuple[int, int]:
        """(commit index, its entry's term): what a follower may learn from `observe_commit`.
        No further than this node's persisted entries: while an fsync runs in a thread the
        leader may count its own copy of entries not yet on its disk."""
        log = self.raft.log
        index = min(log.committed, log.stable)
        return index, log.term(index) or 0

    def propose(self, data: bytes) -> int:
        index = self.raft.propose(data)
        self._kick.set()
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        index = self.raft.propose_conf_change(change)
        self._kick.set()
        return index

    def transfer_leadership(self, to: int) -> None:
        self.raft.transfer_leadership(to)
        self._kick.set()

    def member_changed(self, change: ConfChange) -> None:
        """A committed membership change: remember the member's address (or forget it). A
        learner is reached like any member; its promotion changes nothing here."""
        if change.type in (ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER_NODE, ConfChangeType.PROMOTE_LEARNER):
            if change.context:
                self.peers[change.node_id], self.peer_addresses[change.node_id] = \
                    parse_member(change.context.decode())
            if change.node_id in self.peer_addresses:
                self.transport.add_peer(change.node_id, self.peer_addresses[change.node_id])
        elif change.node_id != self.config.node_id:
            self.peers.pop(change.node_id, None)
            self.peer_addresses.pop(change.node_id, None)
            self.transport.remove_peer(change.node_id)
        write_atomically(self._members_file, json.dumps(
            {str(k): str(Member(v, self.peer_addresses[k])) if k in self.peer_addresses else v
             for k, v in sorted(self.peers.items())}))

    # ---- what the node asks ----

    @property
    def is_leader(self) -> bool:
        return self.raft.role == Role.LEADER

    @property
    def leader_id(self) -> int:
        return self.raft.lead

    @property
    def last_index(self) -> int:
        return self.raft.log.last_index()

    def snapshot_at(self, index: int, data: bytes) -> Snapshot:
        return self.raft.snapshot_at(index, data)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store `snapshot`, then drop the entries the snapshot before it covers. The entries
        since that one stay, so that a follower a little behind (a busy one, under a stream of
        writes) catches up from the log: a snapshot would cost it a whole state transfer and its
        clients their streams. etcd keeps such a tail too (SnapshotCatchUpEntries)."""
        await asyncio.get_running_loop().run_in_executor(None, self.storage.save_snapshot, snapshot)
        older, self._newest_snapshot = self._newest_snapshot, snapshot
        if older is not None and older.index > self.raft.log.snapshot.index:
            self.raft.compact(older)

    # ---- the loops ----

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            self.raft.tick()
            if self._fsync_since is not None:
                self._send_liveness()
            self._kick.set()

    async def _ready_loop(self) -> None:
        loop = asyncio.get_running_loop()
        raft = self.raft
        while True:
            await self._kick.wait()
            self._kick.clear()
            while raft.has_ready():
                rd = raft.ready()
                # 1. persist, durably, before anyone hears of it. A leader's appends go out
                # first, so that the followers write while the leader does (Raft thesis
                # §10.2.1): it counts its own copy only once this Ready's fsync is done, since
                # nothing is applied, and so acknowledged, before that.
                early = [m for m in rd.messages if m.type in _LEADER_SENDS]
                late = [m for m in rd.messages if m.type not in _LEADER_SENDS] if early else rd.messages
                self.storage.write(rd.snapshot, rd.entries, rd.hard_state)
                for m in early:
                    self.transport.send(m.to, encode(m))
                if self.config.fsync is FsyncMode.ALWAYS and (rd.entries or rd.snapshot or rd.hard_state):
                    self._fsync_since = time.monotonic()
                    try:
                        await self._sync(loop)
                    finally:
                        self._fsync_since = None
                elif rd.entries:
                    self.storage.sync()         # batch mode fsyncs on its own schedule, off never
                # 2. send what acknowledges or votes: only now is it true on disk
                for m in late:
                    self.transport.send(m.to, encode(m))
                # 3. apply
                if rd.soft_state is not None:
                    self._on_state(rd.soft_state)
                if rd.snapshot is not None or rd.committed_entries:
                    self._apply(rd.snapshot, rd.committed_entries)
                    if rd.committed_entries:
                        self.applied = rd.committed_entries[-1].index
                    elif rd.snapshot is not None:
                        self.applied = max(self.applied, rd.snapshot.index)
                # 4. done
                raft.advance(rd)
            if self._announce is None and raft.commit_unannounced():
                self._schedule_announce()

    def _schedule_announce(self) -> None:
        self._announce_after = self.raft.log.last_index()
        self._announce = asyncio.get_running_loop().call_later(ANNOUNCE_COMMIT_S, self._announce_commit)

    def _announce_commit(self) -> None:
        self._announce = None
        if self.raft.log.last_index() != self._announce_after:
            self._schedule_announce()       # still writing: the next appends carry it
            return
        self.raft.announce_commit()
        self._kick.set()

    def _send_liveness(self) -> None:
        """During an fsync: the heartbeats and answers ticks and steps made leave now."""
        if time.monotonic() - self._fsync_since > HEARTBEATS_DURING_FSYNC_S:
            return
        for m in self.raft.take_liveness_messages():
            self.transport.send(m.to, encode(m))

    async def _sync(self, loop: asyncio.AbstractEventLoop) -> None:
        probe = self._fsyncs_offloaded >= PROBE_FSYNC_EVERY
        if probe or self._fsync_cost_s < INLINE_FSYNC_S:
            start = time.perf_counter()
            self.storage.sync()
            cost = time.perf_counter() - start
            # on the loop, one slow fsync among fast ones does not send the next to a thread;
            # a probe's verdict holds at once
            self._fsync_cost_s = cost if probe else 0.8 * self._fsync_cost_s + 0.2 * cost
            self._fsyncs_offloaded = 0
        else:
            self._fsyncs_offloaded += 1
            await loop.run_in_executor(None, self.storage.sync)

    def leader_address(self) -> str | None:
        lead = self.raft.lead
        return self.peers.get(lead) if lead != NONE else None
