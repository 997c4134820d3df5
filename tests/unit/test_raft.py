"""Targeted scenarios for the Raft core, each driven message by message through a small network.

`Net` follows the Ready contract with a per-node disk (persist, then send, then apply, then
advance) and delivers messages until nothing is left to do. `down` nodes are stopped (no ticks,
no messages); `cut` nodes run but are partitioned off; `drop` filters single messages.
"""
from __future__ import annotations

import random

import pytest

from dcli_server.consensus import (
    NONE, Config, ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message,
    MessageType as MT, PersistedState, ProposalDropped, RaftNode, Role, Snapshot, decode, encode)
from tests.unit.raft_sim import Disk


def boot(ids: list[int]) -> list[Entry]:
    """The entries every node of a new cluster writes first (as RaftNode does with peers=)."""
    return [Entry(1, i + 1, EntryType.CONF_CHANGE,
                  ConfChange(ConfChangeType.ADD_NODE, pid).encode()) for i, pid in enumerate(ids)]


class Net:
    def __init__(self, n: int, **config):
        self.config = config
        self.ids = list(range(1, n + 1))
        self.nodes: dict[int, RaftNode] = {}
        self.disks: dict[int, Disk] = {}
        self.applied: dict[int, dict[int, Entry]] = {}
        self.down: set[int] = set()
        self.cut: set[int] = set()
        self.drop = lambda m: False
        self.sent: list[Message] = []
        self.queue: list[Message] = []
        for i in self.ids:
            self.start(i, peers=self.ids)

    def start(self, i: int, peers=(), persisted: PersistedState | None = None) -> RaftNode:
        self.nodes[i] = RaftNode(Config(i, **self.config), random.Random(i), peers=peers,
                                 persisted=persisted)
        self.disks.setdefault(i, Disk())
        self.applied[i] = {}
        return self.nodes[i]

    def restart(self, i: int) -> RaftNode:
        d = self.disks[i]
        return self.start(i, persisted=PersistedState(d.hard_state, d.snapshot, list(d.entries)))

    def process(self, i: int) -> bool:
        node = self.nodes[i]
        if not node.has_ready():
            return False
        rd = node.ready()
        self.disks[i].write(rd)
        self.queue.extend(rd.messages)
        self.sent.extend(rd.messages)
        for e in rd.committed_entries:
            self.applied[i][e.index] = e
        node.advance(rd)
        return True

    def flush(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            busy = False
            for i in list(self.nodes):
                if i not in self.down:
                    busy |= self.process(i)
            batch, self.queue = self.queue, []
            for m in batch:
                if {m.from_, m.to} & (self.down | self.cut) or self.drop(m):
                    continue
                self.nodes[m.to].step(m)
                busy = True
            if not busy:
                return
        raise AssertionError("the network did not settle")

    def tick(self, n: int = 1, ids=None) -> None:
        for _ in range(n):
            for i in ids or list(self.nodes):
                if i not in self.down:
                    self.nodes[i].tick()
            self.flush()

    def campaign(self, i: int) -> None:
        """Time out node i alone (nobody else ticks), then let the election run."""
        node = self.nodes[i]
        for _ in range(node.randomized_timeout):
            node.tick()
        self.flush()

    def leaders(self) -> list[int]:
        return [i for i, n in self.nodes.items() if i not in self.down and n.role == Role.LEADER]

    def terms(self, i: int) -> list[int | None]:
        log = self.nodes[i].log
        return [log.term(x) for x in range(log.first_index(), log.last_index() + 1)]


def sent(net: Net, mtype: MT, **fields) -> list[Message]:
    return [m for m in net.sent if m.type == mtype
            and all(getattr(m, k) == v for k, v in fields.items())]


# --- a cluster of one ------------------------------------------------------------------------

def test_single_node_elects_itself_and_commits_its_own_proposals_without_messages():
    node = RaftNode(Config(1), random.Random(3), peers=[1])
    for _ in range(2 * node.cfg.election_tick):
        node.tick()
    rd = node.ready()
    assert rd.soft_state.role == Role.LEADER and rd.hard_state.term == 2
    node.advance(rd)
    index = node.propose(b"set x 1")
    rd = node.ready()
    assert [e.data for e in rd.entries] == [b"set x 1"]
    assert rd.committed_entries[-1].index == index and rd.hard_state.commit == index
    assert rd.messages == []


# --- elections -------------------------------------------------------------------------------

def test_three_nodes_elect_exactly_one_leader_that_the_others_follow():
    net = Net(3)
    for _ in range(50):
        net.tick()
        if net.leaders():
            break
    [leader] = net.leaders()
    assert all(n.lead == leader and n.term == net.nodes[leader].term for n in net.nodes.values())
    assert net.nodes[leader].log.committed == net.nodes[leader].log.last_index()


def test_election_timeouts_are_randomized_from_the_injected_generator():
    def timeouts(seed: int) -> list[int]:
        node = RaftNode(Config(1, election_tick=10), random.Random(seed), peers=[1, 2, 3])
        out = []
        for _ in range(20):
            node.become_follower(node.term + 1, NONE)
            out.append(node.randomized_timeout)
        return out
    assert timeouts(5) == timeouts(5)
    assert timeouts(5) != timeouts(6)
    assert all(10 <= t < 20 for t in timeouts(5)) and len(set(timeouts(5))) > 3


def test_a_vote_is_persisted_with_its_answer_and_survives_a_restart():
    net = Net(3, pre_vote=False)
    net.down = {3}
    net.campaign(1)
    term = net.nodes[1].term
    answer = sent(net, MT.VOTE_RESP, from_=2, to=1)[-1]
    hs = net.disks[2].hard_state
    assert not answer.reject and (hs.term, hs.vote) == (term, 1)
    net.restart(2)
    net.nodes[2].step(Message(MT.VOTE, from_=3, to=2, term=term, index=10, log_term=term))
    [again] = net.nodes[2].ready().messages
    assert again.type == MT.VOTE_RESP and again.reject  # already voted for 1 in this term


def test_a_candidate_with_a_shorter_log_gets_no_vote():
    node = RaftNode(Config(2), random.Random(1), persisted=PersistedState(
        HardState(3, 0, 3), Snapshot(), boot([1, 2, 3]) + [Entry(3, 4)]))
    for index, log_term, granted in ((3, 1, False), (4, 2, False), (4, 3, True)):
        node.step(Message(MT.PRE_VOTE, from_=1, to=2, term=4, index=index, log_term=log_term))
        rd = node.ready()
        [answer] = rd.messages
        node.advance(rd)
        assert answer.reject is not granted, (index, log_term)


def test_pre_vote_keeps_a_node_back_from_a_partition_from_disrupting_the_leader():
    net = Net(3)
    net.campaign(1)
    term = net.nodes[1].term
    net.cut = {3}
    net.tick(60)                     # node 3 is cut off and times out again and again
    assert net.nodes[3].term == term  # a pre-vote never wins, so the term never moves
    assert net.nodes[3].role == Role.PRE_CANDIDATE
    net.cut = set()
    net.tick(30)
    assert net.leaders() == [1] and net.nodes[1].term == term
    assert net.nodes[3].lead == 1


def test_without_pre_vote_the_same_partition_does_disrupt():
    net = Net(3, pre_vote=False, check_quorum=False)
    net.campaign(1)
    term = net.nodes[1].term
    net.cut = {3}
    net.tick(60)
    assert net.nodes[3].term > term
    net.cut = set()
    net.tick(30)
    assert net.nodes[1].term > term  # the old leader was deposed by the returning node's term


def test_check_quorum_makes_an_isolated_leader_step_down():
    net = Net(3)
    net.campaign(1)
    net.cut = {2, 3}
    net.tick(net.nodes[1].cfg.election_tick, ids=[1])
    assert net.nodes[1].role == Role.LEADER   # the followers answered during the last period
    net.tick(net.nodes[1].cfg.election_tick, ids=[1])
    assert net.nodes[1].role == Role.FOLLOWER


def test_a_deposed_leader_learns_the_new_term_from_a_follower_and_steps_down():
    net = Net(3)
    net.campaign(1)
    old = net.nodes[1].term
    net.cut = {1}
    net.tick(40, ids=[2, 3])  # without node 1 ticking: it stays leader of the old term
    [new] = [i for i in net.leaders() if i != 1]
    assert net.nodes[new].term > old and net.nodes[1].role == Role.LEADER
    net.cut = set()
    net.tick(1, ids=[1])  # its heartbeat is answered with the newer term
    assert net.nodes[1].role == Role.FOLLOWER and net.nodes[1].term == net.nodes[new].term


def test_heartbeats_leave_while_a_ready_is_persisted_and_commit_nothing_beyond_the_leaders_disk():
    """A slow fsync must not silence the leader (its followers' lease would run out), nor let a
    heartbeat tell a follower to apply an entry only the leader's pending write holds."""
    net = Net(3)
    net.campaign(1)
    leader = net.nodes[1]
    index = leader.propose(b"x")
    rd = leader.ready()                     # being persisted: not advanced yet
    net.disks[1].write(rd)
    for m in rd.messages:                   # the appends leave before the fsync (as the replica)
        net.nodes[m.to].step(m)
    for f in (2, 3):
        net.process(f)
    for m in net.queue:
        leader.step(m)
    net.queue = []
    assert leader.log.committed == index    # the followers' copies and its own, not yet on disk
    leader.tick()
    beats = leader.take_liveness_messages()
    assert sorted(m.to for m in beats if m.type == MT.HEARTBEAT) == [2, 3]
    assert all(m.commit < index for m in beats)
    assert not [m for m in leader.msgs if m.type == MT.HEARTBEAT]
    leader.advance(rd)
    leader.tick()
    assert {m.commit for m in leader.take_liveness_messages()} == {index}


def test_a_heartbeat_answer_waits_for_the_term_it_carries_to_be_persisted():
    node = RaftNode(Config(2), random.Random(2), peers=[1, 2, 3])
    node.advance(node.ready())
    term = node.term
    node.step(Message(MT.HEARTBEAT, to=2, from_=1, term=term + 1))
    assert node.take_liveness_messages() == []          # term + 1 is not on disk yet
    rd = node.ready()
    assert rd.hard_state.term == term + 1 and [m.type for m in rd.messages] == [MT.HEARTBEAT_RESP]
    node.advance(rd)
    node.step(Message(MT.HEARTBEAT, to=2, from_=1, term=term + 1))
    assert [(m.type, m.to) for m in node.take_liveness_messages()] == [(MT.HEARTBEAT_RESP, 1)]
    assert not node.has_ready()


# --- replication -----------------------------------------------------------------------------

def test_log_conflicts_are_repaired_with_one_round_trip_per_term_not_per_entry():
    ids = [1, 2, 3]
    leader_log = boot(ids) + [Entry(2, 4 + i) for i in range(3)] + [Entry(5, 7 + i) for i in range(40)]
    stale_log = boot(ids) + [Entry(2, 4 + i) for i in range(2)] + [Entry(3, 6 + i) for i in range(60)]
    net = Net(3, pre_vote=False, max_entries_per_msg=1000)
    net.start(1, persisted=PersistedState(HardState(5, 0, 3), Snapshot(), leader_log))
    net.start(2, persisted=PersistedState(HardState(5, 0, 3), Snapshot(), stale_log))
    net.start(3, persisted=PersistedState(HardState(5, 0, 3), Snapshot(), leader_log[:3]))
    net.campaign(1)
    assert net.leaders() == [1]
    net.tick(3)
    assert net.terms(2) == net.terms(1) and net.terms(3) == net.terms(1)
    rejections = sent(net, MT.APP_RESP, from_=2, reject=True)
    assert 1 <= len(rejections) <= 2, rejections  # 60 conflicting entries, skipped by term
    assert net.nodes[1].log.committed == net.nodes[1].log.last_index()


def test_a_follower_commits_no_further_than_the_entries_it_just_matched():
    follower = RaftNode(Config(2), random.Random(1), persisted=PersistedState(
        HardState(3, 0, 3), Snapshot(), boot([1, 2, 3]) + [Entry(2, 4), Entry(2, 5), Entry(2, 6)]))
    follower.step(Message(MT.APP, from_=1, to=2, term=4, index=3, log_term=1,
                          entries=[Entry(2, 4)], commit=6))
    # 5 and 6 may differ from the leader's entries there: only what was just matched commits
    assert follower.log.committed == 4
    assert follower.log.term(5) == 2


def test_a_lazy_leader_announces_a_commit_only_when_asked_and_no_one_answers_it():
    net = Net(3, lazy_commit=True)
    net.campaign(1)
    net.flush()
    leader = net.nodes[1]
    index = leader.propose(b"x")
    net.sent.clear()
    net.flush()
    assert leader.log.committed == index
    # the entry went out and was answered; nothing was sent only to say it committed
    assert [(m.type, m.to) for m in net.sent] == [(MT.APP, 2), (MT.APP, 3), (MT.APP_RESP, 1),
                                                  (MT.APP_RESP, 1)]
    assert net.nodes[2].log.committed < index and leader.commit_unannounced()
    net.sent.clear()
    leader.announce_commit()
    net.flush()
    assert [(m.type, m.quiet, m.entries) for m in net.sent] == [(MT.APP, True, []), (MT.APP, True, [])]
    assert net.nodes[2].log.committed == net.nodes[3].log.committed == index
    assert set(net.applied[2]) >= {index} and not leader.commit_unannounced()


def test_proposals_made_while_an_append_is_in_flight_leave_together_in_the_next():
    net = Net(3, max_inflight_msgs=1)
    net.campaign(1)
    net.flush()
    leader = net.nodes[1]
    net.sent.clear()
    a = leader.propose(b"a")
    net.process(1)                          # the append of a is on its way, not answered yet
    b, c = leader.propose(b"b"), leader.propose(b"c")
    net.process(1)
    def appended_to_2():
        return [[e.data for e in m.entries] for m in sent(net, MT.APP, to=2) if m.entries]
    assert appended_to_2() == [[b"a"]]
    net.flush()
    assert appended_to_2() == [[b"a"], [b"b", b"c"]]
    assert leader.log.committed == c and net.nodes[2].log.term(c) == leader.term
    assert a < b


def test_a_quiet_append_that_does_not_match_is_still_answered():
    follower = RaftNode(Config(2), random.Random(1), persisted=PersistedState(
        HardState(3, 0, 3), Snapshot(), boot([1, 2, 3])))
    follower.step(Message(MT.APP, from_=1, to=2, term=3, index=5, log_term=3, commit=5, quiet=True))
    [answer] = follower.ready().messages
    assert answer.type == MT.APP_RESP and answer.reject


def test_a_commit_hint_commits_only_up_to_an_entry_this_log_shares_with_the_leader():
    follower = RaftNode(Config(2), random.Random(1), persisted=PersistedState(
        HardState(3, 0, 3), Snapshot(), boot([1, 2, 3]) + [Entry(2, 4), Entry(2, 5)]))
    follower.observe_commit(5, 3)           # the leader's 5 is of term 3: ours may differ
    assert follower.log.committed == 3
    follower.observe_commit(7, 3)           # not here yet
    assert follower.log.committed == 3
    # the leader's entries arrive (5 replaced, 6 and 7 new): the hint holds now
    follower.step(Message(MT.APP, from_=1, to=2, term=3, index=4, log_term=2, commit=3,
                          entries=[Entry(3, 5), Entry(3, 6), Entry(3, 7)]))
    assert follower.log.committed == 7
    follower.observe_commit(4, 2)           # older than what is committed: nothing changes
    assert follower.log.committed == 7


def test_messages_from_an_older_term_are_not_accepted():
    follower = RaftNode(Config(2), random.Random(1), persisted=PersistedState(
        HardState(5, 0, 3), Snapshot(), boot([1, 2, 3])))
    follower.step(Message(MT.APP, from_=1, to=2, term=4, index=3, log_term=1,
                          entries=[Entry(4, 4)], commit=4))
    assert follower.log.last_index() == 3 and follower.lead == NONE
    [answer] = follower.ready().messages
    assert answer.type == MT.APP_RESP and answer.term == 5  # tells the stale leader the term


def test_figure_8_an_old_term_entry_on_a_majority_is_not_committed_by_counting():
    # Raft paper, Figure 8: S1 leads term 4 with a term-2 entry at index 6 that S2 also has.
    ids = [1, 2, 3, 4, 5]
    b = boot(ids)
    net = Net(5, pre_vote=False, check_quorum=False, max_entries_per_msg=1)
    for i, log in {1: b + [Entry(2, 6)], 2: b + [Entry(2, 6)], 3: b, 4: b,
                   5: b + [Entry(3, 6)]}.items():
        net.start(i, persisted=PersistedState(HardState(3, 0, 5), Snapshot(), log))
    net.down = {4, 5}
    # S3 may receive the term-2 entry, but not S1's term-4 entry behind it
    net.drop = lambda m: (m.type == MT.APP and m.to == 3 and net.nodes[3].log.last_index() >= 6
                          and any(e.index >= 7 for e in m.entries))
    net.campaign(1)
    assert net.leaders() == [1] and net.nodes[1].term == 4
    assert net.nodes[1].progress[3].match == 6 and net.nodes[1].progress[2].match == 7
    assert net.nodes[1].log.committed == 5  # index 6 sits on S1, S2, S3: still not committed
    # S1 crashes; S5 (last term 3) wins with S3 and S4 and overwrites index 6 — which is legal
    # only because index 6 was never committed.
    net.down, net.drop = {1}, (lambda m: False)
    net.campaign(5)  # term 4: S2 and S3 already voted in it
    net.campaign(5)  # term 5
    assert net.leaders() == [5]
    net.tick(3)
    for i in (2, 3, 4, 5):
        assert net.applied[i][6].term == 3


# --- snapshots -------------------------------------------------------------------------------

def test_a_follower_too_far_behind_gets_the_snapshot_and_survives_a_restart():
    net = Net(3)
    net.campaign(1)
    net.down = {3}
    for i in range(20):
        net.nodes[1].propose(b"x%d" % i)
        net.flush()
    leader = net.nodes[1]
    applied = leader.log.applied
    snap = leader.snapshot_at(applied, b"state@%d" % applied)
    assert snap.conf == ConfState(frozenset(net.ids)) and snap.term == leader.term
    leader.compact(snap)
    assert leader.log.first_index() == applied + 1
    net.down = set()
    net.tick(5)
    [install] = sent(net, MT.SNAP, to=3)
    assert install.snapshot.data == b"state@%d" % applied
    assert net.disks[3].snapshot == snap
    assert net.nodes[3].log.last_index() == leader.log.last_index()
    assert net.nodes[3].voters == frozenset(net.ids)
    node = net.restart(3)
    assert node.log.snapshot == snap and node.log.committed >= applied
    assert node.log.applied == snap.index  # the state machine reloads the snapshot's data


def test_compacting_beyond_what_was_applied_is_refused():
    node = RaftNode(Config(1), random.Random(3), peers=[1])
    with pytest.raises(ValueError):
        node.compact(Snapshot(index=3, term=1, conf=ConfState(frozenset({1}))))


# --- leader transfer -------------------------------------------------------------------------

def test_leadership_moves_to_the_named_node_and_proposals_wait_meanwhile():
    net = Net(3)
    net.campaign(1)
    term = net.nodes[1].term
    net.down = {2}
    net.nodes[1].propose(b"a")   # node 2 misses this entry: it must catch up first
    net.flush()
    net.down = set()
    net.drop = lambda m: m.type == MT.HEARTBEAT  # no heartbeat may repair node 2 by accident
    net.nodes[1].transfer_leadership(2)
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose(b"b")
    net.flush()
    assert net.leaders() == [2] and net.nodes[2].term == term + 1
    assert sent(net, MT.TIMEOUT_NOW, from_=1, to=2)
    assert net.nodes[2].log.term(net.nodes[2].log.committed) == term + 1


# --- membership ------------------------------------------------------------------------------

def test_a_node_added_one_at_a_time_catches_up_and_counts_in_the_quorum():
    net = Net(3)
    net.campaign(1)
    leader = net.nodes[1]
    net.start(4)  # a new, empty node: no peers, it learns everything from the leader
    leader.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 4))
    with pytest.raises(ProposalDropped):
        leader.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 5))
    net.flush()
    net.tick(3)
    assert all(n.voters == frozenset({1, 2, 3, 4}) for n in net.nodes.values())
    assert net.terms(4) == net.terms(1)
    net.down = {2, 3}   # 2 of 4 is no longer a quorum
    index = leader.propose(b"y")
    net.flush()
    assert leader.log.committed < index
    net.down = {3}
    net.tick(1)
    assert leader.log.committed >= index


