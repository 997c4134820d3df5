"""Versions: vector clocks with dots, siblings, reconciliation and read resolution."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from dcli_server.kv.versions import (Order, VectorClock, Version, VersionDecodeError, context_of,
                                     decode_siblings, encode_siblings, new_version, reconcile,
                                     resolve, version_hash)

NODES = ["a", "b", "c"]
clocks = st.dictionaries(st.sampled_from(NODES + ["node-é"]), st.integers(0, 2**40)).map(VectorClock.of)
values = st.one_of(st.none(), st.binary(max_size=16))
versions = st.builds(Version, st.sampled_from(NODES), st.integers(1, 50), clocks, values)


# -- vector clocks ------------------------------------------------------------------------------

def test_clock_comparisons():
    a = VectorClock.of({"a": 1})
    ab = VectorClock.of({"a": 1, "b": 1})
    b = VectorClock.of({"b": 1})
    assert a.compare(ab) is Order.BEFORE
    assert ab.compare(a) is Order.AFTER
    assert a.compare(b) is Order.CONCURRENT
    assert ab.compare(VectorClock.of({"b": 1, "a": 1})) is Order.EQUAL
    assert VectorClock().compare(VectorClock.of({"x": 0})) is Order.EQUAL
    assert a.increment("a") == VectorClock.of({"a": 2})


@given(clocks, clocks, clocks)
def test_merge_is_a_join(x, y, z):
    assert x.merge(y) == y.merge(x)
    assert x.merge(y).merge(z) == x.merge(y.merge(z))
    assert x.merge(x) == x
    assert x.merge(y).descends(x) and x.merge(y).descends(y)
    assert x.compare(y) is {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE,
                            Order.EQUAL: Order.EQUAL,
                            Order.CONCURRENT: Order.CONCURRENT}[y.compare(x)]


@given(clocks)
def test_clock_encoding_round_trips_and_is_canonical(clock):
    data = clock.encode()
    assert VectorClock.decode(data) == clock
    assert VectorClock.of(dict(reversed(clock.entries))).encode() == data


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x05ab", b"\x00\x00", b"\xff" * 12])
def test_clock_decode_refuses_garbage(data):
    with pytest.raises(VersionDecodeError):
        VectorClock.decode(data)


def test_clock_refuses_negative_counters():
    with pytest.raises(ValueError):
        VectorClock.of({"a": -1})


# -- versions -----------------------------------------------------------------------------------

def test_a_version_is_older_than_the_write_that_saw_it():
    v1 = Version("a", 1, VectorClock(), b"1")
    v2 = Version("b", 1, v1.clock, b"2")
    assert v1.compare(v2) is Order.BEFORE and v2.compare(v1) is Order.AFTER
    assert v1.compare(Version("a", 1, VectorClock(), b"1")) is Order.EQUAL


def test_two_writes_through_one_coordinator_with_the_same_context_are_concurrent():
    # what plain per-node vector clocks get wrong: the second write would overwrite the first
    first = new_version("a", b"red", VectorClock(), [])
    second = new_version("a", b"blue", VectorClock(), [first])
    assert second.counter == 2
    assert first.compare(second) is Order.CONCURRENT
    assert reconcile([first], [second]) == (first, second)
    resolved = new_version("a", b"purple", context_of([first, second]), [first, second])
    assert reconcile([first, second], [resolved]) == (resolved,)


def test_new_version_counts_past_everything_it_knows():
    held = [Version("a", 7, VectorClock.of({"b": 3}), b"x")]
    assert new_version("a", b"y", VectorClock.of({"a": 9}), held).counter == 10
    assert new_version("a", b"y", VectorClock(), held).counter == 8
    assert new_version("b", b"y", VectorClock(), held).counter == 4
    assert new_version("a", b"y", VectorClock(), held, floor=20).counter == 21


def test_a_delete_is_a_version_and_can_be_a_sibling():
    put = Version("a", 1, VectorClock(), b"v")
    delete = Version("b", 1, VectorClock(), None)
    r = resolve({"a": [put], "b": [delete]})
    assert r.versions == (put, delete)
    assert r.found and r.values == [b"v"]
    gone = resolve({"a": [Version("a", 2, context_of([put, delete]), None)]})
    assert not gone.found and gone.values == []


@given(st.lists(versions, max_size=6))
def test_siblings_round_trip(vs):
    assert decode_siblings(encode_siblings(vs)) == tuple(vs)


def test_version_decode_refuses_a_zero_counter_and_truncation():
    data = encode_siblings([Version("a", 1, VectorClock(), b"xyz")])
    with pytest.raises(VersionDecodeError):
        decode_siblings(data[:-1])
    with pytest.raises(VersionDecodeError):
        decode_siblings(data + b"\x00")
    with pytest.raises(VersionDecodeError):
        Version.decode(b"\x01a\x00\x00\x01\x00")



def test_decoders_refuse_what_no_node_writes_before_building_it():
    """From a client's context or a peer's page: at most 256 entries, short node names,
    counters within 2^63-1, varints within 64 bits."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not out[-1] & 0x80:
                return bytes(out)
    too_many = varint(257) + b"".join(b"\x01" + bytes([65 + i % 26]) + b"\x01" for i in range(257))
    long_name = varint(1) + varint(65) + b"n" * 65 + b"\x01"
    big_counter = varint(1) + b"\x01a" + varint(2**63)
    over_64_bits = varint(1) + b"\x01a" + b"\xff" * 10 + b"\x01"
    for data, reason in ((too_many, "257 entries"), (long_name, "65 bytes"), (big_counter, "2^63-1"),
                         (over_64_bits, "64 bits")):
        with pytest.raises(VersionDecodeError, match=reason.replace("^", r"\^")):
            VectorClock.decode(data)
    assert VectorClock.decode(varint(1) + b"\x01a" + varint(2**63 - 1)) == VectorClock.of({"a": 2**63 - 1})
    with pytest.raises(VersionDecodeError, match="2\\^63-1"):
        Version.decode(b"\x01a" + varint(2**63) + b"\x00\x00")


