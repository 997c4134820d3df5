"""Replica placement and leader choice: which brokers hold each partition of a new topic, in
which order, and which of them leads when brokers come and go.

This is Kafka's rack-unaware `AdminUtils.assignReplicasToBrokers` (kafka.md 1.5). Brokers are
taken in id order; partition p's first replica (its preferred leader) is broker
`(p + start_index) % n`, so leaders go round the brokers; the followers come after it at a
distance that shifts by one every n partitions, so that the same pair of brokers does not hold
every partition together.

    >>> assign_replicas(3, 3, [1, 2, 3])
    [(1, 2, 3), (2, 3, 1), (3, 1, 2)]
    >>> assign_replicas(4, 2, [1, 2, 3], start_index=1)
    [(2, 1), (3, 2), (1, 3), (2, 3)]

Kafka picks `start_index` and the shift at random (so that many topics do not all lead on the
same broker) unless it is given a fixed start index, which then serves as both; here the same,
with a fixed shift also allowed. Too few brokers for the replication factor is refused with the
message Kafka's controller gives (`check_replication_factor`).

`next_state` is the controller's rule for a partition when the live brokers change (Kafka's
offline-partition election: the first live ISR member in replica order; unclean only when the
topic allows it) and `preferred_state` the preferred-replica election. Pure functions: nothing
here knows where the brokers or the states come from.

    >>> next_state(PartitionState(1, 0, (1, 2, 3), 1), (1, 2, 3), live={2, 3}, unclean=False,
    ...            controller_epoch=2)
    PartitionState(leader=2, leader_epoch=1, isr=(2, 3), controller_epoch=2)
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Sequence

from dcli.wire.errors import InvalidPartitionsError, InvalidReplicationFactorError
from dcli_server.broker.cluster_meta import NO_LEADER, PartitionState


def check_replication_factor(rf: int, brokers: Sequence[int]) -> None:
    """Refuse a replication factor below 1 or above the number of `brokers`, in Kafka's words."""
    if rf <= 0:
        raise InvalidReplicationFactorError(message="Replication factor must be larger than 0.")
    if rf > len(brokers):
        raise InvalidReplicationFactorError(message=(
            f"Unable to replicate the partition {rf} time(s): The target replication factor of "
            f"{rf} cannot be reached because only {len(brokers)} broker(s) are registered."))


def replica_index(first: int, shift: int, j: int, n: int) -> int:
    """Where follower j of a partition led by broker index `first` sits (Kafka's replicaIndex)."""
    return (first + 1 + (shift + j) % (n - 1)) % n


def assign_replicas(partitions: int, replication_factor: int, brokers: Sequence[int], *,
                    first_partition: int = 0, start_index: int | None = 0,
                    shift: int | None = None, rng: random.Random | None = None,
                    ) -> list[tuple[int, ...]]:
    """The replica lists of partitions `first_partition ..`, preferred leader first.

    `start_index=None` draws it at random, as Kafka does without a fixed start; `shift=None`
    takes the start index (Kafka's fixedStartIndex serves as both) or, when the start is random,
    draws its own."""
    if partitions <= 0:
        raise InvalidPartitionsError(message="Number of partitions must be larger than 0.")
    ids = sorted(set(brokers))
    if len(ids) != len(brokers):
        raise ValueError(f"broker ids repeat: {list(brokers)}")
    check_replication_factor(replication_factor, ids)
    n = len(ids)
    rng = rng or random
    if start_index is None:
        start_index = rng.randrange(n)
        if shift is None:
            shift = rng.randrange(n)
    if shift is None:
        shift = start_index
    out = []
    for p in range(first_partition, first_partition + partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        replicas = [ids[first]]
        for j in range(replication_factor - 1):
            replicas.append(ids[replica_index(first, shift, j, n)])
        out.append(tuple(replicas))
    return out


def leader_counts(assignment: Sequence[Sequence[int]]) -> Counter:
    """How many partitions each broker is the preferred leader of."""
    return Counter(replicas[0] for replicas in assignment if replicas)


def replica_counts(assignment: Sequence[Sequence[int]]) -> Counter:
    """How many replicas each broker holds."""
    return Counter(b for replicas in assignment for b in replicas)


def next_state(state: PartitionState, replicas: tuple[int, ...], live: set[int], *,
               unclean: bool, controller_epoch: int) -> PartitionState | None:
    """The state a partition should move to given the live brokers, or None if it is right."""
    live_isr = tuple(b for b in state.isr if b in live)
    if state.online and state.leader in live:
        if live_isr == state.isr:
            return None
        return replace(state, isr=live_isr, controller_epoch=controller_epoch)
    leader = next((b for b in replicas if b in live and b in state.isr), None)
    if leader is not None:
        return PartitionState(leader, state.leader_epoch + 1, live_isr, controller_epoch)
    if unclean:
        leader = next((b for b in replicas if b in live), None)
        if leader is not None:
            return PartitionState(leader, state.leader_epoch + 1, (leader,), controller_epoch)
    if not state.online:
        return None
    isr = (state.leader,) if state.leader in state.isr else state.isr
    return PartitionState(NO_LEADER, state.leader_epoch + 1, isr, controller_epoch)


def preferred_state(state: PartitionState, replicas: tuple[int, ...], live: set[int], *,
                    controller_epoch: int) -> PartitionState | None:
    """The state with the preferred replica (the first) leading, if it is alive, in the ISR and
    not leading yet (Kafka's preferred replica election); else None."""
    preferred = replicas[0] if replicas else NO_LEADER
    if preferred == state.leader or preferred not in live or preferred not in state.isr:
        return None
    return PartitionState(preferred, state.leader_epoch + 1, state.isr, controller_epoch)
