"""Learners in the Raft core: a new member joins without a vote and is promoted once caught up.

Driven through test_raft's `Net` (the Ready contract with a disk per node). The security
finding these answer: adding a member that never answers must not take the quorum away.
"""
from __future__ import annotations

import random

import pytest

from dcli_server.consensus import (
    Config, ConfChange, ConfChangeType as CC, ConfState, Entry, EntryType, HardState, Message,
    MessageType as MT, PersistedState, RaftNode, Role, Snapshot, decode, encode)
from dcli_server.consensus.membership import Membership, caught_up
from dcli_server.consensus.storage import decode_snapshot, encode_snapshot
from tests.unit.test_raft import Net, sent


def add_learner(net: Net, leader: int, node: int, *, start: bool = True) -> None:
    if start:
        net.start(node)     # a new, empty node: no peers, it learns everything from the leader
    net.nodes[leader].propose_conf_change(ConfChange(CC.ADD_LEARNER_NODE, node))
    net.flush()


def write(net: Net, leader: int, data: bytes) -> int:
    index = net.nodes[leader].propose(data)
    net.flush()
    return index


# --- a learner gets the log, but neither its vote nor its acknowledgements count ----------------

def test_a_learner_receives_the_log_but_its_acknowledgements_do_not_commit():
    net = Net(2, promote_learners=False)
    net.campaign(1)
    add_learner(net, 1, 3)
    leader = net.nodes[1]
    assert leader.voters == {1, 2} and leader.learners == {3}
    assert net.nodes[3].learners == {3} and net.nodes[3].voters == {1, 2}
    write(net, 1, b"a")
    assert net.terms(3) == net.terms(1)          # it has the log
    net.down = {2}                                # 1 of the 2 voters, whatever the learner says
    index = write(net, 1, b"b")
    assert net.nodes[3].log.last_index() >= index and leader.progress[3].match >= index
    assert leader.log.committed < index
    net.down = set()
    net.tick(1)
    assert leader.log.committed >= index


def test_a_learner_never_campaigns_and_its_vote_does_not_elect():
    net = Net(2, promote_learners=False)
    net.campaign(1)
    add_learner(net, 1, 3)
    net.down = {1}
    net.tick(60, ids=[3])                         # the leader is gone: a voter would campaign
    assert net.nodes[3].role == Role.FOLLOWER
    assert not [m for m in net.sent if m.from_ == 3 and m.type in (MT.VOTE, MT.PRE_VOTE)]
    net.nodes[3].step(Message(MT.TIMEOUT_NOW, from_=1, to=3, term=net.nodes[3].term))
    assert net.nodes[3].role == Role.FOLLOWER     # not even when told to
    # node 2 campaigns with 1 down: it does not ask the learner, and a yes from it does not count
    two = net.nodes[2]
    for _ in range(two.randomized_timeout):
        two.tick()
    net.flush()
    assert two.role == Role.PRE_CANDIDATE and not sent(net, MT.PRE_VOTE, from_=2, to=3)
    two.step(Message(MT.PRE_VOTE_RESP, from_=3, to=2, term=two.term + 1))
    assert two.role == Role.PRE_CANDIDATE
    two.step(Message(MT.PRE_VOTE_RESP, from_=1, to=2, term=two.term + 1))
    assert two.role == Role.CANDIDATE       # while a voter's yes makes the majority of {1, 2}


def test_a_leader_does_not_count_an_active_learner_toward_its_quorum():
    net = Net(2, promote_learners=False)
    net.campaign(1)
    add_learner(net, 1, 3)
    net.down = {2}
    net.tick(30, ids=[1, 3])                      # only the learner answers: check-quorum fails
    assert net.nodes[1].role == Role.FOLLOWER


# --- an unreachable learner cannot take the quorum away --------------------------------------

@pytest.mark.parametrize("size", [1, 3])
def test_an_unreachable_learner_leaves_the_cluster_writable(size):
    net = Net(size)
    net.campaign(1)
    net.start(size + 1)
    net.down = {size + 1}                         # e.g. AddMember(4, "127.0.0.1:1")
    add_learner(net, 1, size + 1, start=False)
    for i in range(5):
        net.tick(10)                              # well past election timeouts and quorum checks
        index = write(net, 1, b"w%d" % i)
        assert net.leaders() == [1] and net.nodes[1].log.committed >= index
    assert net.nodes[1].learners == {size + 1} and size + 1 not in net.nodes[1].voters


