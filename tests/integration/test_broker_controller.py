"""The broker cluster's control plane on real node processes (3 and 5 nodes): registration under
/brokers/ids, one controller elected under /controller, topics placed and partition leaders moved
by it when brokers die (SIGKILL) or stop answering (SIGSTOP until their session expires).

Everything is read from the tree with the real client; every wait is on a predicate with a
generous deadline. Topics are created the way Kafka's ZooKeeper-mode admin did (`propose_topic`:
assignment and configs written by a client, partition states by the controller); the data path
(`kafka-topics --create`, followers, ISR changes by leaders) is tested in test_broker_replication.
"""
from __future__ import annotations

import json

import pytest

from dcli.client import CoordClient
from dcli.wire import errors
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.controller import Controller
from dcli_server.broker.tree_topics import propose_topic

from tests.cluster_fixture import DEFAULT_SERVER_ARGS

WAIT_S = 45.0
SERVER_ARGS = (*DEFAULT_SERVER_ARGS, "--broker-session-timeout-ms", "4000")


def on(c, *node_ids) -> CoordClient:
    """A client whose server list is these nodes (default: all), in this order."""
    return CoordClient(",".join(c.address(i) for i in (node_ids or c.ids)), timeout=10.0)


def safely(fn):
    """fn(), or None while the cluster is between leaders."""
    try:
        return fn()
    except (errors.ConnectionLossError, errors.NotConnectedError, errors.OperationTimeoutError,
            errors.UnavailableError, errors.SessionMovedError):
        return None


def brokers(zk) -> list[int]:
    zk.sync("/")
    return meta.live_brokers(zk)


def controller(zk) -> int:
    """The broker at the head of the election, if its znode can be read."""
    zk.sync("/")
    try:
        names = sorted(zk.get_children(meta.CONTROLLER))
    except errors.NoNodeError:
        return 0
    for name in names:
        try:
            return meta.decode_controller(zk.get(f"{meta.CONTROLLER}/{name}")[0])
        except errors.NoNodeError:
            continue
    return 0


def epoch(zk) -> int:
    found = meta.read_controller_epoch(zk)
    return found[0] if found else 0


def states(zk, topic: str, partitions: int) -> list[meta.PartitionState | None]:
    zk.sync("/")
    out = []
    for p in range(partitions):
        found = meta.read_state(zk, topic, p)
        out.append(found[0] if found else None)
    return out


def status_controllers(c) -> set[int]:
    return {s.controller_id for s in c.status_all() if s.up}


def settled(c, zk, n: int) -> int:
    """Wait until n brokers are registered and every node reports the same controller."""
    c.wait_for(lambda: safely(lambda: len(brokers(zk)) == n), WAIT_S, message=f"{n} brokers registered")
    c.wait_for(lambda: safely(lambda: controller(zk) and epoch(zk) >= 1), WAIT_S, message="a controller")
    ctl = controller(zk)
    c.wait_for(lambda: status_controllers(c) == {ctl}, WAIT_S, message=f"every node reports controller {ctl}")
    return ctl


@pytest.mark.parametrize("nodes", [3, 5])
def test_every_broker_registers_and_exactly_one_controller_leads(local_cluster, nodes):
    c = local_cluster(nodes, server_args=SERVER_ARGS)
    with on(c) as zk:
        ctl = settled(c, zk, nodes)
        assert brokers(zk) == c.ids
        for i in c.ids:
            data, stat = zk.get(meta.broker_path(i))
            info = json.loads(data)
            assert stat.ephemeralOwner != 0
            assert f"{info['host']}:{info['port']}" == c.address(i)
            assert info["endpoints"] == [f"PLAINTEXT://{c.address(i)}"]
        candidates = zk.get_children(meta.CONTROLLER)
        assert len(candidates) == nodes            # every broker stands; one leads
        assert ctl in c.ids