# -- histories ----------------------------------------------------------------------------------
# Clients read from some replicas, write through a coordinator with the context they got, the
# coordinator sends its whole sibling set to some replicas, replicas sync at random. What each
# write truly saw is tracked by hand, apart from the clocks. Sibling sets for the algebraic
# tests are drawn from such histories: arbitrary versions can break what real ones keep (a
# version whose context covers its own dot, two versions each covering the other).

ops = st.lists(st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NODES), st.sets(st.sampled_from(NODES)),
              st.sets(st.sampled_from(NODES)), st.booleans()),
    st.tuples(st.just("sync"), st.sampled_from(NODES), st.sampled_from(NODES)),
), max_size=40)


class History:
    def __init__(self, steps):
        self.replicas: dict[str, tuple[Version, ...]] = {n: () for n in NODES}
        self.saw: dict[tuple, frozenset] = {}   # dot -> dots its writer had seen, itself included
        self.snapshots: list[tuple[Version, ...]] = [()]
        for step in steps:
            self.step(step)
            self.snapshots += self.replicas.values()

    def step(self, op):
        replicas = self.replicas
        if op[0] == "sync":
            _, src, dst = op
            replicas[dst] = reconcile(replicas[dst], replicas[src])
            return
        _, coordinator, read_from, send_to, tombstone = op
        read = reconcile(*(replicas[r] for r in read_from))
        v = new_version(coordinator, None if tombstone else str(len(self.saw)).encode(),
                        context_of(read), replicas[coordinator])
        assert v.dot not in self.saw
        self.saw[v.dot] = frozenset({v.dot}).union(*(self.saw[r.dot] for r in read))
        replicas[coordinator] = reconcile(replicas[coordinator], [v])
        for r in send_to:
            replicas[r] = reconcile(replicas[r], replicas[coordinator])


histories = ops.map(History)


@settings(max_examples=300)
@given(histories)
def test_replicas_keep_exactly_the_writes_no_later_write_saw(h):
    """The replicas' join holds exactly the writes that no other write truly saw, whatever
    reached whom: no lost update, no false conflict."""
    final = reconcile(*h.replicas.values())
    expected = {d for d in h.saw if not any(d in seen for o, seen in h.saw.items() if o != d)}
    assert {v.dot for v in final} == expected
    for n in NODES:
        assert reconcile(h.replicas[n], *h.replicas.values()) == final


@given(histories, st.data())
def test_reconcile_is_commutative_associative_idempotent(h, data):
    pick = st.sampled_from(h.snapshots)
    x, y, z = data.draw(pick), data.draw(pick), data.draw(pick)
    assert reconcile(x, y) == reconcile(y, x)
    assert reconcile(reconcile(x, y), z) == reconcile(x, reconcile(y, z))
    assert reconcile(x, x) == reconcile(x) == x


@given(histories, st.data())
def test_version_hash_tells_sets_apart(h, data):
    pick = st.sampled_from(h.snapshots)
    x, y = data.draw(pick), data.draw(pick)
    assert version_hash(x) == version_hash(tuple(reversed(x)))
    assert (version_hash(x) == version_hash(y)) == (x == y)


def test_one_dot_with_two_values_is_kept_the_same_way_everywhere():
    # happens only when a node lost its data dir and reused a counter
    x = Version("a", 1, VectorClock(), b"x")
    y = Version("a", 1, VectorClock(), b"y")
    assert reconcile([x], [y]) == reconcile([y], [x]) == (y,)


# -- read resolution ----------------------------------------------------------------------------

def test_resolve_names_the_stale_replicas():
    v1 = Version("a", 1, VectorClock(), b"1")
    v2 = Version("a", 2, v1.clock, b"2")
    other = Version("b", 1, v1.clock, b"x")     # concurrent with v2
    r = resolve({"r1": [v2, other], "r2": [v2], "r3": [v1], "r4": []})
    assert r.versions == (v2, other)
    assert r.conflict and sorted(r.values) == [b"2", b"x"]
    assert r.stale == {"r2", "r3", "r4"}
    assert r.context == VectorClock.of({"a": 2, "b": 1})


def test_resolve_with_agreeing_replicas_has_nothing_stale():
    v = Version("a", 1, VectorClock(), b"1")
    assert resolve({"r1": [v], "r2": [v]}).stale == frozenset()
    empty = resolve({"r1": [], "r2": []})
    assert empty.stale == frozenset() and not empty.found and empty.versions == ()


@given(histories, st.data())
def test_after_read_repair_nothing_is_stale(h, data):
    answers = data.draw(st.dictionaries(st.sampled_from(["r1", "r2", "r3"]),
                                        st.sampled_from(h.snapshots)))
    first = resolve(answers)
    for r in answers:
        assert (r in first.stale) == (answers[r] != first.versions)
    repaired = {r: reconcile(vs, first.versions) for r, vs in answers.items()}
    again = resolve(repaired)
    assert again.versions == first.versions and again.stale == frozenset()
