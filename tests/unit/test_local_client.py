"""A CoordClient on a node's own tree, in process (LocalTree): a real node on its own loop and
thread, no client listener at all. The calls the broker and the recipes make, a stream the node
drops (the session resumes with its watches), and a session taken over by id alone."""
from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from dcli.client import ConnState, EventType
from dcli.wire import errors
from dcli_server.local_client import LocalTree
from dcli_server.node import CoordNode, NodeConfig

WAIT_S = 30


@pytest.fixture
def tree(tmp_path):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="node-loop", daemon=True)
    thread.start()
    node = CoordNode(NodeConfig(data_dir=tmp_path / "n1"))
    asyncio.run_coroutine_threadsafe(node.start(), loop).result(WAIT_S)
    yield LocalTree(node, loop, "127.0.0.1:7181")
    asyncio.run_coroutine_threadsafe(node.stop(), loop).result(WAIT_S)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT_S)
    loop.close()


def on_loop(tree: LocalTree, fn):
    async def call():
        return fn()
    return asyncio.run_coroutine_threadsafe(call(), tree.loop).result(WAIT_S)


def test_reads_writes_watches_and_transactions(tree):
    zk = tree.client(timeout=10.0).start()
    try:
        assert zk.connected and zk.session_id
        zk.ensure_path("/brokers/ids")
        me = zk.create("/controller/c_", b"1", ephemeral=True, sequence=True, makepath=True)
        assert me == "/controller/c_0000000000"
        assert zk.exists(me).ephemeralOwner == zk.session_id
        assert zk.get_children("/controller") == ["c_0000000000"]
        subtree: queue.Queue = queue.Queue()
        once: queue.Queue = queue.Queue()
        zk.add_watch("/brokers", subtree.put, mode="persistent_recursive")
        assert zk.exists("/brokers/ids/1", watch=once.put) is None
        zk.create("/brokers/ids/1", b"b1", ephemeral=True)
        for events in (subtree, once):
            event = events.get(timeout=WAIT_S)
            assert (event.type, event.path) == (EventType.NODE_CREATED, "/brokers/ids/1")
        data, stat = zk.get("/brokers/ids/1")
        assert (data, stat.version) == (b"b1", 0)
        assert zk.set("/brokers/ids/1", b"b1'", 0).version == 1
        with pytest.raises(errors.BadVersionError):             # a fenced writer's multi fails whole
            zk.transaction().check("/brokers/ids/1", 0).create("/brokers/x", b"").commit()
        assert zk.exists("/brokers/x") is None
        results = zk.transaction().check("/brokers/ids/1", 1).create("/brokers/x", b"").commit()
        assert results == [True, "/brokers/x"]
        zk.delete("/brokers/x")
        assert zk.sync("/") == "/"
    finally:
        zk.close()
    with tree.client(timeout=10.0) as other:                    # the close took the ephemerals
        assert other.get_children("/controller") == []


def test_a_dropped_stream_resumes_the_same_session_with_its_watches(tree):
    zk = tree.client(timeout=10.0).start()
    states: queue.Queue = queue.Queue()
    zk.add_listener(states.put)
    try:
        zk.create("/mine", b"", ephemeral=True)
        zk.create("/watched", b"0")
        fired: queue.Queue = queue.Queue()
        zk.get("/watched", watch=fired.put)
        sid = zk.session_id
        node = tree.node
        on_loop(tree, lambda: node.disconnect(node._conns[sid]))     # as when the node stops leading
        assert states.get(timeout=WAIT_S) is ConnState.SUSPENDED
        assert states.get(timeout=WAIT_S) is ConnState.CONNECTED
        assert zk.session_id == sid and zk.exists("/mine") is not None
        with tree.client(timeout=10.0) as writer:
            writer.set("/watched", b"1")
        assert fired.get(timeout=WAIT_S).type is EventType.NODE_DATA_CHANGED
    finally:
        zk.close()


def test_a_session_is_taken_over_by_its_id_alone(tree):
    """What a broker restarted after a crash does with the id it noted: the password comes from
    the node's session table; closing the session removes its ephemerals at once, and the old
    owner hears that its session is lost."""
    old = tree.client(timeout=10.0).start()
    states: queue.Queue = queue.Queue()
    old.add_listener(states.put)
    old.create("/brokers/ids/1", b"", ephemeral=True, makepath=True)
    sid = old.session_id
    password = tree.password(sid)
    assert password == old.session_password
    assert tree.password(sid + 12345) is None
    tree.client(timeout=10.0, dial_timeout=2.0, session=(sid, password)).start().close()
    try:
        with tree.client(timeout=10.0) as zk:
            assert zk.exists("/brokers/ids/1") is None
        while (state := states.get(timeout=WAIT_S)) is not ConnState.LOST:
            assert state in (ConnState.SUSPENDED, ConnState.CONNECTED)
        with pytest.raises(errors.SessionExpiredError):
            old.exists("/")
        assert tree.password(sid) is None
    finally:
        old.close()