# --- promotion -------------------------------------------------------------------------------

def test_a_learner_is_promoted_once_it_catches_up_and_then_counts():
    net = Net(3, promote_within=4, max_entries_per_msg=2)
    net.campaign(1)
    for i in range(20):
        write(net, 1, b"x%d" % i)
    net.start(4)
    net.down = {4}                                # added before it is started
    add_learner(net, 1, 4, start=False)
    net.tick(30)
    assert net.nodes[1].learners == {4}           # never answered: stays a learner
    net.down = set()
    net.tick(5)
    assert all(n.voters == {1, 2, 3, 4} and not n.learners for n in net.nodes.values())
    [promote] = [e for e in net.nodes[1].log.entries if e.type == EntryType.CONF_CHANGE
                 and ConfChange.decode(e.data).type == CC.PROMOTE_LEARNER]
    assert ConfChange.decode(promote.data).node_id == 4
    net.down = {2, 3}                             # 2 of 4 voters: no longer a quorum
    index = write(net, 1, b"y")
    assert net.nodes[1].log.committed < index
    net.down = {3}
    net.tick(1)
    assert net.nodes[1].log.committed >= index


def test_promotion_waits_for_a_pending_membership_change_and_for_the_log():
    assert caught_up(match=95, last_index=100, since=90, within=10)
    assert not caught_up(match=89, last_index=100, since=80, within=10)   # too far behind
    assert not caught_up(match=95, last_index=100, since=96, within=10)   # lacks this term's start
    net = Net(1)
    net.campaign(1)
    net.start(2)
    net.down = {2}
    add_learner(net, 1, 2, start=False)
    net.nodes[1].propose_conf_change(ConfChange(CC.ADD_LEARNER_NODE, 3))
    net.start(3)
    net.down = set()
    net.tick(1)     # the add of 3 is pending until 2 and 3 are in: no promotion meanwhile
    net.tick(5)
    assert net.nodes[1].voters == {1, 2, 3}
    promotions = [ConfChange.decode(e.data).node_id for e in net.nodes[1].log.entries
                  if e.type == EntryType.CONF_CHANGE and ConfChange.decode(e.data).type == CC.PROMOTE_LEARNER]
    assert promotions == [2, 3]


# --- persistence -----------------------------------------------------------------------------

def test_learners_survive_a_restart_from_the_log_and_from_a_snapshot():
    net = Net(3, promote_learners=False)
    net.campaign(1)
    add_learner(net, 1, 4)
    net.tick(2)
    assert net.restart(2).learners == {4} and net.nodes[2].voters == {1, 2, 3}
    leader = net.nodes[1]
    snap = leader.snapshot_at(leader.log.applied, b"state")
    assert snap.conf == ConfState(frozenset({1, 2, 3}), frozenset({4}))
    leader.compact(snap)
    net.disks[1].compact(snap)
    restarted = net.restart(1)
    assert restarted.learners == {4} and restarted.conf_state() == snap.conf
    assert decode_snapshot(snap.index, encode_snapshot(snap)) == snap


def test_a_snapshot_from_the_leader_carries_the_learners():
    net = Net(3, promote_learners=False)
    net.campaign(1)
    add_learner(net, 1, 4)
    net.down = {3}
    for i in range(10):
        write(net, 1, b"x%d" % i)
    leader = net.nodes[1]
    snap = leader.snapshot_at(leader.log.applied, b"state")
    leader.compact(snap)
    net.down = set()
    net.tick(5)
    [install] = sent(net, MT.SNAP, to=3)
    assert install.snapshot.conf.learners == {4}
    assert net.nodes[3].learners == {4} and net.restart(3).learners == {4}


