"""The partitioner: consistent hashing with weighted virtual nodes, and key-range shards."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from dcli_server.kv.ring import (FULL_RING, RING_SIZE, HashRing, KeyRange, KeyRangeShards,
                                 Shard, TokenRange, moves, range_moves, token, transfers)

node_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
node_sets = st.lists(node_names, min_size=1, max_size=8, unique=True)
keys = st.binary(min_size=1, max_size=32)
# statistical properties: fixed examples, so a 5-sigma tolerance cannot flake in CI
statistical = settings(max_examples=60, derandomize=True, deadline=None)


def ring_of(nodes, vnodes=128, weights=None):
    return HashRing({n: (weights or {}).get(n, 1) for n in nodes}, vnodes=vnodes)


# -- stable placement ---------------------------------------------------------------------------

EXPECTED_TOKENS = {
    b"": 0xE4A6A0577479B2B4,          # BLAKE2b-64 of the empty string
    b"user/42": 0x3360640FECF80F41,
    b"\x00\xff": 0xB0C72E78C8F09CE4,
}
EXPECTED_PLACEMENT = {
    b"user/42": ["n3", "n1", "n2"],
    b"apple": ["n4", "n2", "n1"],
    b"cart:7": ["n2", "n4", "n1"],
    b"\x00\xff": ["n3", "n4", "n2"],
    b"zebra": ["n3", "n4", "n2"],
}
PLACEMENT_RING = {"n1": 1, "n2": 1, "n3": 2, "n4": 1}


def test_tokens_are_the_recorded_blake2b_values():
    for key, expected in EXPECTED_TOKENS.items():
        assert token(key) == expected


def test_placements_match_the_recorded_ones():
    ring = HashRing(PLACEMENT_RING, vnodes=16)
    for key, expected in EXPECTED_PLACEMENT.items():
        assert ring.preference_list(key, 3) == expected


@pytest.mark.parametrize("seed", ["1", "2"])
def test_placements_are_the_same_in_other_processes_whatever_the_hash_seed(seed):
    code = ("from dcli_server.kv.ring import HashRing\n"
            f"ring = HashRing({PLACEMENT_RING!r}, vnodes=16)\n"
            f"for key in {list(EXPECTED_PLACEMENT)!r}:\n"
            "    print(','.join(ring.preference_list(key, 3)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": seed}).stdout
    assert out.splitlines() == [",".join(v) for v in EXPECTED_PLACEMENT.values()]


# -- preference lists ---------------------------------------------------------------------------

@given(node_sets, keys, st.integers(1, 10), st.integers(1, 32))
def test_preference_list_has_n_distinct_nodes_starting_at_the_owner(nodes, key, n, vnodes):
    ring = ring_of(nodes, vnodes)
    prefs = ring.preference_list(key, n)
    assert len(prefs) == min(n, len(nodes))
    assert len(set(prefs)) == len(prefs)
    assert set(prefs) <= set(nodes)
    assert prefs[0] == ring.owner(key)


@given(node_sets, keys)
def test_owner_is_the_first_vnode_clockwise(nodes, key):
    ring = ring_of(nodes, 8)
    t = token(key)
    at_or_after = [(tok, owner) for tok, owner in zip(ring.tokens, ring.owners) if tok >= t]
    expected = at_or_after[0][1] if at_or_after else ring.owners[0]
    assert ring.owner(key) == expected


def test_empty_ring_and_bad_weights():
    with pytest.raises(LookupError):
        HashRing().owner(b"k")
    assert HashRing().preference_list(b"k", 3) == []
    with pytest.raises(ValueError):
        HashRing({"a": 0})
    with pytest.raises(ValueError):
        HashRing({"a": 1}, vnodes=0)
    with pytest.raises(ValueError):
        HashRing({"a": 1}).with_node("a")
    with pytest.raises(ValueError):
        HashRing({"a": 1}).without_node("b")


@given(node_sets, st.integers(1, 4))
def test_replica_ranges_cover_the_ring_once(nodes, n):
    ring = ring_of(nodes, 8)
    pieces = ring.replica_ranges(n)
    assert sum(r.width for r, _ in pieces) == RING_SIZE
    for r, replicas in pieces:
        assert list(replicas) == ring.preference_for_token(r.end, n)
    for node in nodes:
        owned = ring.ranges_of(node, n)
        assert all(node in ring.preference_for_token(r.end, n) for r in owned)


# -- membership changes move only what they must -------------------------------------------------

def _owners(ring, sample):
    return {k: ring.owner(k) for k in sample}


@given(node_sets, node_names, st.lists(keys, min_size=50, max_size=200, unique=True))
def test_adding_a_node_moves_keys_only_to_it(nodes, new, sample):
    if new in nodes:
        return
    old = ring_of(nodes, 32)
    bigger = old.with_node(new)
    before, after = _owners(old, sample), _owners(bigger, sample)
    assert all(after[k] == new for k in sample if before[k] != after[k])


@statistical
@given(node_sets, node_names)
def test_adding_a_node_moves_about_one_in_n_plus_one(nodes, new):
    if new in nodes:
        return
    old = ring_of(nodes, 128)
    bigger = old.with_node(new)
    moved = sum(m.range.width for m in moves(old, bigger, replication=1)) / RING_SIZE
    expected = 1 / (len(nodes) + 1)
    sigma = math.sqrt((1 - expected) / 128)          # relative spread of one node's share
    assert abs(moved / expected - 1) < 5 * sigma
    assert moved == pytest.approx(bigger.shares()[new])


@given(st.lists(node_names, min_size=2, max_size=8, unique=True), st.data(),
       st.lists(keys, min_size=50, max_size=200, unique=True))
def test_removing_a_node_moves_only_its_keys(nodes, data, sample):
    gone = data.draw(st.sampled_from(nodes))
    old = ring_of(nodes, 32)
    smaller = old.without_node(gone)
    before, after = _owners(old, sample), _owners(smaller, sample)
    assert all(before[k] == gone for k in sample if before[k] != after[k])
    assert all(after[k] != gone for k in sample)


@given(st.lists(node_names, min_size=1, max_size=6, unique=True), node_names, st.integers(1, 4),
       st.lists(keys, min_size=30, max_size=100, unique=True))
def test_moves_list_exactly_the_arcs_whose_replicas_change(nodes, new, n, sample):
    if new in nodes:
        return
    old = ring_of(nodes, 16)
    bigger = old.with_node(new, weight=2)
    changes = moves(old, bigger, n)
    for m in changes:
        assert m.gained == {new}        # lists only grow or swap a node for the new one
        assert m.lost <= set(nodes)
    for k in sample:
        t = token(k)
        containing = [m for m in changes if m.range.contains(t)]
        b, a = old.preference_list(k, n), bigger.preference_list(k, n)
        if set(b) == set(a):
            assert containing == []
        else:
            assert len(containing) == 1
            assert (list(containing[0].before), list(containing[0].after)) == (b, a)
    for plan in transfers(changes):
        assert plan.target == new
        assert plan.source in nodes


@given(st.lists(node_names, min_size=2, max_size=6, unique=True), st.data(), st.integers(1, 3))
def test_a_weight_change_moves_arcs_only_to_or_from_that_node(nodes, data, n):
    node = data.draw(st.sampled_from(nodes))
    old = ring_of(nodes, 16)
    heavier = old.with_weight(node, 3)
    assert all(m.gained <= {node} for m in moves(old, heavier, n))
    lighter = heavier.with_weight(node, 1)
    assert all(m.lost <= {node} for m in moves(heavier, lighter, n))
    assert moves(old, lighter, n) == []


def test_no_change_no_moves():
    ring = ring_of(["a", "b", "c"])
    assert moves(ring, HashRing(ring.weights, ring.vnodes), 3) == []


def test_the_first_node_takes_the_whole_ring():
    changes = moves(HashRing(), HashRing({"a": 1}), 3)
    assert len(changes) == 1 and changes[0].range.width == RING_SIZE
    assert transfers(changes)[0].source is None


# -- weights ------------------------------------------------------------------------------------

@statistical
@given(st.dictionaries(node_names, st.integers(1, 4), min_size=2, max_size=8),
       st.sampled_from([16, 256, 1024]))
def test_shares_follow_weights_closer_with_more_vnodes(weights, vnodes):
    ring = HashRing(weights, vnodes=vnodes)
    total = sum(weights.values())
    for node, share in ring.shares().items():
        expected = weights[node] / total
        # a node's share is the sum of vnodes*weight arcs: its relative spread ~ 1/sqrt(count)
        assert abs(share / expected - 1) < 5 / math.sqrt(vnodes * weights[node])


def test_vnode_count_follows_weight():
    ring = HashRing({"small": 1, "big": 2.5}, vnodes=10)
    assert (ring.vnode_count("small"), ring.vnode_count("big")) == (10, 25)
    assert HashRing({"tiny": 0.01}, vnodes=10).vnode_count("tiny") == 1


# -- token ranges -------------------------------------------------------------------------------

@given(st.integers(0, RING_SIZE - 1), st.integers(0, RING_SIZE - 1), st.integers(0, RING_SIZE - 1))
def test_token_range_contains_agrees_with_offset(start, end, t):
    r = TokenRange(start, end)
    assert r.contains(t) == (r.offset(t) < r.width)


def test_full_ring_contains_everything():
    assert FULL_RING.width == RING_SIZE
    assert FULL_RING.contains(0) and FULL_RING.contains(RING_SIZE - 1)
    assert TokenRange(RING_SIZE - 10, 5).contains(0)
    assert not TokenRange(RING_SIZE - 10, 5).contains(6)


# -- range sharding -----------------------------------------------------------------------------

def test_range_shards_route_keys_and_scans():
    shards = KeyRangeShards.build([b"g", b"p"], {"a": 1, "b": 1, "c": 1}, replication=2)
    assert [s.range for s in shards.shards] == [KeyRange(b"", b"g"), KeyRange(b"g", b"p"),
                                               KeyRange(b"p", None)]
    assert shards.shard_for(b"apple").range.start == b""
    assert shards.shard_for(b"g").range.start == b"g"
    assert shards.shard_for(b"\xff\xff").range.start == b"p"
    assert [s.range.start for s in shards.shards_for_scan(b"h", b"o")] == [b"g"]
    assert [s.range.start for s in shards.shards_for_scan(b"a", b"g")] == [b""]
    assert [s.range.start for s in shards.shards_for_prefix(b"p")] == [b"p"]
    assert len(shards.shards_for_scan()) == 3
    assert len(shards.preference_list(b"x", 1)) == 1


@given(st.lists(st.binary(min_size=1, max_size=4), max_size=8, unique=True), keys,
       st.binary(max_size=3), st.binary(max_size=3))
def test_range_scan_asks_exactly_the_shards_holding_keys_in_range(splits, key, lo, hi):
    shards = KeyRangeShards.build(sorted(splits), {"a": 1, "b": 2}, replication=2)
    holder = shards.shard_for(key)
    assert holder.range.contains(key)
    asked = shards.shards_for_scan(lo, hi or None)
    if lo <= key and (not hi or key < hi):
        assert holder in asked
    for s in asked:    # each asked shard shares at least one possible key with the range
        assert s.range.overlaps(lo, hi or None)


def test_range_shards_spread_first_replicas_by_weight():
    splits = [bytes([i]) for i in range(1, 30)]
    shards = KeyRangeShards.build(splits, {"a": 1, "b": 2}, replication=1)
    firsts = [s.replicas[0] for s in shards.shards]
    assert firsts.count("a") == 10 and firsts.count("b") == 20


def test_range_shard_changes_move_only_the_changed_shard():
    shards = KeyRangeShards.build([b"m"], {"a": 1, "b": 1, "c": 1}, replication=2)
    assert range_moves(shards, shards.split(b"f")) == []
    moved = shards.with_replicas(b"m", ["c", "a"])
    changes = range_moves(shards, moved)
    assert [m.range for m in changes] == [KeyRange(b"m", None)]
    assert (changes[0].before, changes[0].after) == (("b", "c"), ("c", "a"))
    assert (changes[0].gained, changes[0].lost) == ({"a"}, {"b"})


def test_range_shards_refuse_gaps_and_bad_splits():
    with pytest.raises(ValueError):
        KeyRangeShards([Shard(KeyRange(b"", b"m"), ("a",)), Shard(KeyRange(b"n", None), ("a",))])
    with pytest.raises(ValueError):
        KeyRangeShards([Shard(KeyRange(b"a", None), ("a",))])
    with pytest.raises(ValueError):
        KeyRangeShards.build([b"b", b"a"], {"a": 1}, 1)
    with pytest.raises(ValueError):
        KeyRangeShards.build([b"m"], {"a": 1}, 1).split(b"m")
