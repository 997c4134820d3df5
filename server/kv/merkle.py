"""Merkle trees over an arc of the ring, to find the keys two replicas disagree on.

The range (an arc of the ring) is cut into 2**depth equal leaves by token. A leaf's hash is the
XOR of its keys' digests, blake2b(key, version hash) (Cassandra's trees do the same), so a tree
is built in one pass over an unordered (key, version hash) iterator with memory for the leaves
only; an inner node hashes its two children. Two replicas compare roots, then only the children
of nodes that differ, down to the leaves: with k differing keys about 2·k·depth hashes cross the
network instead of one per key. The keys of the differing leaves are then compared one by one.

In range-sharding mode a shard's keys are bucketed by their token over the whole ring: the tree
only needs a fixed, shared way to spread keys over leaves, not key order.

    >>> a = MerkleTree.build([(b"k1", b"v1"), (b"k2", b"v1")], depth=4)
    >>> b = MerkleTree.build([(b"k1", b"v1"), (b"k2", b"v2")], depth=4)
    >>> d = diff(a, b)
    >>> [r.contains(token(b"k2")) for r in d.ranges]
    [True]
    >>> MerkleTree.decode(a.encode()).root == a.root
    True
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from dcli_server.kv.ring import FULL_RING, TokenRange, token

HASH_BYTES = 16
DEFAULT_DEPTH = 10      # 1024 leaves: a tree is 16 KiB of leaf hashes
MAX_DEPTH = 20
_EMPTY = bytes(HASH_BYTES)
_MAGIC = b"DKM1"
_HEADER = struct.Struct(">4sBQQ")


def entry_digest(key: bytes, vhash: bytes) -> int:
    h = hashlib.blake2b(digest_size=HASH_BYTES)
    h.update(len(key).to_bytes(4, "big"))
    h.update(key)
    h.update(vhash)
    return int.from_bytes(h.digest(), "big")


def _parent(left: bytes, right: bytes) -> bytes:
    if left == _EMPTY and right == _EMPTY:
        return _EMPTY       # empty subtrees hash to zeros, so sparse trees stay cheap
    return hashlib.blake2b(left + right, digest_size=HASH_BYTES).digest()


class MerkleTree:
    """A complete binary tree of hashes over the arc `span`; level 0 is the root, level `depth` the
    leaves."""

    def __init__(self, leaves: Sequence[bytes], span: TokenRange = FULL_RING):
        depth = len(leaves).bit_length() - 1
        if len(leaves) != 1 << depth or depth > MAX_DEPTH:
            raise ValueError(f"a tree needs a power of two of leaves, at most 2**{MAX_DEPTH}")
        if any(len(h) != HASH_BYTES for h in leaves):
            raise ValueError(f"leaf hashes are {HASH_BYTES} bytes")
        self.span = span
        self.depth = depth
        levels = [list(leaves)]
        while len(levels[0]) > 1:
            below = levels[0]
            levels.insert(0, [_parent(below[i], below[i + 1]) for i in range(0, len(below), 2)])
        self.levels: list[list[bytes]] = levels

    @classmethod
    def build(cls, entries: Iterable[tuple[bytes, bytes]], span: TokenRange = FULL_RING,
              depth: int = DEFAULT_DEPTH) -> MerkleTree:
        """The tree of (key, version hash) pairs in any order; every key must fall in `span`.
        An arc narrower than 2**depth tokens gets a shallower tree, so no leaf is empty."""
        if not 0 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be between 0 and {MAX_DEPTH}, not {depth}")
        depth = min(depth, span.width.bit_length() - 1)
        acc = [0] * (1 << depth)
        for key, vhash in entries:
            acc[leaf_index(token(key), span, depth)] ^= entry_digest(key, vhash)
        return cls([x.to_bytes(HASH_BYTES, "big") for x in acc], span)

    @property
    def root(self) -> bytes:
        return self.levels[0][0]

    @property
    def leaves(self) -> list[bytes]:
        return self.levels[-1]

    def hashes(self, level: int, indexes: Iterable[int]) -> list[bytes]:
        """The hashes a peer asks for during a descent."""
        row = self.levels[level]
        return [row[i] for i in indexes]

    def leaf_range(self, index: int) -> TokenRange:
        return leaf_range(self.span, self.depth, index)

    def encode(self) -> bytes:
        """The range, the depth and the leaves; inner nodes are recomputed on decode."""
        header = _HEADER.pack(_MAGIC, self.depth, self.span.start, self.span.end)
        return header + b"".join(self.leaves)

    @classmethod
    def decode(cls, data: bytes) -> MerkleTree:
        if len(data) < _HEADER.size:
            raise ValueError("truncated Merkle tree")
        magic, depth, start, end = _HEADER.unpack_from(data)
        if magic != _MAGIC or depth > MAX_DEPTH:
            raise ValueError("not an encoded Merkle tree")
        body = data[_HEADER.size:]
        if len(body) != (1 << depth) * HASH_BYTES:
            raise ValueError(f"a tree of depth {depth} has {1 << depth} leaves")
        leaves = [body[i:i + HASH_BYTES] for i in range(0, len(body), HASH_BYTES)]
        return cls(leaves, TokenRange(start, end))


def leaf_index(t: int, span: TokenRange, depth: int) -> int:
    if not span.contains(t):
        raise ValueError(f"token {t:#x} is outside {span}")
    return (span.offset(t) << depth) // span.width


def leaf_range(span: TokenRange, depth: int, index: int) -> TokenRange:
    """Leaf `index`'s arc: the tokens t with leaf_index(t) == index."""
    if span.width < 1 << depth:
        raise ValueError(f"{span} is too narrow for {1 << depth} leaves")
    def last_offset(i: int) -> int:     # greatest offset that lands in leaf i
        return -(-((i + 1) * span.width) >> depth) - 1
    first = span.start if index == 0 else span.start + 1 + last_offset(index - 1)
    return TokenRange(first % (1 << 64), (span.start + 1 + last_offset(index)) % (1 << 64))