def test_a_removed_leader_steps_down_and_the_rest_elect_a_new_one():
    net = Net(3)
    net.campaign(1)
    net.nodes[1].propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 1))
    net.flush()
    assert net.nodes[1].role == Role.FOLLOWER and 1 not in net.nodes[1].voters
    net.down = {1}
    net.tick(40)
    [leader] = net.leaders()
    assert leader in (2, 3) and net.nodes[leader].voters == frozenset({2, 3})
    index = net.nodes[leader].propose(b"after")
    net.flush()
    assert net.nodes[leader].log.committed >= index


def test_membership_survives_a_restart():
    net = Net(3)
    net.campaign(1)
    net.nodes[1].propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 3))
    net.tick(2)
    assert net.restart(2).voters == frozenset({1, 2})


# --- the Ready contract and the encoding ------------------------------------------------------

def test_ready_must_be_advanced_before_the_next_one():
    node = RaftNode(Config(1), random.Random(3), peers=[1, 2, 3])
    node.ready()
    with pytest.raises(RuntimeError):
        node.ready()


def test_a_vote_and_its_answer_leave_in_the_same_ready():
    node = RaftNode(Config(2), random.Random(3), peers=[1, 2, 3])
    node.advance(node.ready())
    node.step(Message(MT.VOTE, from_=1, to=2, term=2, index=3, log_term=1))
    rd = node.ready()
    assert rd.hard_state == HardState(2, 1, 3)
    assert [(m.type, m.reject) for m in rd.messages] == [(MT.VOTE_RESP, False)]