def test_killing_the_controller_elects_another_with_a_higher_epoch(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    with on(c) as zk:
        first = settled(c, zk, 3)
        before = epoch(zk)
    c.kill(first)
    rest = [i for i in c.ids if i != first]
    with on(c, *rest) as zk:
        c.wait_for(lambda: safely(lambda: controller(zk) not in (0, first) and epoch(zk) > before), WAIT_S,
                   message="a new controller with a higher epoch")
        c.wait_for(lambda: safely(lambda: brokers(zk) == rest), WAIT_S, message="the dead broker's znode goes")
        second = controller(zk)
        assert second in rest
        c.wait_for(lambda: {s.controller_id for s in c.status_all() if s.up} == {second}, WAIT_S,
                   message="the live nodes report the new controller")


def create_and_wait(c, zk, topic: str, partitions: int, rf: int, **kwargs) -> meta.TopicAssignment:
    assignment = propose_topic(zk, topic, partitions, rf, **kwargs)
    c.wait_for(lambda: safely(lambda: all(states(zk, topic, partitions))), WAIT_S,
               message=f"the controller writes {topic}'s partition states")
    return assignment


def test_a_topic_is_placed_and_its_partitions_get_leaders_spread_across_brokers(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    with on(c) as zk:
        ctl = settled(c, zk, 3)
        assignment = create_and_wait(c, zk, "chat", 3, 3, start_index=0)
        stored = meta.read_assignment(zk, "chat")
        assert stored == assignment
        assert stored.replicas == ((1, 2, 3), (2, 3, 1), (3, 1, 2))
        raw = json.loads(zk.get(meta.topic_path("chat"))[0])
        assert raw["partitions"] == {"0": [1, 2, 3], "1": [2, 3, 1], "2": [3, 1, 2]}
        assert len(raw["topic_id"]) == 22
        ce = epoch(zk)
        for p, s in enumerate(states(zk, "chat", 3)):
            assert s == meta.PartitionState(leader=assignment.replicas[p][0], leader_epoch=0,
                                            isr=assignment.replicas[p], controller_epoch=ce)
        assert sorted(s.leader for s in states(zk, "chat", 3)) == [1, 2, 3]
        # a second topic of the same name, and one that collides, are refused in Kafka's words
        with pytest.raises(errors.TopicExistsError, match="Topic 'chat' already exists."):
            propose_topic(zk, "chat", 1, 1)
        with pytest.raises(errors.InvalidReplicationFactorError) as e:
            propose_topic(zk, "big", 3, 4)
        assert str(e.value) == ("Unable to replicate the partition 4 time(s): The target replication "
                                "factor of 4 cannot be reached because only 3 broker(s) are registered.")
        assert meta.read_assignment(zk, "big") is None
        assert ctl == controller(zk)


def test_killing_a_partition_leader_moves_leadership_to_the_first_live_isr_member(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    with on(c) as zk:
        ctl = settled(c, zk, 3)
        create_and_wait(c, zk, "chat", 3, 3, start_index=0)
        # kill the leader of a partition whose leader is not the controller (the controller's own
        # death is the other test): partition p is led by broker p + 1
        victim = next(b for b in (1, 2, 3) if b != ctl)
        before = states(zk, "chat", 3)
    c.kill(victim)
    rest = [i for i in c.ids if i != victim]
    with on(c, *rest) as zk:
        c.wait_for(lambda: safely(lambda: all(victim not in s.isr for s in states(zk, "chat", 3))), WAIT_S,
                   message=f"broker {victim} leaves every ISR")
        after = states(zk, "chat", 3)
        replicas = meta.read_assignment(zk, "chat").replicas
        for p in range(3):
            old, new = before[p], after[p]
            assert new.isr == tuple(b for b in old.isr if b != victim)
            if old.leader == victim:
                assert new.leader == next(b for b in replicas[p] if b != victim)
                assert new.leader_epoch == old.leader_epoch + 1
            else:
                assert new.leader == old.leader and new.leader_epoch == old.leader_epoch
        # too few live brokers for the replication factor: Kafka's error
        with pytest.raises(errors.InvalidReplicationFactorError, match="only 2 broker"):
            propose_topic(zk, "late", 1, 3)
        # the broker comes back: the controller moves no leader; each leader takes it back into
        # its ISR once it has caught up (the leader's change, same leader epoch)
        c.start(victim)
        c.wait_for(lambda: safely(lambda: brokers(zk) == c.ids), WAIT_S, message="the broker registers again")
        c.wait_for(lambda: safely(lambda: all(victim in s.isr for s in states(zk, "chat", 3))), WAIT_S,
                   message=f"broker {victim} rejoins every ISR")
        for old, new in zip(after, states(zk, "chat", 3)):
            assert (new.leader, new.leader_epoch) == (old.leader, old.leader_epoch)


def test_a_paused_broker_loses_its_znode_and_its_leaderships_move(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    with on(c) as zk:
        ctl = settled(c, zk, 3)
        create_and_wait(c, zk, "chat", 3, 3, start_index=0)
        victim = next(b for b in (1, 2, 3) if b != ctl)
        led = [p for p, s in enumerate(states(zk, "chat", 3)) if s.leader == victim]
        assert led
    rest = [i for i in c.ids if i != victim]
    c.pause(victim)
    try:
        with on(c, *rest) as zk:
            c.wait_for(lambda: safely(lambda: victim not in brokers(zk)), WAIT_S,
                       message="the paused broker's session expires")
            c.wait_for(lambda: safely(lambda: all(s.leader != victim and victim not in s.isr
                                                  for s in states(zk, "chat", 3))), WAIT_S,
                       message="its leaderships move")
            for p in led:
                assert states(zk, "chat", 3)[p].leader_epoch == 1
    finally:
        c.resume(victim)
    with on(c, *rest) as zk:
        c.wait_for(lambda: safely(lambda: brokers(zk) == c.ids), WAIT_S,
                   message="resumed, the broker registers in a new session")


def test_five_nodes_two_dead_brokers_and_an_offline_partition(local_cluster):
    c = local_cluster(5, server_args=SERVER_ARGS)
    with on(c) as zk:
        ctl = settled(c, zk, 5)
        victims = [b for b in c.ids if b != ctl][:2]
        create_and_wait(c, zk, "wide", 5, 3, start_index=0)
        create_and_wait(c, zk, "solo", 1, 1, start_index=c.ids.index(victims[0]))
        assert meta.read_assignment(zk, "solo").replicas == ((victims[0],),)
    for v in victims:
        c.kill(v)
    rest = [i for i in c.ids if i not in victims]
    with on(c, *rest) as zk:
        c.wait_for(lambda: safely(lambda: brokers(zk) == rest), WAIT_S, message="two brokers gone")
        c.wait_for(lambda: safely(lambda: all(not set(victims) & set(s.isr) for s in states(zk, "wide", 5))),
                   WAIT_S, message="the dead leave every ISR of wide")
        for s in states(zk, "wide", 5):
            assert s.leader in rest                 # rf 3 over 5 brokers: a live replica remains
        c.wait_for(lambda: safely(lambda: states(zk, "solo", 1)[0].leader == meta.NO_LEADER), WAIT_S,
                   message="solo goes offline (no unclean election)")
        assert states(zk, "solo", 1)[0] == meta.PartitionState(meta.NO_LEADER, 1, (victims[0],), epoch(zk))
        c.start(victims[0])
        c.wait_for(lambda: safely(lambda: states(zk, "solo", 1)[0].leader == victims[0]), WAIT_S,
                   message="its last ISR member is back and leads again")
        assert states(zk, "solo", 1)[0].leader_epoch == 2


def test_a_stale_controller_cannot_overwrite_a_newer_one(local_cluster):
    """A controller started by the test takes over by bumping the epoch (as one that wrongly
    believes it was elected would): the real one is fenced on its next write and stands again;
    its successor's bump fences the test's controller in turn."""
    c = local_cluster(3, server_args=SERVER_ARGS)
    with on(c) as zk:
        ctl = settled(c, zk, 3)
        first = epoch(zk)
        rogue = Controller(broker_id=99).start()
        try:
            znode = zk.create(f"{meta.CONTROLLER}/c_", meta.encode_controller(99), ephemeral=True, sequence=True)
            rogue.elected(zk, znode)
            c.wait_for(lambda: rogue.active and epoch(zk) == first + 1, WAIT_S, message="the rogue's epoch")
            # the rogue creates a topic directly: assignment, configs and states in one multi
            made = rogue.create_topic("direct", 3, 3, {"unclean.leader.election.enable": "false"}, start_index=0)
            assert made.replicas == ((1, 2, 3), (2, 3, 1), (3, 1, 2))
            assert meta.read_topic_config(zk, "direct") == {"unclean.leader.election.enable": "false"}
            assert all(s.controller_epoch == first + 1 and s.leader_epoch == 0 for s in states(zk, "direct", 3))
            # a broker dies: the real controller's write is refused, it stands again, and the
            # controller elected next bumps the epoch past the rogue's
            victim = next(b for b in c.ids if b != ctl)
            c.kill(victim)
            c.wait_for(lambda: safely(lambda: epoch(zk) >= first + 2), WAIT_S, message="a newer controller")
            c.wait_for(lambda: safely(lambda: all(victim not in s.isr for s in states(zk, "direct", 3))), WAIT_S,
                       message="the victim leaves every ISR")
            with pytest.raises(errors.NotControllerError):
                rogue.create_topic("late", 1, 1)
            assert meta.read_assignment(zk, "late") is None
            assert not rogue.active
            assert controller(zk) in c.ids and controller(zk) != victim
            log = (c.directory / f"node-{ctl}.log").read_text(errors="replace")
            assert f"controller {ctl} (epoch {first}) was replaced by a newer controller" in log
        finally:
            rogue.stop()
