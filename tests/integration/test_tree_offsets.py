"""TreeOffsetStore on a real server's tree: commits visible at once and written by flush, a flush
that fails keeping its changes, loads per coordination epoch, deletes. Groups on a cluster use
it end to end in test_broker_replication (a group outliving its coordinator)."""
from __future__ import annotations

import json
import uuid

import pytest

from dcli.client import CoordClient
from dcli.wire import errors
from dcli_server.broker.offsets import OffsetCommit
from dcli_server.broker.tree_offsets import TreeOffsetStore, group_path, offset_path


@pytest.fixture
def zk(server):
    with CoordClient(server.address) as client:
        yield client


def group() -> str:
    return f"g/{uuid.uuid4().hex[:8]}"          # a '/' in a group id too


def test_group_ids_become_one_znode_name():
    assert group_path("a/b c") == "/consumers/a%2Fb%20c"
    assert offset_path("g", "chat", 2) == "/consumers/g/offsets/chat/2"


def test_commits_are_visible_at_once_and_in_the_tree_after_flush(zk):
    g = group()
    store = TreeOffsetStore(lambda: zk)
    store.commit(g, [OffsetCommit("chat", 0, 42, "m")], now_ms=1000)
    assert store.fetch(g)[("chat", 0)].offset == 42
    assert zk.exists(offset_path(g, "chat", 0)) is None
    store.flush()
    assert json.loads(zk.get(offset_path(g, "chat", 0))[0]) == {
        "offset": 42, "metadata": "m", "commit_timestamp": 1000, "leader_epoch": -1}


def test_a_failed_flush_keeps_the_changes_for_the_next_one(server, zk):
    g = group()
    gone = CoordClient(server.address).start()
    gone.close()
    client = [gone]
    store = TreeOffsetStore(lambda: client[0])
    store.commit(g, [OffsetCommit("chat", 0, 5)], now_ms=1)
    with pytest.raises(errors.DcliError):
        store.flush()
    client[0] = zk
    store.flush()
    assert json.loads(zk.get(offset_path(g, "chat", 0))[0])["offset"] == 5


def test_a_load_reads_what_another_coordinator_wrote_once_per_epoch(zk):
    g = group()
    other = TreeOffsetStore(lambda: zk)
    other.commit(g, [OffsetCommit("chat", 1, 7)], now_ms=1)
    other.flush()
    store = TreeOffsetStore(lambda: zk)
    assert not store.loaded(g, 3)
    store.load(g, 3)
    assert store.loaded(g, 3) and not store.loaded(g, 4)
    assert store.fetch(g) == other.fetch(g)
    other.commit(g, [OffsetCommit("chat", 1, 9)], now_ms=2)       # coordinated elsewhere meanwhile
    other.flush()
    store.load(g, 4)
    assert store.fetch(g)[("chat", 1)].offset == 9


def test_deletes_reach_the_tree_and_forget_drops_the_group(zk):
    g = group()
    store = TreeOffsetStore(lambda: zk)
    store.commit(g, [OffsetCommit("chat", 0, 1), OffsetCommit("chat", 1, 2)], now_ms=1)
    store.flush()
    assert store.delete_group(g, now_ms=2) == 2
    store.flush()
    assert zk.get_children(f"{group_path(g)}/offsets/chat") == []
    store.load(g, 1)
    assert store.loaded(g, 1) and store.fetch(g) == {}
    store.forget(g)
    assert not store.loaded(g, 1)
