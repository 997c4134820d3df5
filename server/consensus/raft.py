"""RaftNode: the Raft consensus core as a pure state machine — no I/O, no clock, no threads.

Built the way etcd's raft library is: the caller feeds inputs (`tick`, `step`, `propose`,
`propose_conf_change`, `transfer_leadership`, `compact`, and with `Config.lazy_commit`
`announce_commit` and `observe_commit`) and collects outputs with `ready()` (and, while a
Ready is being persisted, `take_liveness_messages()`).
Randomness (election timeouts) comes from an injected ``random.Random``, so a run is a function of
its seed and its inputs.

The Ready contract — the caller handles each Ready in this order, then calls ``advance(ready)``:

1. persist: if ``ready.snapshot``, replace the stored log with it; then write ``ready.entries``
   (the first of them may overwrite stored entries from its index on: drop those first), then
   ``ready.hard_state`` if not None; fsync. This must be durable BEFORE step 2: a vote or an
   acknowledgement sent and then forgotten by a crash breaks safety.
2. send ``ready.messages`` (any order; losing some is fine, Raft retries).
3. apply: the state machine loads ``ready.snapshot`` (if any), then applies
   ``ready.committed_entries`` in order (CONF_CHANGE entries are already in effect inside the
   core; the caller only updates what it keeps about peers, e.g. their addresses).
4. ``advance(ready)``. Inputs may be fed between ``ready()`` and ``advance()``, but ``ready()`` is
   not called again before ``advance()``. Meanwhile ``take_liveness_messages()`` hands out the
   heartbeats (and their answers) that ticks and steps produced, to send at once: a slow fsync
   must not silence a leader for an election timeout.

After a crash, rebuild with ``RaftNode(config, rng, persisted=PersistedState(hard_state,
snapshot, entries))`` from exactly what step 1 wrote. A brand-new cluster bootstraps with
``peers=[1, 2, 3]`` (each node writes the same initial CONF_CHANGE entries, term 1, committed);
a node that joins later starts with no peers and gets the log or a snapshot from the leader:
it joins as a learner (ADD_LEARNER_NODE), which the leader promotes to voter once it has caught
up (see membership.py).

    node = RaftNode(Config(node_id=1), random.Random(7), peers=[1])
    for _ in range(30):
        node.tick()
    rd = node.ready(); persist(rd); send(rd.messages); apply(rd); node.advance(rd)
    index = node.propose(b"set x 1")     # raises ProposalDropped unless leader

Messages and values live in ``messages.py``, the in-memory log in ``log.py``, voters and
learners in ``membership.py``, the leader's view of each follower in ``progress.py``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from dcli_server.consensus.log import RaftLog
from dcli_server.consensus.membership import Membership, caught_up
from dcli_server.consensus.messages import (
    NONE, ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message,
    MessageType as MT, Role, Snapshot, SoftState)
from dcli_server.consensus.progress import PState, Progress


@dataclass
class Config:
    node_id: int
    election_tick: int = 10        # a follower campaigns after [election_tick, 2*election_tick)
    heartbeat_tick: int = 1        # ticks between a leader's heartbeats
    pre_vote: bool = True          # a rejoining node asks before it bumps its term
    check_quorum: bool = True      # a leader steps down without a quorum; followers keep a lease
    max_entries_per_msg: int = 64
    max_inflight: int = 256        # entries sent to one follower and not acknowledged yet
    # appends with entries sent to one follower and not acknowledged yet. A small window makes
    # the entries proposed meanwhile leave together in the next append: fewer, larger messages
    # where each message costs more than an entry (etcd's MaxInflightMsgs)
    max_inflight_msgs: int = 256
    max_committed_per_ready: int = 1024
    # The leader does not send an empty append only to announce a new commit index: the next
    # append or heartbeat carries it, or the caller's `announce_commit()`, which sends it without
    # asking for an answer. etcd sends one at once, and every follower answers it; on a busy
    # cluster that is two messages per follower per write that tell nothing new.
    lazy_commit: bool = False
    # A leader promotes a learner to voter, one at a time, once the learner's log is at most
    # this many entries behind its own (membership.caught_up).
    promote_learners: bool = True
    promote_within: int = 64


@dataclass
class PersistedState:
    """What step 1 of the Ready contract stored: the input of a restart."""

    hard_state: HardState = HardState()
    snapshot: Snapshot = Snapshot()
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Ready:
    soft_state: SoftState | None          # None: unchanged since the last Ready
    hard_state: HardState | None          # None: unchanged
    snapshot: Snapshot | None             # from the leader: persist, then load into the machine
    entries: list[Entry]                  # to persist, overwriting from entries[0].index on
    committed_entries: list[Entry]        # to apply, in order, after persisting
    messages: list[Message]               # to send after persisting

    def is_empty(self) -> bool:
        return not (self.soft_state or self.hard_state or self.snapshot or self.entries
                    or self.committed_entries or self.messages)


class ProposalDropped(Exception):
    """The proposal was not appended; retry at `leader` (NONE: unknown, try later)."""

    def __init__(self, reason: str, leader: int = NONE):
        super().__init__(reason)
        self.leader = leader


class RaftNode:
    def __init__(self, config: Config, rng: random.Random, *, peers: list[int] | tuple = (),
                 persisted: PersistedState | None = None, applied: int | None = None):
        self.id = config.node_id
        self.cfg = config
        self.rng = rng
        self.role = Role.FOLLOWER
        self.lead = NONE
        self.msgs: list[Message] = []
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.election_elapsed = self.heartbeat_elapsed = 0
        self.randomized_timeout = config.election_tick
        self._prev_soft = SoftState()
        self._ready_outstanding = False
        self._commit_hint: tuple[int, int] | None = None    # see observe_commit()
        p = persisted or PersistedState()
        fresh = p.hard_state == HardState() and p.snapshot.index == 0 and not p.entries
        snap = p.snapshot
        entries = [e for e in p.entries if e.index > snap.index]
        self.log = RaftLog(snap, entries, committed=p.hard_state.commit,
                           applied=snap.index if applied is None else applied)
        self.term, self.vote = p.hard_state.term, p.hard_state.vote
        self._prev_hard = p.hard_state
        self.members = Membership(snap.index, snap.conf)
        self._apply_conf_entries(snap.index, self.log.committed)
        if fresh and peers:
            boot = [Entry(1, i + 1, EntryType.CONF_CHANGE,
                          ConfChange(ConfChangeType.ADD_NODE, pid).encode())
                    for i, pid in enumerate(sorted(set(peers)))]
            self.log.append(boot)
            self.term = 1
            self._commit_to(len(boot))
        self.become_follower(self.term, NONE)

    @property
    def voters(self) -> frozenset[int]:
        return self.members.voters

    @property
    def learners(self) -> frozenset[int]:
        return self.members.learners

    # --- inputs --------------------------------------------------------------------------------

    def tick(self) -> None:
        if self.role == Role.LEADER:
            self._tick_heartbeat()
        else:
            self.election_elapsed += 1
            if self._promotable() and self.election_elapsed >= self.randomized_timeout:
                self.election_elapsed = 0
                self._campaign("pre" if self.cfg.pre_vote else "election")
        self._step_down_if_removed()

    def propose(self, data: bytes) -> int:
        """Append `data` as a new entry; returns its index (committed later, or never)."""
        self._check_can_propose()
        index = self.log.last_index() + 1
        self._append_entries([Entry(self.term, index, EntryType.NORMAL, bytes(data))])
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        """Add, promote or remove one member; the change takes effect when its entry commits."""
        self._check_can_propose()
        if self.pending_conf_index > self.log.committed:
            raise ProposalDropped("a membership change is still pending", self.id)
        self.members.check(change)
        index = self.log.last_index() + 1
        self._append_entries([Entry(self.term, index, EntryType.CONF_CHANGE, change.encode())])
        self.pending_conf_index = index
        return index

    def transfer_leadership(self, to: int) -> None:
        if self.role != Role.LEADER:
            raise ProposalDropped("not the leader", self.lead)
        if to not in self.voters:
            raise ValueError(f"node {to} is not a voter")
        if to == self.id or to == self.lead_transferee:
            return
        self.lead_transferee = to
        self.election_elapsed = 0  # the transfer must finish within one election timeout
        if self.progress[to].match == self.log.last_index():
            self._send(Message(MT.TIMEOUT_NOW, to=to))
        else:
            self._send_append(to)

    def compact(self, snapshot: Snapshot) -> None:
        """The caller persisted `snapshot` (index <= applied): drop the entries it covers."""
        self.log.compact(snapshot)
        self.members.compact(snapshot.index)

    def commit_unannounced(self) -> bool:
        """A leader with followers that have not been sent its commit index (see lazy_commit)."""
        if self.role != Role.LEADER:
            return False
        committed = self.log.committed
        for pid, pr in self.progress.items():
            if pr.commit_sent < committed and pr.state == PState.REPLICATE and pid != self.id:
                return True
        return False

    def announce_commit(self) -> None:
        """Send the commit index to every replicating follower that has not had it, in appends
        the follower accepts without answering (it answers only a mismatch)."""
        if self.role != Role.LEADER:
            return
        committed = self.log.committed
        for pid, pr in self.progress.items():
            if pid != self.id and pr.commit_sent < committed and pr.state == PState.REPLICATE:
                self._send_append(pid, quiet=True)

    def observe_commit(self, index: int, term: int) -> None:
        """Another path says the entry (index, term) is committed, e.g. the leader beside its
        answer to a forwarded request. Once this log holds that entry, everything up to it is
        committed here too: by Log Matching the logs agree up to an entry they share."""
        if self.role == Role.LEADER or index <= self.log.committed:
            return
        if self._commit_hint is None or index > self._commit_hint[0]:
            self._commit_hint = (index, term)
        self._use_commit_hint()

    def take_liveness_messages(self) -> list[Message]:
        """Take the heartbeats and heartbeat answers out of the outbox, to be sent now, while the
        outstanding Ready is still being persisted.

        Nothing a node says leaves while its Ready waits for the disk, and a busy disk can take
        seconds. A leader's followers then stop hearing from it, their lease runs out after an
        election timeout, and they grant (pre-)votes to the first node whose timer fires (one
        that just restarted, say): a leader that is alive and connected loses its term. These
        messages depend on nothing the pending write holds: they leave only when their term is
        on disk, and a heartbeat's commit index never passes the entries persisted here (see
        `_tick_heartbeat`), so no follower applies an entry that only the leader's pending
        write holds."""
        if self._prev_hard.term != self.term or not self.msgs:
            return []
        taken = [m for m in self.msgs if m.type in (MT.HEARTBEAT, MT.HEARTBEAT_RESP)]
        if taken:
            self.msgs = [m for m in self.msgs if m.type not in (MT.HEARTBEAT, MT.HEARTBEAT_RESP)]
        return taken

    def snapshot_at(self, index: int, data: bytes) -> Snapshot:
        """A Snapshot of the state machine at applied `index`, with its term and membership."""
        term = self.log.term(index)
        if term is None or index > self.log.applied:
            raise ValueError(f"index {index} is not applied or already compacted")
        return Snapshot(index, term, self.members.at(index), bytes(data))

    def step(self, m: Message) -> None:
        """Handle one message from a peer."""
        if m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                in_lease = (self.cfg.check_quorum and self.lead != NONE
                            and self.election_elapsed < self.cfg.election_tick)
                if in_lease and not m.force:
                    return  # we heard from a leader recently: do not let this node disrupt it
            if m.type == MT.PRE_VOTE or (m.type == MT.PRE_VOTE_RESP and not m.reject):
                pass  # a pre-vote never changes terms
            elif m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
                self.become_follower(m.term, m.from_)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.cfg.check_quorum or self.cfg.pre_vote) and m.type in (MT.APP, MT.HEARTBEAT):
                # a stale leader (e.g. back from a partition) learns the new term and steps down
                self._send(Message(MT.APP_RESP, to=m.from_))
            elif m.type == MT.PRE_VOTE:
                self._send(Message(MT.PRE_VOTE_RESP, to=m.from_, reject=True))
            return
        if m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote(m)
        elif self.role == Role.LEADER:
            self._step_leader(m)
        elif self.role == Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)
        self._step_down_if_removed()

    # --- outputs -------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self.msgs or self.log.pending_snapshot or self.log.stable < self.log.last_index()
                    or self._hard_state() != self._prev_hard or self._soft_state() != self._prev_soft
                    or self.log.committed > max(self.log.applied, self.log.snapshot.index))

    def ready(self) -> Ready:
        if self._ready_outstanding:
            raise RuntimeError("advance() the previous Ready before asking for the next")
        soft, hard = self._soft_state(), self._hard_state()
        rd = Ready(soft_state=soft if soft != self._prev_soft else None,
                   hard_state=hard if hard != self._prev_hard else None,
                   snapshot=self.log.pending_snapshot,
                   entries=self.log.unstable_entries(),
                   committed_entries=self._next_committed(),
                   messages=self.msgs)
        self.msgs = []
        self._prev_soft = soft
        self._ready_outstanding = True
        return rd

    def advance(self, rd: Ready) -> None:
        """The caller did everything `rd` asked (see the module docstring)."""
        log = self.log
        if rd.snapshot is not None:
            if log.pending_snapshot is rd.snapshot:
                log.pending_snapshot = None
            log.applied = max(log.applied, rd.snapshot.index)
        if rd.entries:
            log.stable_to(rd.entries[-1].index, rd.entries[-1].term)
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.committed_entries:
            log.applied = max(log.applied, rd.committed_entries[-1].index)
        self._ready_outstanding = False

    def conf_state(self) -> ConfState:
        return self.members.conf

    # --- roles ---------------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term, self.vote = term, NONE
        self.lead = NONE
        self.election_elapsed = self.heartbeat_elapsed = 0
        self.randomized_timeout = self.cfg.election_tick + self.rng.randrange(self.cfg.election_tick)
        self.lead_transferee = NONE
        self.votes = {}
        self.progress = {}

    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.role, self.lead = Role.FOLLOWER, lead

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role, self.lead = Role.LEADER, self.id
        last = self.log.last_index()
        self.progress = {v: Progress(last + 1) for v in self.members.all}
        if self.id in self.progress:
            self.progress[self.id].recent_active = True
        # Entries of earlier terms may hide an uncommitted membership change: none may be
        # proposed until this term's first entry commits (the single-server change fix).
        self.pending_conf_index = last + 1
        self._append_entries([Entry(self.term, last + 1)])

    def _campaign(self, kind: str) -> None:
        if kind == "pre":
            self.role, self.lead, self.votes = Role.PRE_CANDIDATE, NONE, {}
            vote_type, term = MT.PRE_VOTE, self.term + 1
        else:
            self._reset(self.term + 1)
            self.role, self.vote = Role.CANDIDATE, self.id
            vote_type, term = MT.VOTE, self.term
        if self._poll(self.id, True) == "won":
            self._won_election()
            return
        for v in sorted(self.voters):
            if v != self.id:
                self._send(Message(vote_type, to=v, term=term, index=self.log.last_index(),
                                   log_term=self.log.last_term(), force=kind == "transfer"))

    def _won_election(self) -> None:
        if self.role == Role.PRE_CANDIDATE:
            self._campaign("election")
        else:
            self._become_leader()

    def _poll(self, voter: int, granted: bool) -> str:
        self.votes.setdefault(voter, granted)
        yes = sum(1 for v, g in self.votes.items() if g and v in self.voters)
        no = sum(1 for v, g in self.votes.items() if not g and v in self.voters)
        quorum = self.members.quorum()
        return "won" if yes >= quorum else "lost" if no >= quorum else "pending"

    def _promotable(self) -> bool:
        return self.id in self.voters and self.log.pending_snapshot is None

    def _step_down_if_removed(self) -> None:
        if self.role == Role.LEADER and self.id not in self.voters:
            self.become_follower(self.term, NONE)

    # --- message handling ----------------------------------------------------------------------

    def _handle_vote(self, m: Message) -> None:
        resp = MT.VOTE_RESP if m.type == MT.VOTE else MT.PRE_VOTE_RESP
        can_vote = (self.vote == m.from_ or (self.vote == NONE and self.lead == NONE)
                    or (m.type == MT.PRE_VOTE and m.term > self.term))
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self._send(Message(resp, to=m.from_, term=m.term))
            if m.type == MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.from_
        else:
            self._send(Message(resp, to=m.from_, reject=True))

    def _step_follower(self, m: Message) -> None:
        if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
            self.election_elapsed = 0
            self.lead = m.from_
            self._handle_replication(m)
        elif m.type == MT.TIMEOUT_NOW and self._promotable():
            self._campaign("transfer")

    def _step_candidate(self, m: Message) -> None:
        if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
            self.become_follower(m.term, m.from_)
            self._handle_replication(m)
            return
        mine = MT.PRE_VOTE_RESP if self.role == Role.PRE_CANDIDATE else MT.VOTE_RESP
        if m.type == mine:
            result = self._poll(m.from_, not m.reject)
            if result == "won":
                self._won_election()
            elif result == "lost":
                self.become_follower(self.term, NONE)

    def _handle_replication(self, m: Message) -> None:
        log = self.log
        if m.type == MT.HEARTBEAT:
            self._commit_to(m.commit)
            self._send(Message(MT.HEARTBEAT_RESP, to=m.from_))
            return
        if m.type == MT.SNAP:
            s = m.snapshot
            if s is not None and s.index > log.committed:
                if log.match_term(s.index, s.term):
                    self._commit_to(s.index)
                else:
                    log.restore(s)
                    self.members.restore(s.index, s.conf)
            self._send(Message(MT.APP_RESP, to=m.from_, index=log.committed))
            return
        if m.index < log.committed:
            if not m.quiet:
                self._send(Message(MT.APP_RESP, to=m.from_, index=log.committed))
            return
        old = log.committed
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._apply_conf_entries(old, log.committed)
            self._use_commit_hint()
            if not m.quiet:
                self._send(Message(MT.APP_RESP, to=m.from_, index=last_new))
        else:
            hint, hint_term = log.find_conflict_by_term(min(m.index, log.last_index()), m.log_term)
            self._send(Message(MT.APP_RESP, to=m.from_, index=m.index, reject=True,
                               reject_hint=hint, log_term=hint_term))

    def _step_leader(self, m: Message) -> None:
        pr = self.progress.get(m.from_)
        if pr is None:
            return
        pr.recent_active = True
        if m.type == MT.HEARTBEAT_RESP:
            pr.probe_sent = False
            if pr.state == PState.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight_msgs:
                pr.inflight.popleft()   # an append may have been lost: let one more go (as etcd)
            if pr.match < self.log.last_index():
                if pr.state == PState.REPLICATE and self._paused(pr):
                    pr.become_probe()  # the window is full and may have been lost: probe again
                self._send_append(m.from_)
        elif m.type == MT.APP_RESP:
            self._handle_append_response(m, pr)

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state == PState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.from_)
            return
        was_paused = self._paused(pr)
        if pr.maybe_update(m.index):
            if pr.state == PState.PROBE:
                pr.become_replicate()
            elif pr.state == PState.SNAPSHOT and pr.match >= pr.pending_snapshot:
                pr.become_probe()
                pr.become_replicate()
            lazy = self.cfg.lazy_commit
            if self._maybe_commit() and not lazy:
                self._bcast_append()
            elif was_paused and m.from_ in self.progress:    # a commit may have removed it
                # it may lack the latest commit index (etcd sends it now; lazily, it waits)
                self._send_append(m.from_, send_if_empty=not lazy)
            if self.role != Role.LEADER or m.from_ not in self.progress:
                return
            for _ in range(self.cfg.max_inflight + 1):
                if not self._send_append(m.from_, send_if_empty=False):
                    break
        if m.from_ == self.lead_transferee and pr.match == self.log.last_index():
            self._send(Message(MT.TIMEOUT_NOW, to=m.from_))

    # --- replication ---------------------------------------------------------------------------

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if self.cfg.check_quorum and not self._quorum_active():
                self.become_follower(self.term, NONE)
                return
            self.lead_transferee = NONE  # a transfer that did not finish in time is abandoned
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            for pid, pr in self.progress.items():
                if pid == self.id:
                    continue
                if pr.state == PState.SNAPSHOT:
                    pr.snapshot_wait += 1
                    if pr.snapshot_wait > self.cfg.election_tick:
                        pr.pending_snapshot = 0  # assume it was lost; probe (and resend) again
                        pr.become_probe()
                # no further than this node's own persisted entries: a heartbeat may leave
                # before the pending Ready is on disk (take_liveness_messages)
                commit = min(pr.match, self.log.committed, self.log.stable)
                pr.commit_sent = max(pr.commit_sent, commit)
                self._send(Message(MT.HEARTBEAT, to=pid, commit=commit))
            if self.cfg.promote_learners and self.learners:
                self._maybe_promote()

    def _quorum_active(self) -> bool:
        active = 0
        voters = self.voters
        for pid, pr in self.progress.items():
            if pid in voters and (pid == self.id or pr.recent_active):
                active += 1
            if pid != self.id:
                pr.recent_active = False
        return active >= self.members.quorum()

    def _maybe_promote(self) -> None:
        """Propose the first learner that has caught up as a voter (one change at a time)."""
        if self.pending_conf_index > self.log.committed or self.lead_transferee != NONE:
            return
        last = self.log.last_index()
        for pid in sorted(self.learners):
            pr = self.progress.get(pid)
            if pr is not None and pr.recent_active and caught_up(
                    pr.match, last, self.pending_conf_index, self.cfg.promote_within):
                self.propose_conf_change(ConfChange(ConfChangeType.PROMOTE_LEARNER, pid))
                return

    def _append_entries(self, entries: list[Entry]) -> None:
        self.log.append(entries)
        me = self.progress.get(self.id)
        if me is not None:
            me.maybe_update(self.log.last_index())
        self._maybe_commit()
        self._bcast_append()

    def _bcast_append(self) -> None:
        for pid in list(self.progress):
            if pid != self.id:
                self._send_append(pid)

    def _send_append(self, to: int, send_if_empty: bool = True, quiet: bool = False) -> bool:
        pr = self.progress[to]
        if self._paused(pr):
            return False
        log = self.log
        prev = pr.next - 1
        prev_term = log.term(prev)
        entries = log.slice(pr.next, pr.next + self.cfg.max_entries_per_msg)
        if prev_term is None or entries is None:
            if not pr.recent_active:
                return False  # do not ship a snapshot to a node that does not answer
            self._send(Message(MT.SNAP, to=to, snapshot=log.snapshot))
            pr.become_snapshot(log.snapshot.index)
            return True
        if not entries and not send_if_empty:
            return False
        self._send(Message(MT.APP, to=to, index=prev, log_term=prev_term, entries=entries,
                           commit=log.committed, quiet=quiet and not entries))
        pr.commit_sent = max(pr.commit_sent, log.committed)
        if pr.state == PState.REPLICATE:
            if entries:
                pr.next = entries[-1].index + 1
                pr.inflight.append(pr.next - 1)
        elif pr.state == PState.PROBE:
            pr.probe_sent = True
        return True

    def _maybe_commit(self) -> bool:
        advanced = False
        for _ in range(2):  # a committed removal shrinks the quorum: look once more
            voters = self.voters    # learners' acknowledgements do not count
            matches = sorted((pr.match for pid, pr in self.progress.items() if pid in voters),
                             reverse=True)
            quorum = self.members.quorum()
            if len(matches) < quorum:
                break
            index = matches[quorum - 1]
            # Figure 8: only an entry of the current term commits by counting replicas
            if self.log.term(index) != self.term or not self._commit_to(index):
                break
            advanced = True
        return advanced

    def _use_commit_hint(self) -> None:
        hint = self._commit_hint
        if hint is None:
            return
        if hint[0] <= self.log.committed:
            self._commit_hint = None
        elif self.log.match_term(*hint):
            self._commit_hint = None
            self._commit_to(hint[0])

    def _paused(self, pr: Progress) -> bool:
        return pr.is_paused(self.cfg.max_inflight, self.cfg.max_inflight_msgs)

    def _commit_to(self, index: int) -> bool:
        old = self.log.committed
        if not self.log.commit_to(index):
            return False
        self._apply_conf_entries(old, index)
        return True

    def _apply_conf_entries(self, after: int, upto: int) -> None:
        """Membership changes take effect when their entry commits."""
        log = self.log
        offset = log.snapshot.index
        for i in range(max(after, offset) + 1, upto + 1):
            e = log.entries[i - offset - 1]
            if e.type == EntryType.CONF_CHANGE:
                self._apply_conf_change(i, ConfChange.decode(e.data))

    def _apply_conf_change(self, index: int, cc: ConfChange) -> None:
        self.members.apply(index, cc)
        if self.role != Role.LEADER:
            return
        members = self.members.all
        if cc.node_id in members and cc.node_id not in self.progress:
            self.progress[cc.node_id] = Progress(self.log.last_index() + 1)
        elif cc.node_id not in members:
            self.progress.pop(cc.node_id, None)
            if self.lead_transferee == cc.node_id:
                self.lead_transferee = NONE

    # --- helpers -------------------------------------------------------------------------------

    def _check_can_propose(self) -> None:
        if self.role != Role.LEADER:
            raise ProposalDropped("not the leader", self.lead)
        if self.lead_transferee != NONE:
            raise ProposalDropped("leadership is being transferred", self.lead_transferee)

    def _send(self, m: Message) -> None:
        m.from_ = self.id
        if m.term == 0:
            m.term = self.term
        self.msgs.append(m)

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def _soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)

    def _next_committed(self) -> list[Entry]:
        log = self.log
        base = log.pending_snapshot.index if log.pending_snapshot else log.snapshot.index
        lo = max(log.applied, base) + 1
        hi = min(log.committed, lo + self.cfg.max_committed_per_ready - 1)
        if hi < lo:
            return []
        return log.slice(lo, hi + 1) or []
