"""Replica placement (Kafka's rack-unaware assignReplicasToBrokers) and the controller's rule for
a partition's next leader and ISR."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcli.wire.errors import InvalidPartitionsError, InvalidReplicationFactorError
from dcli_server.broker.assignment import (assign_replicas, leader_counts, next_state, preferred_state,
                                           replica_counts)
from dcli_server.broker.cluster_meta import NO_LEADER, PartitionState

# Kafka's own vector: AdminTest.testReplicaAssignment, brokers 0..4, 10 partitions, rf 3, fixed start 0
KAFKA_5_BROKERS_10_PARTITIONS_RF3 = [
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1),
    (0, 2, 3), (1, 3, 4), (2, 4, 0), (3, 0, 1), (4, 1, 2),
]


def test_kafkas_own_vector():
    assert assign_replicas(10, 3, [0, 1, 2, 3, 4], start_index=0) == KAFKA_5_BROKERS_10_PARTITIONS_RF3


def test_broker_order_does_not_matter_ids_are_sorted():
    assert assign_replicas(10, 3, [4, 2, 0, 3, 1], start_index=0) == KAFKA_5_BROKERS_10_PARTITIONS_RF3


def test_the_seeds_topic_on_three_brokers():
    assert assign_replicas(3, 3, [1, 2, 3]) == [(1, 2, 3), (2, 3, 1), (3, 1, 2)]


def test_a_fixed_start_index_is_also_the_shift_as_in_kafka():
    assert assign_replicas(4, 2, [1, 2, 3], start_index=1) == [(2, 1), (3, 2), (1, 3), (2, 3)]
    assert assign_replicas(4, 2, [1, 2, 3], start_index=1, shift=0) == [(2, 3), (3, 1), (1, 2), (2, 1)]


def test_added_partitions_continue_the_leader_rotation():
    # as Kafka's addPartitions: the shift starts again from the start index, bumped only at
    # multiples of the broker count reached from first_partition
    assert assign_replicas(4, 3, list(range(5)), start_index=0, first_partition=6) == [
        (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1)]


def test_a_random_start_is_reproducible_with_a_seeded_rng():
    a = assign_replicas(6, 2, [1, 2, 3], start_index=None, rng=random.Random(7))
    b = assign_replicas(6, 2, [1, 2, 3], start_index=None, rng=random.Random(7))
    assert a == b


def test_too_few_brokers_gives_kafkas_error():
    with pytest.raises(InvalidReplicationFactorError) as e:
        assign_replicas(3, 3, [1])
    assert str(e.value) == ("Unable to replicate the partition 3 time(s): The target replication "
                            "factor of 3 cannot be reached because only 1 broker(s) are registered.")


def test_bad_counts_are_refused():
    with pytest.raises(InvalidReplicationFactorError, match="Replication factor must be larger than 0."):
        assign_replicas(3, 0, [1, 2])
    with pytest.raises(InvalidPartitionsError, match="Number of partitions must be larger than 0."):
        assign_replicas(0, 1, [1, 2])


@given(brokers=st.sets(st.integers(0, 1000), min_size=1, max_size=12),
       partitions=st.integers(1, 60), data=st.data())
def test_placement_properties(brokers, partitions, data):
    ids = sorted(brokers)
    n = len(ids)
    rf = data.draw(st.integers(1, n))
    start = data.draw(st.integers(0, n - 1))
    out = assign_replicas(partitions, rf, ids, start_index=start)
    assert len(out) == partitions
    for replicas in out:
        assert len(replicas) == rf and len(set(replicas)) == rf      # rf distinct brokers
        assert set(replicas) <= brokers
    # first replica = preferred leader, going round the brokers: leaders spread evenly
    assert [r[0] for r in out] == [ids[(p + start) % n] for p in range(partitions)]
    leaders = leader_counts(out)
    assert max(leaders.values()) - min(leaders.get(b, 0) for b in ids) <= 1
    # and when the partitions are a multiple of the brokers, so are all replicas
    if partitions % n == 0:
        assert set(replica_counts(out).values()) == {partitions * rf // n}


# -- the controller's rule ---------------------------------------------------------------------


def state(leader, epoch, isr, ce=1):
    return PartitionState(leader, epoch, tuple(isr), ce)


def test_a_dead_leader_is_replaced_by_the_first_live_isr_member_in_replica_order():
    s = state(1, 4, [1, 3, 2])
    assert next_state(s, (1, 2, 3), {2, 3}, unclean=False, controller_epoch=2) == state(2, 5, [3, 2], 2)


def test_a_dead_follower_leaves_the_isr_and_the_epoch_stays():
    s = state(1, 4, [1, 2, 3])
    assert next_state(s, (1, 2, 3), {1, 3}, unclean=False, controller_epoch=2) == state(1, 4, [1, 3], 2)


def test_nothing_changes_when_everyone_is_alive_or_a_broker_comes_back():
    assert next_state(state(1, 4, [1, 2, 3]), (1, 2, 3), {1, 2, 3}, unclean=False, controller_epoch=2) is None
    # broker 2 is back but not in the ISR: the leader, not the controller, grows the ISR
    assert next_state(state(1, 4, [1, 3]), (1, 2, 3), {1, 2, 3}, unclean=False, controller_epoch=2) is None


def test_no_live_isr_member_means_offline_unless_unclean_election_is_enabled():
    s = state(3, 6, [3])
    offline = next_state(s, (1, 2, 3), {1, 2}, unclean=False, controller_epoch=2)
    assert offline == state(NO_LEADER, 7, [3], 2)
    assert next_state(offline, (1, 2, 3), {1, 2}, unclean=False, controller_epoch=2) is None
    assert next_state(s, (1, 2, 3), {1, 2}, unclean=True, controller_epoch=2) == state(1, 7, [1], 2)
    # the last ISR member comes back: it leads again (a clean election)
    assert next_state(offline, (1, 2, 3), {1, 2, 3}, unclean=False, controller_epoch=3) == state(3, 8, [3], 3)


def test_the_preferred_replica_takes_the_lead_back_only_when_alive_and_in_sync():
    s = state(2, 5, [2, 3, 1])
    assert preferred_state(s, (1, 2, 3), {1, 2, 3}, controller_epoch=4) == state(1, 6, [2, 3, 1], 4)
    assert preferred_state(s, (1, 2, 3), {2, 3}, controller_epoch=4) is None
    assert preferred_state(state(2, 5, [2, 3]), (1, 2, 3), {1, 2, 3}, controller_epoch=4) is None
    assert preferred_state(state(1, 5, [1, 2]), (1, 2, 3), {1, 2, 3}, controller_epoch=4) is None
