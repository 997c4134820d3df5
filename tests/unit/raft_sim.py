"""A deterministic simulator of N Raft cores with a hostile network, crashes and restarts.

Everything comes from one ``random.Random(seed)``, so a failing seed replays exactly:
``run(seed=1234, n_nodes=5, fault_rounds=150)``. Time is rounds: in each round every live node
ticks once, then the messages due that round are delivered (each in flight for 1..max_delay
rounds, so they reorder; some are lost or duplicated; a partition drops what crosses it).

Each node follows the Ready contract with a "disk" that gets only what a Ready told it to
persist; the state machine is in memory. A crash throws away the core and the state machine (and
any state the core had not yet handed out in a Ready — readies are sometimes left for a later
round to widen that window); a restart rebuilds the core from the disk alone.

Checked after every step (a violation raises `SafetyViolation` naming the seed):
- election safety: at most one leader per term;
- log matching: every entry any node persists is checked against a registry keyed by
  (index, term): same data and same previous term, which by induction means equal prefixes;
- leader completeness: a node that becomes leader of term L holds every entry committed by the
  leaders of terms before L;
- state-machine safety: every node's state after applying index i (a running digest over all
  entries up to i) equals every other node's at i.
After the faults heal, liveness: a leader emerges and a proposal is applied on every node within
`liveness_rounds`.
"""
from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field

from dcli_server.consensus import (
    Config, ConfChange, ConfChangeType, Entry, HardState, Message, MessageType, PersistedState,
    ProposalDropped, RaftNode, Ready, Role, Snapshot, decode, encode)


class SafetyViolation(AssertionError):
    pass


class LivenessFailure(AssertionError):
    pass


@dataclass
class Faults:
    loss: float = 0.05
    duplicate: float = 0.03
    max_delay: int = 3
    long_delay: float = 0.02     # per message: in flight up to 5 election timeouts instead
    partition: float = 0.01      # per round: split the cluster (or heal an existing split)
    crash: float = 0.01          # per round: crash a live node
    restart: float = 0.05        # per round: restart a crashed node
    crash_mid_ready: float = 0.002  # per Ready: crash after persisting, before sending
    bounce: float = 0.002        # per Ready: crash after sending, restart at once
    defer_ready: float = 0.2     # per node and round: leave the Ready for later
    propose: float = 0.3         # per round: the leader gets a proposal
    compact: float = 0.02        # per node and round: snapshot and compact the log
    transfer: float = 0.005      # per round: the leader hands over
    conf_change: float = 0.02    # per round: the leader adds (a learner, or a voter) or removes one member
    slow_fsync: float = 0.0      # per Ready: its fsync takes up to 2 election timeouts


