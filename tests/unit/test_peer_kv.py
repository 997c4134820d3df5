"""The KV store's calls between nodes on the peer transport, in one process: two PeerTransports,
a KVNode answering on one (KVPeerService), FramesKVTransport calling from the other."""
from __future__ import annotations

import asyncio

import pytest

from dcli.wire import errors
from dcli.wire.kv_keys import InvalidKeyspaceError
from dcli_server.kv import rebalance
from dcli_server.kv.node import KVConfig, KVNode
from dcli_server.kv.ring import FULL_RING, KeyRange, TokenRange
from dcli_server.kv.transport import PeerUnreachable
from dcli_server.kv.versions import Version, VectorClock
from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
from dcli_server.listeners.peer_kv import FramesKVTransport, KVPeerService
from dcli_server.listeners.peer_transport import PeerTransport

DEADLINE_S = 30.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, DEADLINE_S))


async def pair(tmp_path):
    """Node 1 calls (FramesKVTransport), node 2 answers from its KVNode."""
    caller, answerer = PeerTransport(ClusterSecretHandshake(1)), PeerTransport(ClusterSecretHandshake(2))
    await answerer.listen("127.0.0.1", 0)
    await caller.listen("127.0.0.1", 0)
    node = KVNode(tmp_path / "n2", KVConfig(node_id=2), FramesKVTransport(answerer))
    KVPeerService(node).register(answerer)
    kv = FramesKVTransport(caller, timeout_ms=5000)
    kv.set_members({"2": f"127.0.0.1:{answerer.port}"})
    return kv, node, caller, answerer


async def close(node, *transports):
    await node.coordinator.drain()
    node.store.close()
    for t in transports:
        await t.close()


def test_calls_answer_and_errors_come_back_as_their_own_class(tmp_path):
    async def scenario():
        kv, node, *transports = await pair(tmp_path)
        try:
            version = Version("1", 1, VectorClock(), b"v")
            assert await kv.apply("2", "default", [(b"k", (version,))], me="1") == 0
            assert await kv.read("2", "default", [b"k", b"other"]) == [(version,), ()]
            assert (await kv.status("2"))["keys"] == {"default": 1}
            assert await kv.ping("2", "1", 0) == node.document.epoch
            with pytest.raises(InvalidKeyspaceError, match="Invalid keyspace"):
                await kv.read("2", "no/such", [b"k"])
            with pytest.raises(PeerUnreachable, match="not a known peer"):
                await kv.read("3", "default", [b"k"])
            kv.set_members({})                  # no longer a member: the link goes
            with pytest.raises(PeerUnreachable):
                await kv.read("2", "default", [b"k"])
        finally:
            await close(node, *transports)
    run(scenario())


def test_a_moved_range_comes_in_pages_and_a_pull_is_started_then_polled(tmp_path, monkeypatch):
    monkeypatch.setattr(rebalance, "PAGE_ENTRIES", 50)
    monkeypatch.setattr(rebalance.read_page, "__defaults__", (0, None, 50, rebalance.PAGE_BYTES))

    async def scenario():
        kv, node, *transports = await pair(tmp_path)
        try:
            for i in range(230):
                await asyncio.to_thread(node.store.write, "default", b"k%03d" % i, b"v", None, "2", 0)
            spans = [TokenRange(1 << 63, 1 << 62), KeyRange(b"k1", b"k2"), FULL_RING]
            pages = [p async for p in kv.stream_range("2", "default", spans)]
            got = [k for p in pages for k, _ in p]
            expected = [k for s in spans for k, _ in (node.store.entries_in_keys("default", s)
                                                      if isinstance(s, KeyRange) else node.store.entries("default", s))]
            assert got == expected and max(len(p) for p in pages) == 50 and len(pages) >= 10
            # a pull for a move this node does not hold ends with that error; polled, not streamed
            with pytest.raises(errors.MembershipError, match="not the move of epoch 7"):
                async for _ in kv.pull_ranges("2", 7):
                    pass
        finally:
            await close(node, *transports)
    run(scenario())
