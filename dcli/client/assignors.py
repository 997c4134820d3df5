"""Partition assignors the group leader runs client-side: Kafka's RangeAssignor and
RoundRobinAssignor, with the same results for the same input (kafka.md section 5.2).

An assignor is a pure function from the members' subscriptions and the partition counts of
the topics to the partitions of each member::

    >>> members = {"C0": ["t0", "t1"], "C1": ["t0", "t1"]}
    >>> range_assign(members, {"t0": 3, "t1": 3})["C1"]
    {'t0': [2], 't1': [2]}
    >>> roundrobin_assign(members, {"t0": 3, "t1": 3})["C1"]
    {'t0': [1], 't1': [0, 2]}

Every member appears in the result (possibly with nothing); a member's topics appear only
when it got a partition of them. Subscribed topics missing from `partitions_per_topic` (no
metadata yet) are skipped, as Kafka's AbstractPartitionAssignor skips them. Strings sort as
Java sorts them (UTF-16 code units), so even unusual member ids give Kafka's order.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, NamedTuple

MemberTopics = Mapping[str, Iterable[str]]
Result = dict[str, dict[str, list[int]]]


def java_order(s: str) -> bytes:
    """Sort key matching Java's String.compareTo (UTF-16 code units, not code points)."""
    return s.encode("utf-16-be", "surrogatepass")


def _prepare(members: MemberTopics, partitions_per_topic: Mapping[str, int]):
    subscriptions = {m: frozenset(t for t in topics if t in partitions_per_topic)
                     for m, topics in members.items()}
    result: Result = {m: {} for m in members}
    return subscriptions, result


def range_assign(members: MemberTopics, partitions_per_topic: Mapping[str, int]) -> Result:
    """Kafka's RangeAssignor: per topic, its partitions in order are cut into contiguous
    ranges over the topic's subscribers sorted by member id; the first P % C get one more."""
    subscriptions, result = _prepare(members, partitions_per_topic)
    topics = sorted({t for ts in subscriptions.values() for t in ts}, key=java_order)
    for topic in topics:
        consumers = sorted((m for m, ts in subscriptions.items() if topic in ts), key=java_order)
        count = partitions_per_topic[topic]
        per_consumer, extra = divmod(count, len(consumers))
        for i, member in enumerate(consumers):
            start = per_consumer * i + min(i, extra)
            length = per_consumer + (1 if i < extra else 0)
            if length:
                result[member][topic] = list(range(start, start + length))
    return result


def roundrobin_assign(members: MemberTopics, partitions_per_topic: Mapping[str, int]) -> Result:
    """Kafka's RoundRobinAssignor: every subscribed topic-partition, sorted by topic then
    partition, is dealt to the members sorted by member id in a circle, skipping a member not
    subscribed to that topic (the circle continues from where the last deal stopped)."""
    subscriptions, result = _prepare(members, partitions_per_topic)
    circle = sorted(subscriptions, key=java_order)
    if not circle:
        return result
    topics = sorted({t for ts in subscriptions.values() for t in ts}, key=java_order)
    at = 0
    for topic in topics:
        for partition in range(partitions_per_topic[topic]):
            while topic not in subscriptions[circle[at]]:
                at = (at + 1) % len(circle)
            result[circle[at]].setdefault(topic, []).append(partition)
            at = (at + 1) % len(circle)
    return result


class Assignor(NamedTuple):
    """An assignor by its protocol name (what JoinGroup carries)."""

    name: str
    assign: Callable[[MemberTopics, Mapping[str, int]], Result]


RANGE = Assignor("range", range_assign)
ROUNDROBIN = Assignor("roundrobin", roundrobin_assign)
BY_NAME: dict[str, Assignor] = {a.name: a for a in (RANGE, ROUNDROBIN)}
DEFAULT = (RANGE, ROUNDROBIN)  # librdkafka's and kafka-python's default preference