def test_a_removed_learner_is_gone():
    net = Net(3, promote_learners=False)
    net.campaign(1)
    add_learner(net, 1, 4)
    net.nodes[1].propose_conf_change(ConfChange(CC.REMOVE_NODE, 4))
    net.flush()
    net.tick(2)
    for i in (1, 2, 3):
        assert net.nodes[i].learners == frozenset() and net.nodes[i].voters == {1, 2, 3}
    assert 4 not in net.nodes[1].progress
    net.sent.clear()
    net.tick(5)
    write(net, 1, b"after")
    assert not [m for m in net.sent if m.to == 4]


# --- the changes and their encoding ----------------------------------------------------------

def test_add_node_entries_written_before_learners_still_add_voters():
    """A log of an older version: the bootstrap entries and every AddMember were ADD_NODE."""
    boot = [Entry(1, i, EntryType.CONF_CHANGE, ConfChange(CC.ADD_NODE, i).encode()) for i in (1, 2, 3)]
    added = Entry(2, 4, EntryType.CONF_CHANGE, ConfChange(CC.ADD_NODE, 4, b"127.0.0.1:7184").encode())
    node = RaftNode(Config(2), random.Random(1), persisted=PersistedState(HardState(2, 1, 4), Snapshot(), boot + [added]))
    assert node.voters == {1, 2, 3, 4} and node.learners == frozenset()
    assert ConfChange(CC.ADD_NODE, 4).encode() == bytes([1, 1, 4])     # the bytes they wrote


def test_membership_refuses_changes_that_do_not_fit():
    m = Membership(0, ConfState(frozenset({1, 2}), frozenset({3})))
    for change, message in [((CC.ADD_LEARNER_NODE, 1), "already a voter"),
                            ((CC.ADD_LEARNER_NODE, 3), "already a learner"),
                            ((CC.ADD_NODE, 2), "already a voter"),
                            ((CC.PROMOTE_LEARNER, 2), "not a learner"),
                            ((CC.PROMOTE_LEARNER, 4), "not a learner"),
                            ((CC.REMOVE_NODE, 4), "not a member")]:
        with pytest.raises(ValueError, match=message):
            m.check(ConfChange(*change))
    m.apply(5, ConfChange(CC.ADD_NODE, 3))       # as etcd's AddNode: a learner is promoted
    assert m.voters == {1, 2, 3} and m.learners == frozenset()
    m.apply(6, ConfChange(CC.ADD_LEARNER_NODE, 3))   # committed anyway: a voter stays a voter
    assert m.voters == {1, 2, 3} and m.at(4) == ConfState(frozenset({1, 2}), frozenset({3}))
    with pytest.raises(ValueError, match="last voter"):
        Membership(0, ConfState(frozenset({1}))).check(ConfChange(CC.REMOVE_NODE, 1))


def test_a_snapshot_message_with_learners_round_trips_and_one_without_is_unchanged():
    with_learners = Message(MT.SNAP, from_=1, to=5, term=4,
                            snapshot=Snapshot(50, 3, ConfState(frozenset({1, 2}), frozenset({5})), b"s"))
    assert decode(encode(with_learners)) == with_learners
    without = Message(MT.SNAP, from_=1, to=5, term=4, snapshot=Snapshot(50, 3, ConfState(frozenset({1, 2})), b"s"))
    # the format before learners: version type fields... n_voters voters len data
    assert encode(without).endswith(bytes([50, 3, 2, 1, 2, 1]) + b"s")
    assert decode(encode(without)) == without


def test_a_stored_snapshot_keeps_its_learners_and_one_without_is_stored_as_before(tmp_path):
    from dcli_server.consensus.storage import RaftStorage

    s = RaftStorage(tmp_path)
    s.load()
    snap = Snapshot(index=20, term=2, conf=ConfState(frozenset({1, 2, 3}), frozenset({4, 7})), data=b"tree")
    s.save_snapshot(snap)
    s.close()
    assert RaftStorage(tmp_path).load().snapshot == snap
    plain = Snapshot(index=20, term=2, conf=ConfState(frozenset({1, 2})), data=b"tree")
    # term (8 bytes), number of voters (4), the voters (4 each), the data: the format before learners
    assert encode_snapshot(plain) == (2).to_bytes(8, "big") + (2).to_bytes(4, "big") \
        + (1).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"tree"
    assert decode_snapshot(20, encode_snapshot(plain)) == plain
