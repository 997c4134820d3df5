"""Range and round-robin assignors: Kafka's own examples (kafka.md 5.2 and the assignors'
javadoc), and properties over random groups."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dcli.client.assignors import BY_NAME, java_order, range_assign, roundrobin_assign


def flat(assignment: dict[str, list[int]]) -> list[str]:
    """{"t0": [0, 1]} -> ["t0p0", "t0p1"]"""
    return [f"{t}p{p}" for t, parts in assignment.items() for p in parts]


# -- kafka.md section 5.2 ---------------------------------------------------------------------------

TWO_BY_THREE = {"t0": 3, "t1": 3}
BOTH = {"C0": ["t0", "t1"], "C1": ["t0", "t1"]}


def test_range_example():
    result = range_assign(BOTH, TWO_BY_THREE)
    assert flat(result["C0"]) == ["t0p0", "t0p1", "t1p0", "t1p1"]
    assert flat(result["C1"]) == ["t0p2", "t1p2"]


def test_roundrobin_example():
    result = roundrobin_assign(BOTH, TWO_BY_THREE)
    assert flat(result["C0"]) == ["t0p0", "t0p2", "t1p1"]
    assert flat(result["C1"]) == ["t0p1", "t1p0", "t1p2"]


# -- the assignors' javadoc -------------------------------------------------------------------------


def test_roundrobin_with_different_subscriptions():
    # RoundRobinAssignor javadoc: C0 subscribes t0; C1 t0, t1; C2 t0, t1, t2; t0..t2 have
    # 1, 2 and 3 partitions.
    members = {"C0": ["t0"], "C1": ["t0", "t1"], "C2": ["t0", "t1", "t2"]}
    result = roundrobin_assign(members, {"t0": 1, "t1": 2, "t2": 3})
    assert flat(result["C0"]) == ["t0p0"]
    assert flat(result["C1"]) == ["t1p0"]
    assert flat(result["C2"]) == ["t1p1", "t2p0", "t2p1", "t2p2"]


def test_range_gives_the_extra_partitions_to_the_first_members():
    members = {"c-b": ["t"], "c-a": ["t"], "c-c": ["t"]}
    result = range_assign(members, {"t": 7})
    assert result == {"c-a": {"t": [0, 1, 2]}, "c-b": {"t": [3, 4]}, "c-c": {"t": [5, 6]}}


def test_range_more_members_than_partitions():
    result = range_assign({"a": ["t"], "b": ["t"], "c": ["t"]}, {"t": 2})
    assert result == {"a": {"t": [0]}, "b": {"t": [1]}, "c": {}}


def test_topics_without_metadata_are_skipped_and_every_member_is_listed():
    members = {"a": ["known", "unknown"], "b": ["unknown"]}
    for assign in (range_assign, roundrobin_assign):
        assert assign(members, {"known": 2}) == {"a": {"known": [0, 1]}, "b": {}}
        assert assign({}, {"known": 2}) == {}


def test_member_ids_sort_as_java_strings():
    # U+FF5E sorts after U+1F600 in Java (UTF-16 code units 0xFF5E > 0xD83D), before it in
    # Python's default code-point order.
    low, high = "m-\U0001F600", "m-\uFF5E"
    assert sorted([low, high], key=java_order) == [low, high]
    result = range_assign({high: ["t"], low: ["t"]}, {"t": 2})
    assert result[low] == {"t": [0]} and result[high] == {"t": [1]}


def test_by_name():
    assert set(BY_NAME) == {"range", "roundrobin"}
    assert BY_NAME["range"].assign is range_assign


# -- properties ---------------------------------------------------------------------------------------

topic_names = st.sampled_from(["a", "b", "c", "d"])
groups = st.tuples(
    st.dictionaries(st.text("xyz-0123", min_size=1, max_size=6),
                    st.lists(topic_names, min_size=1, max_size=4, unique=True), max_size=7),
    st.dictionaries(topic_names, st.integers(0, 12)),
)


@given(groups, st.sampled_from([range_assign, roundrobin_assign]))
def test_every_partition_exactly_once_to_a_subscriber(group, assign):
    members, partitions = group
    result = assign(members, partitions)
    assert set(result) == set(members)
    owners: dict[tuple[str, int], str] = {}
    for member, assignment in result.items():
        for topic, parts in assignment.items():
            assert topic in members[member]
            assert parts == sorted(parts) and parts
            for p in parts:
                assert (topic, p) not in owners
                owners[(topic, p)] = member
    subscribed = {t for ts in members.values() for t in ts}
    expected = {(t, p) for t, n in partitions.items() if t in subscribed for p in range(n)}
    assert set(owners) == expected


@given(st.lists(st.text("abc123", min_size=1, max_size=5), min_size=1, max_size=8, unique=True),
       st.lists(topic_names, min_size=1, max_size=4, unique=True),
       st.dictionaries(topic_names, st.integers(0, 20), min_size=4))
def test_roundrobin_balanced_within_one_when_subscriptions_are_equal(ids, topics, partitions):
    result = roundrobin_assign({m: topics for m in ids}, partitions)
    counts = [len(flat(a)) for a in result.values()]
    assert max(counts) - min(counts) <= 1


@given(st.lists(st.text("abc123", min_size=1, max_size=5), min_size=1, max_size=8, unique=True),
       st.integers(0, 30))
def test_range_per_topic_balanced_within_one(ids, n):
    result = range_assign({m: ["t"] for m in ids}, {"t": n})
    counts = [len(a.get("t", [])) for a in result.values()]
    assert max(counts) - min(counts) <= 1 and sum(counts) == n