@dataclass(frozen=True)
class MerkleDiff:
    leaves: tuple[int, ...]          # differing leaf indexes, ascending
    ranges: tuple[TokenRange, ...]   # their arcs, neighbours joined
    hashes_exchanged: int            # how many hashes the descent asked the peer for


def descend(local: MerkleTree, ask: Callable[[int, list[int]], Sequence[bytes]]) -> MerkleDiff:
    """Compare `local` with a peer's tree of the same range and depth, asking the peer
    (`ask(level, indexes) -> hashes`) only for the children of nodes that differ."""
    exchanged = 0
    suspects = [0]
    for level in range(local.depth + 1):
        if not suspects:
            break
        theirs = ask(level, suspects)
        exchanged += len(suspects)
        mine = local.hashes(level, suspects)
        differing = [i for i, a, b in zip(suspects, mine, theirs) if a != b]
        if level == local.depth:
            suspects = differing
        else:
            suspects = [c for i in differing for c in (2 * i, 2 * i + 1)]
    leaves = tuple(suspects)
    return MerkleDiff(leaves, _join(local, leaves), exchanged)


def diff(a: MerkleTree, b: MerkleTree) -> MerkleDiff:
    """The leaves where two trees of the same range and depth differ."""
    if a.span != b.span or a.depth != b.depth:
        raise ValueError("only trees of the same range and depth can be compared")
    return descend(a, b.hashes)


def _join(tree: MerkleTree, leaves: Sequence[int]) -> tuple[TokenRange, ...]:
    ranges: list[TokenRange] = []
    previous = None
    for i in leaves:
        r = tree.leaf_range(i)
        if previous is not None and previous + 1 == i:
            ranges[-1] = TokenRange(ranges[-1].start, r.end)
        else:
            ranges.append(r)
        previous = i
    return tuple(ranges)


def differing_keys(mine: Mapping[bytes, bytes], theirs: Mapping[bytes, bytes]) -> set[bytes]:
    """The keys, among two replicas' (key -> version hash) maps of the differing ranges, that
    one lacks or holds at another version: the keys to exchange."""
    return {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}