@pytest.mark.parametrize("message", [
    Message(MT.HEARTBEAT, from_=1, to=2, term=7, commit=300),
    Message(MT.APP_RESP, from_=3, to=1, term=2**40, index=9, reject=True, reject_hint=4, log_term=2),
    Message(MT.VOTE, from_=2, to=3, term=9, index=100, log_term=8, force=True),
    Message(MT.APP, from_=1, to=3, term=9, index=100, log_term=8, commit=99, quiet=True),
    Message(MT.APP, from_=1, to=2, term=3, index=10, log_term=3, commit=10, entries=[
        Entry(3, 11, EntryType.NORMAL, b"a" * 300), Entry(3, 12, EntryType.CONF_CHANGE,
                                                          ConfChange(ConfChangeType.ADD_NODE, 4).encode())]),
    # multi-byte varints in the entries: a term and an index past 127
    Message(MT.APP, from_=1, to=2, term=300, index=4999, log_term=299, commit=4999, entries=[
        Entry(300, 5000, EntryType.NORMAL, b"b"), Entry(300, 5001, EntryType.NORMAL, b"")]),
    Message(MT.SNAP, from_=1, to=5, term=4, snapshot=Snapshot(50, 3, ConfState(frozenset({1, 2, 5})),
                                                               b"\x00state")),
])
def test_messages_round_trip_through_bytes(message):
    data = encode(message)
    assert decode(data) == message
    with pytest.raises(ValueError):
        decode(data[:-1])
    with pytest.raises(ValueError):
        decode(b"\x09" + data[1:])


def test_a_message_with_an_unknown_entry_type_does_not_decode():
    data = bytearray(encode(Message(MT.APP, from_=1, to=2, term=3, index=10, log_term=3,
                                    entries=[Entry(3, 11, EntryType.NORMAL, b"x")])))
    assert data[-3:] == bytes([int(EntryType.NORMAL), 1]) + b"x"
    data[-3] = 9
    with pytest.raises(ValueError, match="entry type"):
        decode(bytes(data))


def test_a_message_with_values_out_of_range_does_not_decode():
    """A term or index past int64, or a node id outside 1-255, is refused before Raft sees it
    (a term of 2**64+5 once crashed a node while it persisted the term)."""
    ok = encode(Message(MT.HEARTBEAT, from_=1, to=2, term=3, commit=4))
    assert decode(ok).term == 3
    for fields in ({"term": 2**63}, {"commit": 2**64 + 5}, {"from_": 256}, {"to": 1000}):
        data = encode(Message(MT.HEARTBEAT, **{"from_": 1, "to": 2, "term": 3, **fields}))
        with pytest.raises(ValueError, match="out of range"):
            decode(data)
    assert decode(encode(Message(MT.HEARTBEAT, from_=1, to=2, term=2**63 - 1))).term == 2**63 - 1
