"""Topics in the coordination tree, changed from any broker or tool the way Kafka's ZooKeeper-mode
admin did it: a new topic's assignment and configs written in one multi, a grown assignment
written conditionally, a topic's znodes deleted in one multi. The controller (controller.py)
watches these and writes the partition states.

    assignment = propose_topic(client, "chat", 3, 3, {"retention.ms": "60000"})
    add_partitions(client, "chat", 6)
    delete_topic(client, "chat", assignment)
"""
from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Mapping

from dcli.wire import errors
from dcli.wire.topics import validate_topic
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.config import BrokerConfig, validate_topic_configs
from dcli_server.broker.topics import plan_partitions, plan_topic

if TYPE_CHECKING:
    from dcli.client import CoordClient

_RETRIES = 8
_NO_PARTITIONS = meta.TopicAssignment("", "", ())    # an existing name, its size not read


def check_topic_configs(configs: Mapping[str, str] | None, broker: BrokerConfig) -> dict[str, str]:
    """A topic's config overrides, checked by Kafka's rules (names and values)."""
    return validate_topic_configs({str(k): str(v) for k, v in (configs or {}).items()}, broker)


def plan_assignment(client: CoordClient, name: str, partitions: int, rf: int, *,
                    start_index: int | None = None, shift: int | None = None,
                    rng: random.Random | None = None, assignments: Mapping[int, list[int]] | None = None,
                    broker: BrokerConfig | None = None) -> meta.TopicAssignment:
    """A new topic's assignment over the live brokers (or the explicit `assignments`), checked
    as Kafka does: name, existence, collision, partitions, replication factor. The partition
    budget is the broker's to check (it knows every topic's size)."""
    validate_topic(name)
    existing = {n: _NO_PARTITIONS for n in meta.topic_names(client)}
    unbounded = dataclasses.replace(broker or BrokerConfig(), max_partitions=(1 << 31) - 1)
    return plan_topic(name, partitions, rf, assignments or {}, brokers=meta.live_brokers(client),
                      config=unbounded, existing=existing, start_index=start_index, shift=shift, rng=rng)


def propose_topic(client: CoordClient, name: str, partitions: int, rf: int,
                  configs: Mapping[str, str] | None = None, *, broker: BrokerConfig | None = None,
                  start_index: int | None = None, shift: int | None = None,
                  assignments: Mapping[int, list[int]] | None = None) -> meta.TopicAssignment:
    """Create a topic from any broker or tool, as Kafka's ZooKeeper-mode admin did: write its
    assignment and configs in one multi; the controller then writes its partition states."""
    configs = check_topic_configs(configs, broker or BrokerConfig())
    assignment = plan_assignment(client, name, partitions, rf, start_index=start_index, shift=shift,
                                 assignments=assignments, broker=broker)
    client.ensure_path(meta.TOPICS)
    client.ensure_path(meta.CONFIG_TOPICS)
    t = client.transaction()
    t.create(meta.topic_config_path(name), meta.encode_topic_config(configs))
    t.create(meta.topic_path(name), assignment.encode())
    try:
        t.commit()
    except errors.NodeExistsError:
        raise errors.TopicExistsError(message=f"Topic '{name}' already exists.") from None
    return assignment


def add_partitions(client: CoordClient, name: str, count: int, *, broker: BrokerConfig | None = None,
                   existing: Mapping[str, meta.TopicAssignment] | None = None) -> meta.TopicAssignment:
    """CreatePartitions from any broker, as Kafka's ZooKeeper-mode admin did: write the topic's
    grown assignment (conditional on the version read); the controller's watch on it then
    writes the new partitions' initial states."""
    for _ in range(_RETRIES):
        try:
            data, stat = client.get(meta.topic_path(name))
        except errors.NoNodeError:
            raise errors.UnknownTopicOrPartitionError(message=f"Topic '{name}' does not exist.") from None
        old = meta.TopicAssignment.decode(name, data)
        grown = plan_partitions(old, count, brokers=meta.live_brokers(client), config=broker or BrokerConfig(),
                                existing=existing if existing is not None else {name: old})
        try:
            client.set(meta.topic_path(name), grown.encode(), stat.version)
            return grown
        except errors.BadVersionError:
            continue
    raise errors.RequestTimedOutError(message=f"Topic '{name}' kept changing; try again.")


def delete_topic(client: CoordClient, name: str, assignment: meta.TopicAssignment) -> None:
    """Delete a topic's znodes (states, partitions, assignment, configs) in one multi; the
    brokers' watches remove their replicas. Raises NoNodeError when it is gone already."""
    t = client.transaction()
    for p in range(assignment.partitions):
        if client.exists(meta.state_path(name, p)):
            t.delete(meta.state_path(name, p))
        if client.exists(meta.partition_path(name, p)):
            t.delete(meta.partition_path(name, p))
    if client.exists(meta.partitions_path(name)):
        t.delete(meta.partitions_path(name))
    t.delete(meta.topic_path(name))
    if client.exists(meta.topic_config_path(name)):
        t.delete(meta.topic_config_path(name))
    t.commit()
