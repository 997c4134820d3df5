"""LocalSession on a real single node (in process): reads, CAS writes, watches, and a new
session when the old one has expired."""
from __future__ import annotations

import asyncio

import pytest

from dcli.v1 import coord_pb2 as pb
from dcli.wire.errors import BadVersionError, NodeExistsError
from dcli_server.local_session import LocalSession
from dcli_server.node import CoordNode, NodeConfig


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _node(tmp_path) -> CoordNode:
    node = CoordNode(NodeConfig(data_dir=tmp_path / "n1"))
    await node.start()
    return node


def test_reads_writes_and_compare_and_set(tmp_path):
    async def scenario():
        node = await _node(tmp_path)
        tree = LocalSession(node)
        try:
            assert await tree.get("/dcli/kv/ring") is None
            assert await tree.create("/dcli/kv/ring", b"one", parents=True) == "/dcli/kv/ring"
            with pytest.raises(NodeExistsError):
                await tree.create("/dcli/kv/ring", b"again")
            data, stat = await tree.get("/dcli/kv/ring")
            assert (data, stat.version) == (b"one", 0)
            assert (await tree.set("/dcli/kv/ring", b"two", version=0)).version == 1
            with pytest.raises(BadVersionError):           # a writer that read version 0 lost the race
                await tree.set("/dcli/kv/ring", b"three", version=0)
            assert (await tree.get("/dcli/kv/ring"))[0] == b"two"
        finally:
            await tree.close()
            await node.stop()
    run(scenario())


def test_watches_fire_for_creation_and_change(tmp_path):
    async def scenario():
        node = await _node(tmp_path)
        events: asyncio.Queue = asyncio.Queue()
        tree = LocalSession(node, on_event=events.put_nowait)
        writer = LocalSession(node)
        try:
            assert await tree.get("/ring", watch=True) is None          # an exists watch
            await writer.create("/ring", b"1")
            created = await asyncio.wait_for(events.get(), 10)
            assert created.path == "/ring"
            assert (await tree.get("/ring", watch=True))[0] == b"1"      # a data watch
            await writer.set("/ring", b"2")
            changed = await asyncio.wait_for(events.get(), 10)
            assert (changed.path, changed.type) != (created.path, created.type)
        finally:
            await writer.close()
            await tree.close()
            await node.stop()
    run(scenario())


def test_a_session_that_ended_is_replaced_and_the_owner_hears_of_it(tmp_path):
    async def scenario():
        node = await _node(tmp_path)
        events: asyncio.Queue = asyncio.Queue()
        tree = LocalSession(node, on_event=events.put_nowait)
        try:
            await tree.create("/x", b"")
            first = tree._conn.session_id
            # the session ends under its owner (closed here; an expiry ends it the same way)
            response = await tree.call(pb.Request(close_session=pb.CloseSessionRequest()))
            assert not response.HasField("error")
            assert await asyncio.wait_for(events.get(), 10) is None     # watches are gone: re-read
            assert (await tree.get("/x"))[0] == b""                     # a new session answers
            assert tree._conn.session_id != first
        finally:
            await tree.close()
            await node.stop()
    run(scenario())
