"""Merkle trees: two replicas find the keys they disagree on with few exchanged hashes."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st

from dcli_server.kv.merkle import (HASH_BYTES, MerkleTree, descend, diff, differing_keys,
                                   leaf_index, leaf_range)
from dcli_server.kv.ring import FULL_RING, RING_SIZE, TokenRange, token

tokens = st.integers(0, RING_SIZE - 1)
narrow = st.builds(lambda s, w: TokenRange(s, (s + w) % RING_SIZE), tokens, st.integers(1, 300))
spans = st.one_of(st.just(FULL_RING), st.builds(TokenRange, tokens, tokens), narrow)
depths = st.integers(0, 8)


def vhash(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def replica(n: int, seed: int = 0) -> dict[bytes, bytes]:
    return {f"key-{seed}-{i}".encode(): vhash(f"v{i}") for i in range(n)}


def in_span(entries: dict[bytes, bytes], span: TokenRange) -> dict[bytes, bytes]:
    return {k: h for k, h in entries.items() if span.contains(token(k))}


@st.composite
def diverged_replicas(draw):
    """Two replicas of one range that differ on a few keys: changed, missing on either side."""
    base = replica(draw(st.integers(0, 300)), draw(st.integers(0, 1000)))
    span = draw(spans)
    mine = in_span(base, span)
    theirs = dict(mine)
    keys = sorted(mine)
    changed = draw(st.sets(st.sampled_from(keys), max_size=5)) if keys else set()
    dropped = draw(st.sets(st.sampled_from(keys), max_size=3)) if keys else set()
    for k in changed:
        theirs[k] = vhash("newer " + k.decode())
    for k in dropped - changed:
        del theirs[k]
    extra = {k: vhash("extra") for k in draw(st.sets(st.binary(min_size=1, max_size=8), max_size=3))
             if span.contains(token(k)) and k not in mine}
    theirs.update(extra)
    expected = changed | (dropped - changed) | set(extra)
    return span, mine, theirs, expected


@given(diverged_replicas(), depths)
def test_the_diff_finds_exactly_the_differing_keys(case, depth):
    span, mine, theirs, expected = case
    a = MerkleTree.build(mine.items(), span, depth)
    b = MerkleTree.build(theirs.items(), span, depth)
    found = diff(a, b)
    assert len(found.leaves) <= len(expected)
    for leaf in found.leaves:      # no leaf without a differing key: no wasted key exchange
        assert any(leaf_index(token(k), span, depth) == leaf for k in expected)

    def inside(entries):
        return {k: h for k, h in entries.items()
                if any(r.contains(token(k)) for r in found.ranges)}

    assert differing_keys(inside(mine), inside(theirs)) == expected
    # the descent asks only below differing nodes: at most 2 hashes per level per differing key
    assert found.hashes_exchanged <= 1 + 2 * depth * len(expected)


@given(st.integers(0, 200), depths, spans)
def test_identical_replicas_exchange_one_hash(n, depth, span):
    entries = in_span(replica(n), span)
    a = MerkleTree.build(entries.items(), span, depth)
    b = MerkleTree.build(reversed(list(entries.items())), span, depth)   # order does not matter
    assert a.root == b.root
    assert diff(a, b) == diff(b, a)
    assert diff(a, b).leaves == () and diff(a, b).hashes_exchanged == 1


@given(spans, depths, st.lists(tokens, max_size=20))
def test_leaf_ranges_cut_the_span_into_the_leaves(span, depth, ts):
    if span.width < 1 << depth:
        with pytest.raises(ValueError):
            leaf_range(span, depth, 0)
        depth = MerkleTree.build([], span, depth).depth
        assert 1 << depth <= span.width < 1 << (depth + 1)
    pieces = [leaf_range(span, depth, i) for i in range(1 << depth)]
    assert pieces[0].start == span.start and pieces[-1].end == span.end
    assert all(left.end == right.start for left, right in zip(pieces, pieces[1:]))
    for t in ts:
        if span.contains(t):
            i = leaf_index(t, span, depth)
            assert pieces[i].contains(t)
            assert sum(p.contains(t) for p in pieces) == 1


def test_tokens_outside_the_span_are_refused():
    with pytest.raises(ValueError):
        leaf_index(50, TokenRange(100, 200), 4)
    t = token(b"k")
    with pytest.raises(ValueError):       # the start of an arc is exclusive
        MerkleTree.build([(b"k", vhash("v"))], TokenRange(t, (t + 5) % RING_SIZE), 2)


@given(diverged_replicas(), depths)
def test_trees_travel_encoded_and_descend_remotely(case, depth):
    span, mine, theirs, expected = case
    local = MerkleTree.build(mine.items(), span, depth)
    remote = MerkleTree.decode(MerkleTree.build(theirs.items(), span, depth).encode())
    assert remote.span == span and remote.depth == local.depth
    asked = []

    def ask(level, indexes):       # what a peer answers over the network
        asked.append((level, list(indexes)))
        return remote.hashes(level, indexes)

    found = descend(local, ask)
    assert found == diff(local, remote)
    assert sum(len(ix) for _, ix in asked) == found.hashes_exchanged
    assert [level for level, _ in asked] == list(range(len(asked)))
    assert (found.leaves == ()) == (expected == set())


def test_encoded_size_and_refusals():
    tree = MerkleTree.build(replica(10).items(), depth=6)
    data = tree.encode()
    assert len(data) == 21 + 64 * HASH_BYTES
    for bad in (b"", data[:-1], b"XXXX" + data[4:], data + b"\0"):
        with pytest.raises(ValueError):
            MerkleTree.decode(bad)
    with pytest.raises(ValueError):
        diff(tree, MerkleTree.build([], depth=5))
    with pytest.raises(ValueError):
        MerkleTree.build([], depth=21)


def test_a_single_changed_key_is_found_among_many():
    mine = replica(5000)
    theirs = dict(mine)
    theirs[b"key-0-1234"] = vhash("changed")
    found = diff(MerkleTree.build(mine.items()), MerkleTree.build(theirs.items()))
    assert len(found.leaves) == 1 and found.hashes_exchanged <= 1 + 2 * 10
    (r,) = found.ranges
    assert r.contains(token(b"key-0-1234"))
    assert sum(r.contains(token(k)) for k in mine) < 20     # only that leaf's keys are compared
