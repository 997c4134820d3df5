"""The ring document: which nodes hold the key-value store, their weights, the keyspaces, an epoch.

The document lives in one versioned znode of the coordination tree, `/dcli/kv/ring`, as the
JSON of `to_json` (ring_znode.py reads, watches and writes it). A change is computed from the
document a node holds and written with compare-and-set on the znode version that document came
from, so of two operators changing the ring at once through different nodes exactly one wins;
the other's command fails and is run again on the newer ring. Every node adopts what the znode
holds, read from its own replica of the tree.

Epoch 0 is the bootstrap document each node derives from its own flags (`--peers`,
`--kv-weights`, the same on every node, like `--peers`; a node started with `--join` leaves
itself out), so a fresh cluster agrees without writing anything; the first change creates the
znode. Nodes join and leave by an explicit change (`dcli kv rebalance`), which makes epoch 1,
2, ...

A membership change is two documents. The first (epoch e) holds the new nodes and, in
`previous`, the old ones: while it is in force reads use the old ring, writes go to the replicas
of both, and each new owner streams the ranges it gains. When every range has moved, epoch e+1
drops `previous`, and reads switch to the new ring. An acknowledged write is thus always on W
replicas of the ring that reads use.

The document is plain JSON with no node-local field. `load` reads the `<data-dir>/kv/ring.json`
an older build kept per node, which a node's first start migrates into the znode.

    >>> doc = bootstrap({1: "127.0.0.1:7181"}, vnodes=8)
    >>> doc.layout("default").preference_list(b"k")
    ['1']
    >>> bigger = doc.change(add={"2": ("127.0.0.1:7182", 1.0)})
    >>> bigger.epoch, sorted(bigger.nodes), sorted(bigger.previous)
    (1, ['1', '2'], ['1'])
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from dcli.wire.errors import InvalidQuorumError, KeyspaceExistsError, KeyspaceNotFoundError, MembershipError
from dcli.wire.kv_keys import DEFAULT_KEYSPACE, validate_key, validate_keyspace
from dcli_server.storage.files import write_atomically
from dcli_server.kv.ring import (DEFAULT_VNODES, HashRing, KeyRange, KeyRangeShards, RangeMove, TokenRange,
                                 _join_adjacent, range_moves)

STRICT, EVENTUAL = "strict", "eventual"
HASH, RANGE = "hash", "range"
DEFAULT_N = 3


@dataclass(frozen=True)
class NodeEntry:
    address: str                # the client address (what clients and `dcli kv ring` see)
    weight: float = 1.0
    peer: str = ""              # the peer address other nodes call; "": not recorded (an older build)


@dataclass(frozen=True)
class KeyspaceConfig:
    """N, R, W (0 = the default for the node count), consistency and sharding of one keyspace."""

    name: str
    n: int = 0
    r: int = 0
    w: int = 0
    consistency: str = STRICT
    sharding: str = HASH
    splits: tuple[bytes, ...] = ()

    def quorum(self, nodes: int, r: int | None = None, w: int | None = None) -> tuple[int, int, int]:
        """The (N, R, W) a request uses: the keyspace's, with a request's own R or W over them.
        Strict keyspaces refuse R + W <= N: a read might then miss an acknowledged write."""
        n = min(self.n or DEFAULT_N, max(nodes, 1))
        default = n // 2 + 1 if self.consistency == STRICT else 1
        ks_r, ks_w = min(self.r or default, n), min(self.w or default, n)
        req_r = ks_r if r is None else r
        req_w = ks_w if w is None else w
        for name, value in (("R", req_r), ("W", req_w)):
            if not 1 <= value <= n:
                raise InvalidQuorumError(message=f"Invalid quorum: {name}={value} is impossible with "
                                                 f"N={n} in keyspace '{self.name}' (choose 1 to {n})")
        if self.consistency == STRICT and req_r + req_w <= n:
            raise InvalidQuorumError(message=(
                f"Invalid quorum: R + W must be greater than N in strict keyspace '{self.name}': "
                f"R={req_r} + W={req_w} = {req_r + req_w} is not more than N={n}, so a read could "
                f"miss an acknowledged write (use an eventual keyspace for that)"))
        return n, req_r, req_w

    def to_json(self) -> dict:
        return {"n": self.n, "r": self.r, "w": self.w, "consistency": self.consistency,
                "sharding": self.sharding, "splits": [s.hex() for s in self.splits]}

    @classmethod
    def from_json(cls, name: str, data: Mapping) -> KeyspaceConfig:
        return cls(name, int(data.get("n", 0)), int(data.get("r", 0)), int(data.get("w", 0)),
                   data.get("consistency", STRICT), data.get("sharding", HASH),
                   tuple(bytes.fromhex(s) for s in data.get("splits", ())))

    def validate(self, nodes: int) -> KeyspaceConfig:
        validate_keyspace(self.name)
        bad = InvalidQuorumError
        if self.consistency not in (STRICT, EVENTUAL):
            raise bad(message=f"Invalid keyspace: consistency must be strict or eventual, not '{self.consistency}'")
        if self.sharding not in (HASH, RANGE):
            raise bad(message=f"Invalid keyspace: sharding must be hash or range, not '{self.sharding}'")
        if self.n < 0 or self.r < 0 or self.w < 0:
            raise bad(message="Invalid quorum: N, R and W must not be negative")
        if self.n > nodes:
            raise bad(message=f"Invalid quorum: N={self.n} needs {self.n} nodes, the ring has {nodes}")
        if self.splits and self.sharding != RANGE:
            raise bad(message="Invalid keyspace: split keys are for range sharding")
        for s in self.splits:
            validate_key(s)
        if list(self.splits) != sorted(set(self.splits)):
            raise bad(message="Invalid keyspace: split keys must be distinct and sorted")
        self.quorum(nodes)
        return self


@dataclass(frozen=True)
class RingDocument:
    epoch: int
    vnodes: int
    nodes: Mapping[str, NodeEntry]
    keyspaces: Mapping[str, KeyspaceConfig] = field(default_factory=dict)
    previous: Mapping[str, NodeEntry] | None = None     # the ring before a move under way

    # -- encoding ---------------------------------------------------------------------------

    def to_json(self) -> str:
        def nodes(m):
            return {k: {"address": v.address, "weight": v.weight, **({"peer": v.peer} if v.peer else {})}
                    for k, v in sorted(m.items(), key=_node_order)}
        data = {"epoch": self.epoch, "vnodes": self.vnodes, "nodes": nodes(self.nodes),
                "previous": None if self.previous is None else nodes(self.previous),
                "keyspaces": {k: v.to_json() for k, v in sorted(self.keyspaces.items())}}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RingDocument:
        data = json.loads(text)

        def nodes(m):
            return {str(k): NodeEntry(v["address"], float(v.get("weight", 1.0)), str(v.get("peer") or ""))
                    for k, v in m.items()}
        return cls(int(data["epoch"]), int(data.get("vnodes", DEFAULT_VNODES)), nodes(data["nodes"]),
                   {k: KeyspaceConfig.from_json(k, v) for k, v in data.get("keyspaces", {}).items()},
                   None if data.get("previous") is None else nodes(data["previous"]))

    # -- placement --------------------------------------------------------------------------

    @property
    def moving(self) -> bool:
        return self.previous is not None

    def keyspace(self, name: str) -> KeyspaceConfig:
        validate_keyspace(name)
        config = self.keyspaces.get(name)
        if config is None:
            if name == DEFAULT_KEYSPACE:
                return KeyspaceConfig(DEFAULT_KEYSPACE)
            raise KeyspaceNotFoundError(name, f"Keyspace does not exist: {name} "
                                              "(create it with `dcli kv create-keyspace`)")
        return config

    def all_keyspaces(self) -> list[KeyspaceConfig]:
        return [self.keyspace(name) for name in sorted({DEFAULT_KEYSPACE, *self.keyspaces})]

    @functools.cached_property
    def _layouts(self) -> dict:
        return {}

    def layout(self, keyspace: str) -> Layout:
        """Where a keyspace's keys live for writes: the new ring during a move."""
        key = ("write", keyspace)
        if key not in self._layouts:
            self._layouts[key] = Layout.of(self.keyspace(keyspace), self.nodes, self.vnodes)
        return self._layouts[key]

    def read_layout(self, keyspace: str) -> Layout:
        """Where reads go: the old ring until every moved range has arrived."""
        if not self.moving:
            return self.layout(keyspace)
        key = ("read", keyspace)
        if key not in self._layouts:
            self._layouts[key] = Layout.of(self.keyspace(keyspace), self.previous, self.vnodes)
        return self._layouts[key]

    def address(self, node: str) -> str | None:
        entry = self.entry(node)
        return entry.address if entry else None

    def entry(self, node: str) -> NodeEntry | None:
        return self.nodes.get(node) or (self.previous or {}).get(node)

    def members(self) -> list[str]:
        """Every node of the ring and, during a move, of the old one."""
        return sorted({*self.nodes, *(self.previous or {})}, key=_node_key)

    # -- changes ----------------------------------------------------------------------------

    def change(self, add: Mapping[str, tuple] = {}, remove=(),
               weights: Mapping[str, float] = {}) -> RingDocument:
        """The first document of a membership change (epoch + 1, `previous` = today's nodes).
        `add` maps a node id to (client address, weight[, peer address])."""
        if self.moving:
            raise MembershipError(message="Membership change refused: a move is under way "
                                          "(run `dcli kv rebalance` with no change to finish it)")
        nodes = dict(self.nodes)
        for node, (address, weight, *peer) in add.items():
            peer = peer[0] if peer else ""
            if node in nodes:
                raise MembershipError(message=f"Membership change refused: node {node} is already on the ring")
            taken = {a for e in nodes.values() for a in (e.address, e.peer) if a}
            for a in (address, peer):
                if a in taken:
                    raise MembershipError(message=f"Membership change refused: {a} is already on the ring")
            nodes[node] = NodeEntry(address, _weight(weight or 1.0), peer)
        for node in remove:
            if node not in nodes:
                raise MembershipError(message=f"Membership change refused: node {node} is not on the ring")
            del nodes[node]
        for node, weight in weights.items():
            if node not in nodes:
                raise MembershipError(message=f"Membership change refused: node {node} is not on the ring")
            nodes[node] = replace(nodes[node], weight=_weight(weight))
        if not nodes:
            raise MembershipError(message="Membership change refused: the ring would have no nodes")
        if nodes == dict(self.nodes):
            raise MembershipError(message="Membership change refused: nothing changes")
        for ks in self.keyspaces.values():
            if ks.n > len(nodes):
                raise MembershipError(message=f"Membership change refused: keyspace '{ks.name}' "
                                              f"has N={ks.n}, the ring would have {len(nodes)} nodes")
        return RingDocument(self.epoch + 1, self.vnodes, nodes, dict(self.keyspaces), dict(self.nodes))

    def committed(self) -> RingDocument:
        """The document that ends a move: reads switch to the new ring."""
        return RingDocument(self.epoch + 1, self.vnodes, dict(self.nodes), dict(self.keyspaces), None)

    def with_keyspace(self, config: KeyspaceConfig) -> RingDocument:
        if config.name in self.keyspaces or config.name == DEFAULT_KEYSPACE:
            raise KeyspaceExistsError(config.name, f"Keyspace already exists: {config.name}")
        config.validate(len(self.nodes))
        return RingDocument(self.epoch + 1, self.vnodes, dict(self.nodes),
                            {**self.keyspaces, config.name: config}, self.previous)

    def moves(self) -> dict[str, list[RangeMove]]:
        """During a move: per keyspace, the ranges whose replicas change."""
        if not self.moving:
            return {}
        return {ks.name: layout_moves(Layout.of(ks, self.previous, self.vnodes),
                                      Layout.of(ks, self.nodes, self.vnodes))
                for ks in self.all_keyspaces()}


