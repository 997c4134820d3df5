"""Planning topics by Kafka's rules and in Kafka's words: a new topic's partitions and replica
lists (CreateTopics, with or without explicit assignments), a topic grown by CreatePartitions,
the broker's partition budget, and Kafka's topic ids. Pure functions over TopicAssignment (the
one topic metadata type, cluster_meta.py); where topics are kept is the tree's business.

    assignment = plan_topic("chat", 3, 1, {}, brokers=[1], config=BrokerConfig(), existing={})
    grown = plan_partitions(assignment, 5, brokers=[1], config=BrokerConfig(), existing={"chat": assignment})
"""
from __future__ import annotations

import base64
import os
import random
from typing import Mapping

from dcli.wire.errors import (InvalidPartitionsError, InvalidReplicaAssignmentError,
                              InvalidRequestError, InvalidTopicError, TopicExistsError)
from dcli.wire.topics import collides, validate_topic
from dcli_server.broker.assignment import assign_replicas, check_replication_factor as _check_replication_factor
from dcli_server.broker.cluster_meta import TopicAssignment
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.limits import check_partition_budget
from dcli_server.storage.wal import CorruptLogError


class BrokerStateError(CorruptLogError):
    """The broker's directory holds something that starting would have to destroy."""

    def __str__(self) -> str:
        return f"broker directory {self.path}: {self.problem}; the server refuses to start"



def new_topic_id() -> str:
    """Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64 without padding,
    never all zeros and never starting with '-' (a command line would take it for an option)."""
    while True:
        raw = os.urandom(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if any(raw) and not text.startswith("-"):
            return text


def _check_assignments(assignments: Mapping[int, list[int]], brokers: list[int],
                       first_partition: int = 0) -> list[tuple[int, ...]]:
    """Explicit replica lists (`--replica-assignment`), checked as Kafka's controller does."""
    expected = list(range(first_partition, first_partition + len(assignments)))
    if sorted(assignments) != expected:
        raise InvalidReplicaAssignmentError(message=(
            "Partitions should be a consecutive 0-based integer sequence."
            if first_partition == 0 else
            f"The manual partition assignment must cover partitions {expected[0]} to {expected[-1]}."))
    out = []
    width = None
    for p in expected:
        replicas = list(assignments[p])
        if not replicas:
            raise InvalidReplicaAssignmentError(
                message="The manual partition assignment includes an empty replica list.")
        if len(set(replicas)) != len(replicas):
            raise InvalidReplicaAssignmentError(
                message="The manual partition assignment specifies the same node id more than once.")
        for b in replicas:
            if b not in brokers:
                raise InvalidReplicaAssignmentError(message=(
                    f"The manual partition assignment includes broker {b}, but no broker with "
                    "that ID is registered."))
        if width is not None and len(replicas) != width:
            raise InvalidReplicaAssignmentError(message=(
                f"The manual partition assignment includes a partition with {len(replicas)} "
                f"replica(s), but this is not consistent with previous partitions, which have "
                f"{width} replica(s)."))
        width = len(replicas)
        out.append(tuple(replicas))
    return out


def plan_topic(name: str, num_partitions: int, replication_factor: int,
               assignments: Mapping[int, list[int]], *, brokers: list[int], config: BrokerConfig,
               existing: Mapping[str, TopicAssignment], start_index: int | None = None,
               shift: int | None = None, rng: random.Random | None = None) -> TopicAssignment:
    """A new topic as CreateTopics asks for it (-1: the broker's default), checked in Kafka's
    order: name, existence, collision, partitions, replication, budget. Its configs are checked
    apart (config.validate_topic_configs)."""
    validate_topic(name)
    if name in existing:
        raise TopicExistsError(message=f"Topic '{name}' already exists.")
    for other in existing:
        if collides(name, other):
            raise InvalidTopicError(message=f"Topic '{name}' collides with existing topic: {other}")
    if assignments:
        if num_partitions != -1 or replication_factor != -1:
            raise InvalidRequestError(message=(
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time."))
        replicas = _check_assignments(assignments, brokers)
        check_partition_budget(len(replicas), existing, config)
    else:
        partitions = config.num_partitions if num_partitions == -1 else num_partitions
        rf = config.default_replication_factor if replication_factor == -1 else replication_factor
        if partitions <= 0:
            raise InvalidPartitionsError(message="Number of partitions must be larger than 0.")
        _check_replication_factor(rf, brokers)
        check_partition_budget(partitions, existing, config)      # before a replica list is built
        replicas = assign_replicas(partitions, rf, sorted(brokers), start_index=start_index, shift=shift, rng=rng)
    return TopicAssignment(name, new_topic_id(), tuple(replicas))


def plan_partitions(topic: TopicAssignment, count: int, *, brokers: list[int], config: BrokerConfig,
                    existing: Mapping[str, TopicAssignment]) -> TopicAssignment:
    """`topic` grown to `count` partitions (CreatePartitions: only an increase)."""
    if count < topic.partitions:
        raise InvalidPartitionsError(message=(
            f"The topic {topic.name} currently has {topic.partitions} partition(s); {count} would "
            "not be an increase."))
    if count == topic.partitions:
        raise InvalidPartitionsError(message=f"Topic already has {topic.partitions} partition(s).")
    rf = topic.replication_factor
    _check_replication_factor(rf, brokers)
    check_partition_budget(count - topic.partitions, existing, config)
    more = assign_replicas(count - topic.partitions, rf, sorted(brokers), first_partition=topic.partitions)
    return TopicAssignment(topic.name, topic.topic_id, topic.replicas + tuple(more), topic.configs)