@dataclass
class Disk:
    hard_state: HardState = HardState()
    snapshot: Snapshot = Snapshot()
    entries: list[Entry] = field(default_factory=list)  # entries after the snapshot

    def term(self, index: int) -> int | None:
        if index == self.snapshot.index:
            return self.snapshot.term
        i = index - self.snapshot.index - 1
        return self.entries[i].term if 0 <= i < len(self.entries) else None

    def write(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot, self.entries = rd.snapshot, []
        if rd.entries:
            del self.entries[rd.entries[0].index - self.snapshot.index - 1:]
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state

    def compact(self, snap: Snapshot) -> None:
        del self.entries[:snap.index - self.snapshot.index]
        self.snapshot = snap


def _digest(prev: bytes, e: Entry) -> bytes:
    return hashlib.blake2b(prev + bytes((e.type,)) + e.data, digest_size=8).digest()


class SimNode:
    def __init__(self, sim: Simulation, node_id: int, peers: list[int]):
        self.sim = sim
        self.id = node_id
        self.disk = Disk()
        self.core: RaftNode | None = None
        self.digest, self.applied = b"", 0
        self.markers: set[bytes] = set()
        self.stall = 0                  # the next Ready's fsync takes this many rounds
        self.pending: tuple[Ready, int] | None = None   # a Ready waiting for its fsync, due round
        self._start(peers)

    def _start(self, peers: list[int] = ()) -> None:
        d = self.disk
        self.core = RaftNode(self.sim.config(self.id), random.Random(self.sim.rng.random()),
                             peers=peers,
                             persisted=PersistedState(d.hard_state, d.snapshot, list(d.entries)))
        self.digest, self.applied = d.snapshot.data, d.snapshot.index
        self.markers = set()
        self.pending = None

    @property
    def alive(self) -> bool:
        return self.core is not None

    def crash(self) -> None:
        self.core = None

    def restart(self) -> None:
        self._start()

    def handle_ready(self) -> None:
        core = self.core
        if core is None:
            return
        if self.pending is not None:
            rd, due = self.pending
            if self.sim.round >= due:
                self.pending = None
                self._finish(rd)
            return
        if not core.has_ready():
            return
        rd = core.ready()
        self.sim.check_entries(self, rd)
        self.disk.write(rd)                                     # 1. persist
        f = self.sim.faults
        if not self.stall and f.slow_fsync and self.sim.rng.random() < f.slow_fsync:
            self.stall = self.sim.rng.randint(1, 2 * self.sim.election_tick)
        if self.stall:
            # a slow fsync, as the replica runs it: a leader's appends and heartbeats leave
            # first, the rest once the disk is done
            self.pending, self.stall = (rd, self.sim.round + self.stall), 0
            early = {MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAP}
            for m in rd.messages:
                if m.type in early:
                    self.sim.send(m)
            rd.messages = [m for m in rd.messages if m.type not in early]
            return
        if self.sim.rng.random() < self.sim.faults.crash_mid_ready:
            self.crash()
            return
        self._finish(rd)

    def send_liveness(self) -> None:
        """While a Ready waits for its fsync: heartbeats and their answers leave at once."""
        if self.core is not None and self.pending is not None and self.sim.liveness_through_fsync:
            for m in self.core.take_liveness_messages():
                self.sim.send(m)

    def _finish(self, rd: Ready) -> None:
        core = self.core
        for m in rd.messages:                                   # 2. send
            self.sim.send(m)
        if self.sim.rng.random() < self.sim.faults.bounce:
            self.restart()
            return
        if rd.snapshot is not None:                             # 3. apply
            self.digest, self.applied = rd.snapshot.data, rd.snapshot.index
        for e in rd.committed_entries:
            if e.index != self.applied + 1:
                raise SafetyViolation(f"{self.sim.where()}: node {self.id} applies {e.index} "
                                      f"after {self.applied}")
            self.digest, self.applied = _digest(self.digest, e), e.index
            self.sim.check_applied(self, e.index)
            if e.data.startswith(b"marker"):
                self.markers.add(e.data)
        core.advance(rd)                                        # 4. advance
        self.sim.observe(self)

    def compact(self) -> None:
        core = self.core
        if core is None or self.applied - core.log.snapshot.index < 8:
            return
        snap = core.snapshot_at(self.applied, self.digest)
        self.disk.compact(snap)
        core.compact(snap)


class Simulation:
    def __init__(self, seed: int, n_nodes: int, faults: Faults | None = None,
                 election_tick: int = 10, codec: bool = True):
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.election_tick = election_tick
        self.codec = codec
        # batching and flow control shape which races happen: vary them per seed
        self.max_entries_per_msg = self.rng.choice((1, 3, 16))
        self.max_inflight = self.rng.choice((2, 8, 64))
        self.max_inflight_msgs = self.rng.choice((1, 2, 256))
        # half the seeds run as the replica does: commit indexes announced lazily, and learned
        # as well from hints that come another way (late, or out of date)
        self.lazy_commit = self.rng.random() < 0.5
        self.hints: list[tuple[int, int, int, int, int]] = []   # (due, seq, to, index, term)
        self.round = 0
        self.queue: list[tuple[int, int, Message]] = []
        self._seq = 0
        self.group: dict[int, int] = {}
        self.cut: set[tuple[int, int]] = set()      # (from, to): links that lose everything
        self.paused: set[int] = set()               # no ticks, nothing handled: SIGSTOP
        self.held: list[Message] = []               # sent to a paused node: read on resume
        self.liveness_through_fsync = True          # as the replica: see SimNode.send_liveness
        self.leader_of_term: dict[int, int] = {}
        self.commit_by_term: dict[int, int] = {}   # leader's term -> highest index it committed
        self.committed_term: dict[int, int] = {}   # index -> term of the committed entry
        self.digest_at: dict[int, bytes] = {}
        self.registry: dict[tuple[int, int], tuple[int, bytes, int]] = {}
        self.proposals = 0
        self.markers: list[bytes] = []
        ids = list(range(1, n_nodes + 1))
        self.nodes = {i: SimNode(self, i, ids) for i in ids}
        self.group = {i: 0 for i in ids}
        for node in self.nodes.values():
            node.handle_ready()

    def config(self, node_id: int) -> Config:
        return Config(node_id, election_tick=self.election_tick, lazy_commit=self.lazy_commit,
                      max_entries_per_msg=self.max_entries_per_msg, max_inflight=self.max_inflight,
                      max_inflight_msgs=self.max_inflight_msgs)

    def where(self) -> str:
        return f"seed={self.seed} round={self.round}"

    # --- network -------------------------------------------------------------------------------

    def send(self, m: Message) -> None:
        f = self.faults
        if self.rng.random() < f.loss:
            return
        copies = 2 if self.rng.random() < f.duplicate else 1
        for _ in range(copies):
            if self.codec:
                m = decode(encode(m))
            self._seq += 1
            delay = f.max_delay if self.rng.random() >= f.long_delay else 5 * self.election_tick
            due = self.round + self.rng.randint(1, delay)
            heapq.heappush(self.queue, (due, self._seq, m))

    def send_commit_hints(self) -> None:
        """What a leader's answers to forwarded requests tell a follower: (commit, its term),
        as `Replica.commit_hint` gives it (no further than the leader's persisted entries)."""
        for leader in self.leaders():
            c = min(leader.core.log.committed, leader.core.log.stable)
            to = self.rng.choice(sorted(self.nodes))
            if c and to != leader.id and self.rng.random() < 0.3:
                self._seq += 1
                due = self.round + self.rng.randint(1, self.faults.max_delay)
                heapq.heappush(self.hints, (due, self._seq, to, c, leader.core.log.term(c)))

    def deliver_due(self) -> None:
        while self.hints and self.hints[0][0] <= self.round:
            _, _, to, index, term = heapq.heappop(self.hints)
            node = self.nodes[to]
            if node.alive and to not in self.paused:
                node.core.observe_commit(index, term)
                self.observe(node)
        for _ in range(len(self.queue)):
            if not self.queue or self.queue[0][0] > self.round:
                return
            _, _, m = heapq.heappop(self.queue)
            node = self.nodes[m.to]
            if (not node.alive or self.group[m.from_] != self.group[m.to]
                    or (m.from_, m.to) in self.cut):
                continue
            if m.to in self.paused:
                self.held.append(m)
                continue
            node.core.step(m)
            self.observe(node)
            node.send_liveness()
            if self.rng.random() >= self.faults.defer_ready:
                node.handle_ready()

    def resume(self, node_id: int) -> None:
        """A paused node runs again: it reads what waited for it, all at once."""
        self.paused.discard(node_id)
        node = self.nodes[node_id]
        waiting = [m for m in self.held if m.to == node_id]
        self.held = [m for m in self.held if m.to != node_id]
        for m in waiting:
            if node.alive:
                node.core.step(m)
                self.observe(node)
        node.handle_ready()

    # --- faults --------------------------------------------------------------------------------

    def inject_faults(self) -> None:
        f, rng = self.faults, self.rng
        ids = sorted(self.nodes)
        if rng.random() < f.partition:
            if len(set(self.group.values())) > 1:
                self.group = {i: 0 for i in ids}
            else:
                cut = rng.sample(ids, rng.randint(1, len(ids) // 2))
                self.group = {i: int(i in cut) for i in ids}
        if rng.random() < f.crash:
            live = [i for i in ids if self.nodes[i].alive]
            if live:
                self.nodes[rng.choice(live)].crash()
        if rng.random() < f.restart:
            dead = [i for i in ids if not self.nodes[i].alive]
            if dead:
                self.nodes[rng.choice(dead)].restart()
        if rng.random() < f.propose:
            self.propose(b"p%d" % self.proposals)
        if rng.random() < f.transfer:
            for node in self.leaders():
                try:
                    node.core.transfer_leadership(rng.choice(ids))
                except (ProposalDropped, ValueError):
                    pass
        if rng.random() < f.conf_change:
            self.change_membership()
        for i in ids:
            if rng.random() < f.compact:
                self.nodes[i].compact()

    def change_membership(self) -> None:
        ids = sorted(self.nodes)
        fewest = min(3, len(ids) - 1)
        for node in self.leaders():
            voters, learners = node.core.voters, node.core.learners
            outside = [i for i in ids if i not in voters | learners]
            try:
                if outside and (len(voters) <= fewest or self.rng.random() < 0.5):
                    # mostly as the node adds members: a learner the leader promotes once caught
                    # up; now and then a voter at once, as logs written before learners say
                    kind = ConfChangeType.ADD_NODE if self.rng.random() < 0.2 else ConfChangeType.ADD_LEARNER_NODE
                    node.core.propose_conf_change(ConfChange(kind, self.rng.choice(outside)))
                elif learners and self.rng.random() < 0.3:
                    node_id = self.rng.choice(sorted(learners))
                    node.core.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, node_id))
                elif len(voters) > fewest:
                    node_id = self.rng.choice(sorted(voters))
                    node.core.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, node_id))
            except ProposalDropped:
                pass
            self.observe(node)

    def propose(self, data: bytes) -> bool:
        proposed = False
        for node in self.leaders():
            try:
                node.core.propose(data)
                proposed = True
            except ProposalDropped:
                pass
            self.observe(node)
        self.proposals += 1
        return proposed

    def leaders(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.alive and n.core.role == Role.LEADER]

    # --- the clock -----------------------------------------------------------------------------

    def step_round(self, faults: bool) -> None:
        self.round += 1
        if faults:
            self.inject_faults()
        order = [n for n in self.nodes.values() if n.alive and n.id not in self.paused]
        self.rng.shuffle(order)
        for node in order:
            node.core.tick()
            node.send_liveness()
            if node.core.commit_unannounced() and self.rng.random() < 0.5:
                node.core.announce_commit()
            self.observe(node)
        if self.lazy_commit:
            self.send_commit_hints()
        self.deliver_due()
        for node in order:
            if node.alive and node.id not in self.paused and (not faults or self.rng.random() >= self.faults.defer_ready):
                node.handle_ready()

    def heal(self) -> None:
        self.group = {i: 0 for i in self.nodes}
        for node in self.nodes.values():
            if not node.alive:
                node.restart()
        self.faults = Faults(loss=0, duplicate=0, max_delay=self.faults.max_delay, long_delay=0,
                             partition=0, crash=0, restart=0, crash_mid_ready=0, bounce=0,
                             defer_ready=0, propose=0, compact=self.faults.compact, transfer=0,
                             conf_change=0)

    def run_until_live(self, max_rounds: int) -> int:
        """After heal(): rounds until a marker proposal is applied on every voter."""
        marker = None
        for r in range(max_rounds):
            self.step_round(faults=False)
            for node in self.nodes.values():
                if self.rng.random() < self.faults.compact:
                    node.compact()
            leaders = self.leaders()
            voters = [self.nodes[i] for i in leaders[0].core.voters] if leaders else []
            if voters and any(all(m in n.markers for n in voters) for m in self.markers):
                return r + 1
            if leaders and (marker is None or r % (2 * self.election_tick) == 0):
                marker = b"marker%d" % r
                self.propose(marker)
                self.markers.append(marker)
        raise LivenessFailure(
            f"{self.where()}: no leader committed a proposal on all nodes within {max_rounds} "
            f"rounds after healing; roles="
            f"{ {i: (n.core.role.name, n.core.term, n.core.log.committed) for i, n in self.nodes.items()} }")

    # --- invariants ----------------------------------------------------------------------------

    def observe(self, node: SimNode) -> None:
        core = node.core
        if core is None or core.role != Role.LEADER:
            return
        term = core.term
        other = self.leader_of_term.setdefault(term, node.id)
        if other != node.id:
            raise SafetyViolation(f"{self.where()}: nodes {other} and {node.id} both lead term {term}")
        if other == node.id and term not in self.commit_by_term:
            self.commit_by_term[term] = 0
            self._check_leader_completeness(node)
        c = core.log.committed
        if c > self.commit_by_term[term]:
            self.commit_by_term[term] = c
            t = core.log.term(c)
            known = self.committed_term.setdefault(c, t)
            if known != t:
                raise SafetyViolation(f"{self.where()}: index {c} committed with terms {known} and {t}")

    def _check_leader_completeness(self, node: SimNode) -> None:
        log = node.core.log
        for term, c in self.commit_by_term.items():
            if term >= node.core.term or c <= log.snapshot.index:
                continue
            if log.term(c) != self.committed_term[c]:
                raise SafetyViolation(
                    f"{self.where()}: leader {node.id} of term {node.core.term} lacks index {c} "
                    f"(term {self.committed_term[c]}) committed in term {term}; it has "
                    f"{log.term(c)}")

    def check_entries(self, node: SimNode, rd: Ready) -> None:
        if not rd.entries:
            return
        first = rd.entries[0].index
        prev_term = (rd.snapshot.term if rd.snapshot is not None and rd.snapshot.index == first - 1
                     else node.disk.term(first - 1))
        for e in rd.entries:
            key = (e.index, e.term)
            seen = self.registry.setdefault(key, (e.type, e.data, prev_term))
            if prev_term is None or seen != (e.type, e.data, prev_term):
                raise SafetyViolation(f"{self.where()}: node {node.id} persists entry {key} "
                                      f"{(e.type, e.data, prev_term)}, another log has {seen}")
            prev_term = e.term

    def check_applied(self, node: SimNode, index: int) -> None:
        known = self.digest_at.setdefault(index, node.digest)
        if known != node.digest:
            raise SafetyViolation(f"{self.where()}: node {node.id} applied a different history "
                                  f"at index {index}")

    def check_all_leaders(self) -> None:
        for node in self.leaders():
            self._check_leader_completeness(node)


def run(seed: int, n_nodes: int = 3, fault_rounds: int = 150, liveness_rounds: int = 400,
        faults: Faults | None = None) -> Simulation:
    """One simulated history; raises SafetyViolation or LivenessFailure naming the seed."""
    sim = Simulation(seed, n_nodes, faults)
    for _ in range(fault_rounds):
        sim.step_round(faults=True)
    sim.heal()
    sim.run_until_live(liveness_rounds)
    sim.check_all_leaders()
    return sim