def _weight(w: float) -> float:
    if not (w > 0 and w <= 1000):
        raise MembershipError(message=f"Membership change refused: weight must be above 0 and at most 1000, not {w}")
    return float(w)


def _node_key(node: str):
    return (0, int(node), node) if node.isdigit() else (1, 0, node)


def _node_order(item):
    return _node_key(item[0])


def bootstrap(peers: Mapping[int, str], weights: Mapping[int, float] | None = None,
              vnodes: int = DEFAULT_VNODES, peer_addresses: Mapping[int, str] | None = None) -> RingDocument:
    """Epoch 0: every `--peers` node (client and peer address), with its `--kv-weights` weight
    (1 when not given)."""
    weights, peer_addresses = weights or {}, peer_addresses or {}
    return RingDocument(0, vnodes, {str(i): NodeEntry(addr, float(weights.get(i, 1.0)), peer_addresses.get(i, ""))
                                    for i, addr in sorted(peers.items())})


def load(path: Path) -> RingDocument | None:
    try:
        return RingDocument.from_json(path.read_text())
    except FileNotFoundError:
        return None


def save(path: Path, doc: RingDocument) -> None:
    """Atomically (what an older build did with ring.json; tests make such files with it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, doc.to_json())


# -- layouts: a keyspace's placement on a set of nodes --------------------------------------------

Span = TokenRange | KeyRange


@functools.lru_cache(maxsize=64)
def _ring(weights: tuple[tuple[str, float], ...], vnodes: int) -> HashRing:
    return HashRing(dict(weights), vnodes=vnodes)


class Layout:
    """One keyspace on one set of nodes: hash ring or key-range shards, with its N."""

    def __init__(self, config: KeyspaceConfig, weights: Mapping[str, float], vnodes: int):
        self.config = config
        self.n = min(config.n or DEFAULT_N, len(weights))
        self.ring: HashRing | None = None
        self.shards: KeyRangeShards | None = None
        if config.sharding == RANGE:
            self.shards = KeyRangeShards.build(list(config.splits), dict(weights), self.n)
        else:
            self.ring = _ring(tuple(sorted(weights.items())), vnodes)
        self.nodes = sorted(weights, key=_node_key)

    @classmethod
    def of(cls, config: KeyspaceConfig, nodes: Mapping[str, NodeEntry], vnodes: int) -> Layout:
        return cls(config, {k: v.weight for k, v in nodes.items()}, vnodes)

    def preference_list(self, key: bytes) -> list[str]:
        if self.ring is not None:
            return self.ring.preference_list(key, self.n)
        return self.shards.preference_list(key, self.n)

    def walk(self, key: bytes) -> list[str]:
        """Every node, in the order a key's hinted writes look for a stand-in."""
        if self.ring is not None:
            return self.ring.preference_list(key, len(self.nodes))
        first = self.preference_list(key)
        return first + [n for n in self.nodes if n not in first]

    def nodes_for_scan(self, start: bytes = b"", end: bytes | None = None) -> list[str]:
        if self.ring is not None:
            return list(self.nodes)
        return self.shards.nodes_for_scan(start, end)

    @functools.cached_property
    def _spans(self) -> list[tuple[Span, tuple[str, ...]]]:
        if self.ring is not None:
            return self.ring.replica_ranges(self.n)
        return [(s.range, s.replicas[:self.n]) for s in self.shards.shards]

    def replica_spans(self) -> list[tuple[Span, tuple[str, ...]]]:
        return self._spans

    def spans_of(self, node: str) -> list[tuple[Span, tuple[str, ...]]]:
        return [(span, replicas) for span, replicas in self.replica_spans() if node in replicas]


def layout_moves(old: Layout, new: Layout) -> list[RangeMove]:
    """The spans whose replica set differs between two layouts of a keyspace (N may differ)."""
    if old.ring is not None and new.ring is not None:
        boundaries = sorted(set(old.ring.tokens) | set(new.ring.tokens))
        changed = []
        for i, end in enumerate(boundaries):
            before = tuple(old.ring.preference_for_token(end, old.n))
            after = tuple(new.ring.preference_for_token(end, new.n))
            if set(before) != set(after):
                changed.append((TokenRange(boundaries[i - 1], end), (before, after)))
        return [RangeMove(r, b, a) for r, (b, a) in _join_adjacent(changed)]
    return range_moves(old.shards, new.shards)
