"""The ring document in the tree's /dcli/kv/ring, on a real coordination node in process: a change
made through one KV node reaches another through its watch, a change computed from an older
version loses cleanly, a ring.json of an older build is migrated once, and only members of the
coordination cluster may join the ring."""
from __future__ import annotations

import asyncio
import logging

import pytest

from dcli.wire.errors import MembershipError
from dcli_server.kv import membership, rebalance
from dcli_server.kv.membership import KeyspaceConfig, RingDocument, bootstrap
from dcli_server.kv.node import KVConfig, KVNode
from dcli_server.kv.ring_znode import RING_PATH, RingChangedError
from dcli_server.kv.transport import PeerUnreachable
from dcli_server.local_session import LocalSession
from dcli_server.node import CoordNode, NodeConfig

PEERS = {1: "127.0.0.1:7181", 2: "127.0.0.1:7182", 3: "127.0.0.1:7183"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


class _Members:
    """A Transport stand-in: members only; no other node answers (these tests make no calls
    between nodes: the tree carries the ring)."""

    def set_members(self, peers):
        self.members = dict(peers)

    async def status(self, node, *_):
        raise PeerUnreachable(f"node {node}: no transport in this test")

    ping = status


async def _tree(tmp_path) -> CoordNode:
    node = CoordNode(NodeConfig(data_dir=tmp_path / "coord"))
    await node.start()
    return node


async def _kv(tmp_path, coord: CoordNode, node_id: int, members=None) -> KVNode:
    """A KV node with its own data dir and its own session on the (shared) tree."""
    kv = KVNode(tmp_path / f"n{node_id}", KVConfig(node_id=node_id, peers=dict(PEERS), heartbeat_ms=3_600_000,
                         anti_entropy_ms=3_600_000),
                _Members(), tree=LocalSession(coord), coord_members=members)
    await kv.start(PEERS[node_id])
    return kv


async def _until(predicate, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_a_change_through_one_node_reaches_the_others_through_their_watch(tmp_path):
    async def scenario():
        coord = await _tree(tmp_path)
        a, b = await _kv(tmp_path, coord, 1), await _kv(tmp_path, coord, 2)
        try:
            assert a.document.epoch == b.document.epoch == 0          # the bootstrap, not written
            assert await a.ring.tree.get(RING_PATH) is None
            doc, version = a.snapshot()
            await a.commit(doc.change(add={"4": ("127.0.0.1:7184", 1.0)}), version)
            await _until(lambda: b.document.epoch == 1, "node 2 to adopt epoch 1")
            assert b.document == a.document and sorted(b.document.nodes) == ["1", "2", "3", "4"]
            doc, version = a.snapshot()
            await a.commit(doc.committed(), version)
            await _until(lambda: not b.document.moving, "node 2 to adopt the commit")
            data, stat = await a.ring.tree.get(RING_PATH)
            assert RingDocument.from_json(data.decode()) == b.document and stat.version == 1
            # a node that was not running reads the newest ring from the tree when it starts
            c = await _kv(tmp_path, coord, 3)
            assert c.document == a.document
            await c.stop()
        finally:
            await a.stop()
            await b.stop()
            await coord.stop()
    run(scenario())


def test_a_change_computed_from_an_older_ring_loses_cleanly(tmp_path):
    async def scenario():
        coord = await _tree(tmp_path)
        a, b = await _kv(tmp_path, coord, 1), await _kv(tmp_path, coord, 2)
        try:
            stale, version = b.snapshot()        # both operators start from epoch 0
            doc, _ = a.snapshot()
            await a.commit(doc.change(add={"4": ("127.0.0.1:7184", 1.0)}), version)
            await _until(lambda: b.document.epoch == 1, "node 2 to adopt epoch 1")
            with pytest.raises(RingChangedError, match=r"the ring changed meanwhile \(epoch 1\); run the command again"):
                await b.commit(stale.change(remove=["3"]), version)     # computed before it heard
            found = await a.ring.tree.get(RING_PATH)
            assert sorted(RingDocument.from_json(found[0].decode()).nodes) == ["1", "2", "3", "4"]
            # a keyspace is recomputed on the newer ring instead: nothing of either change is lost
            b.document, b.ring_version = stale, -1      # as if node 2's watch had not fired yet
            await b.create_keyspace(KeyspaceConfig("users", n=1))
            await _until(lambda: "users" in a.document.keyspaces, "node 1 to see the keyspace")
            assert sorted(a.document.nodes) == ["1", "2", "3", "4"] and a.document.epoch == 2
        finally:
            await a.stop()
            await b.stop()
            await coord.stop()
    run(scenario())


def test_a_ring_json_of_an_older_build_is_migrated_into_the_tree_once(tmp_path, caplog):
    async def scenario():
        coord = await _tree(tmp_path)
        old = bootstrap(PEERS).change(add={"4": ("127.0.0.1:7184", 1.0)}).committed()     # epoch 2
        path = tmp_path / "n1" / "kv" / "ring.json"
        membership.save(path, old)
        membership.save(tmp_path / "n2" / "kv" / "ring.json", bootstrap(PEERS).change(remove=["3"]))
        with caplog.at_level(logging.WARNING, logger="dcli.kv"):
            a = await _kv(tmp_path, coord, 1)
        b = await _kv(tmp_path, coord, 2)        # its own older file: the tree's ring wins
        try:
            assert a.document == old == b.document
            found = await a.ring.tree.get(RING_PATH)
            assert RingDocument.from_json(found[0].decode()) == old
            assert not path.exists() and path.with_name("ring.json.migrated").exists()
            assert not (tmp_path / "n2" / "kv" / "ring.json").exists()
            assert "ring epoch 2 migrated from" in caplog.text
        finally:
            await a.stop()
            await b.stop()
            await coord.stop()
    run(scenario())


def test_only_a_member_of_the_coordination_cluster_joins_the_ring(tmp_path):
    async def scenario():
        coord = await _tree(tmp_path)
        a = await _kv(tmp_path, coord, 1, members=lambda: frozenset({1, 2, 3}))
        try:
            with pytest.raises(MembershipError, match=r"node 4 is not a member of the coordination cluster; "
                                                      r"add it first \(`dcli cluster member add`\)"):
                async for _ in rebalance.rebalance(a, {"4": ("127.0.0.1:7184", 1.0)}, [], {}):
                    pass
            assert a.document.epoch == 0 and await a.ring.tree.get(RING_PATH) is None
        finally:
            await a.stop()
            await coord.stop()
    run(scenario())
