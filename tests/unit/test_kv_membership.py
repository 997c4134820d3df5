"""The ring document: quorum rules, epochs, membership changes, persistence, layouts."""
from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings, strategies as st

from dcli.wire.errors import InvalidQuorumError, KeyspaceExistsError, KeyspaceNotFoundError, MembershipError
from dcli_server.kv import membership, rebalance
from dcli_server.kv.membership import EVENTUAL, KeyspaceConfig, RingDocument, bootstrap, layout_moves
from dcli_server.kv.ring import RING_SIZE, KeyRange, TokenRange
from dcli_server.kv.versions import VectorClock
from dcli_server.kv.store import KVStore


def doc_of(n: int, **kw) -> RingDocument:
    return bootstrap({i: f"127.0.0.1:{7180 + i}" for i in range(1, n + 1)}, vnodes=32, **kw)


@given(n=st.integers(1, 7), r=st.integers(-1, 8), w=st.integers(-1, 8))
@settings(max_examples=200, deadline=None)
def test_strict_quorums_are_accepted_exactly_when_r_plus_w_exceeds_n(n, r, w):
    config = KeyspaceConfig("default", n=n)
    legal = 1 <= r <= n and 1 <= w <= n and r + w > n
    if legal:
        assert config.quorum(n, r, w) == (n, r, w)
    else:
        with pytest.raises(InvalidQuorumError):
            config.quorum(n, r, w)


def test_eventual_keyspaces_allow_weak_quorums_and_default_to_one():
    config = KeyspaceConfig("carts", n=3, consistency=EVENTUAL)
    assert config.quorum(3) == (3, 1, 1)
    assert config.quorum(3, 1, 1) == (3, 1, 1)
    with pytest.raises(InvalidQuorumError):
        config.quorum(3, 4, 1)


def test_default_keyspace_uses_majorities_of_min_3_and_the_node_count():
    assert doc_of(1).keyspace("default").quorum(1) == (1, 1, 1)
    assert doc_of(3).keyspace("default").quorum(3) == (3, 2, 2)
    assert doc_of(5).keyspace("default").quorum(5) == (3, 2, 2)
    message = str(pytest.raises(InvalidQuorumError, KeyspaceConfig("default").quorum, 3, 1, None).value)
    assert "R=1 + W=2 = 3 is not more than N=3" in message


def test_unknown_keyspaces_and_duplicates_are_refused():
    doc = doc_of(3)
    with pytest.raises(KeyspaceNotFoundError):
        doc.keyspace("nope")
    doc2 = doc.with_keyspace(KeyspaceConfig("carts", n=2))
    assert doc2.epoch == 1 and doc2.keyspace("carts").n == 2
    with pytest.raises(KeyspaceExistsError):
        doc2.with_keyspace(KeyspaceConfig("carts"))
    with pytest.raises(InvalidQuorumError):
        doc.with_keyspace(KeyspaceConfig("big", n=4))


def test_a_change_keeps_the_old_nodes_until_it_commits():
    doc = doc_of(3)
    moving = doc.change(add={"4": ("127.0.0.1:7184", 1.0)})
    assert moving.moving and sorted(moving.previous) == ["1", "2", "3"]
    assert moving.read_layout("default").nodes == ["1", "2", "3"]
    assert moving.layout("default").nodes == ["1", "2", "3", "4"]
    with pytest.raises(MembershipError):
        moving.change(remove=["1"])
    done = moving.committed()
    assert done.epoch == moving.epoch + 1 and not done.moving
    for bad in ({"add": {"1": ("x:1", 1)}}, {"remove": ["7"]}, {"weights": {"7": 2}},
                {"weights": {"1": 0}}, {"remove": ["1", "2", "3"]}, {}):
        with pytest.raises(MembershipError):
            doc.change(**bad)


def test_adding_a_node_moves_only_ranges_it_gains():
    doc = doc_of(4)
    moving = doc.change(add={"5": ("127.0.0.1:7185", 1.0)})
    moves = moving.moves()["default"]
    assert moves and all(m.gained == {"5"} for m in moves)
    moved = sum(m.range.width for m in moves) / RING_SIZE
    assert 0.3 < moved < 0.9           # node 5 becomes one of 3 replicas of ~3/5 of the ring


def test_removing_a_node_moves_only_its_ranges():
    doc = doc_of(5)
    moves = doc.change(remove=["2"]).moves()["default"]
    assert moves and all(m.lost == {"2"} and len(m.gained) == 1 for m in moves)


def test_documents_round_trip_and_older_ring_json_files_load(tmp_path):
    doc = doc_of(3).with_keyspace(KeyspaceConfig("r", sharding="range", splits=(b"g", b"p")))
    assert RingDocument.from_json(doc.to_json()) == doc
    path = tmp_path / "kv" / "ring.json"
    assert membership.load(path) is None
    membership.save(path, doc)
    assert membership.load(path) == doc


def test_range_layouts_scan_only_the_owning_shards():
    doc = doc_of(3).with_keyspace(KeyspaceConfig("r", n=1, sharding="range", splits=(b"g", b"p")))
    layout = doc.layout("r")
    owners = {layout.preference_list(k)[0] for k in (b"a", b"h", b"z")}
    assert len(owners) == 3
    assert layout.nodes_for_scan(b"h", b"i") == layout.preference_list(b"h")
    spans = [s for s, _ in layout.replica_spans()]
    assert spans[0] == KeyRange(b"", b"g") and spans[-1] == KeyRange(b"p", None)


def test_store_write_without_context_supersedes_what_is_held_and_hints_persist(tmp_path):
    store = KVStore(tmp_path / "s.db")
    store.write("default", b"k", b"a", None, "1", 0)
    store.write("default", b"k", b"b", None, "1", 0)
    assert [v.value for v in store.get("default", b"k")] == [b"b"]
    store.write("default", b"k", b"c", VectorClock(), "1", 0)
    assert sorted(v.value for v in store.get("default", b"k")) == [b"b", b"c"]
    store.add_hints("2", "default", [(b"k", store.get("default", b"k"))])
    store.close()
    store = KVStore(tmp_path / "s.db")
    [(hint_id, keyspace, key, versions)] = store.hints_for("2")
    assert (keyspace, key, len(versions)) == ("default", b"k", 2)
    assert store.hint_targets() == {"2": 1}
    store.drop_hints([hint_id])
    assert store.hints_for("2") == []
    minted = store.mint("1", b"x", None)
    assert minted.counter > max(v.counter for v in versions)


def test_store_streams_a_token_span_and_applies_in_one_transaction(tmp_path):
    source, target = KVStore(":memory:"), KVStore(":memory:")
    for i in range(700):
        source.write("default", b"k%d" % i, b"v", None, "1", 0)
    entries = list(source.entries("default"))
    assert len(entries) == 700
    assert target.apply_many("default", entries, 0) == 700
    assert target.apply_many("default", entries, 0) == 0
    assert dict(target.hashes("default")) == dict(source.hashes("default"))


@pytest.mark.parametrize("span", [TokenRange(0, 0), TokenRange(1 << 62, 3 << 62), TokenRange(3 << 62, 1 << 62),
                                  KeyRange(b"k1", b"k5"), KeyRange(b"k3", None)])
def test_a_moved_span_comes_in_bounded_pages_each_key_once(span):
    """The source side of a move (rebalance.read_page): pages resume past the last key, also
    across the top of the ring, and together hold exactly the span's entries."""
    store = KVStore(":memory:")
    for i in range(600):
        store.write("default", b"k%d" % i, b"v", None, "1", 0)
    spans = [span, KeyRange(b"zz", None)]
    whole = [k for s in spans for k, _ in (store.entries_in_keys("default", s) if isinstance(s, KeyRange)
                                           else store.entries("default", s))]
    got, at, pages = [], (0, None), 0
    while pages < 1000:
        page = rebalance.read_page(store, "default", spans, *at, max_entries=37)
        pages += 1
        assert len(page.entries) <= 37
        got += [k for k, _ in page.entries]
        if page.done:
            break
        at = (page.span, page.after)
    assert got == whole and len(set(got)) == len(got)
    assert pages == len(whole) // 37 + 1
    assert rebalance.read_page(store, "default", spans, 0, b"not-in-it" if isinstance(span, TokenRange) else None,
                               max_entries=10**6).entries is not None


def test_a_page_stops_at_its_byte_budget_with_at_least_one_key():
    store = KVStore(":memory:")
    for i in range(10):
        store.write("default", b"k%d" % i, b"x" * 1000, None, "1", 0)
    page = rebalance.read_page(store, "default", [TokenRange(0, 0)], max_bytes=2500)
    assert len(page.entries) == 3 and not page.done
    assert len(rebalance.read_page(store, "default", [TokenRange(0, 0)], max_bytes=1).entries) == 1


def test_peer_addresses_persist_and_an_older_document_without_them_loads(tmp_path):
    doc = bootstrap({1: "127.0.0.1:7181", 2: "127.0.0.1:7182"}, peer_addresses={1: "127.0.0.1:9001"})
    again = RingDocument.from_json(doc.to_json())
    assert again == doc and again.entry("1").peer == "127.0.0.1:9001" and again.entry("2").peer == ""
    old = ('{"epoch":3,"vnodes":8,"previous":null,"keyspaces":{},'
           '"nodes":{"1":{"address":"127.0.0.1:7181","weight":1.0},"2":{"address":"127.0.0.1:7182","weight":2.0}}}')
    (tmp_path / "ring.json").write_text(old)
    loaded = membership.load(tmp_path / "ring.json")
    assert loaded.epoch == 3 and loaded.entry("2") == membership.NodeEntry("127.0.0.1:7182", 2.0, "")
    assert json.loads(loaded.to_json()) == json.loads(old)     # nothing added: the same digest everywhere
    bigger = loaded.change(add={"3": ("127.0.0.1:7183", 1.0, "127.0.0.1:9003")})
    assert bigger.entry("3").peer == "127.0.0.1:9003"
    with pytest.raises(MembershipError, match="127.0.0.1:9003 is already on the ring"):
        bigger.committed().change(add={"4": ("127.0.0.1:7184", 1.0, "127.0.0.1:9003")})


class _Members:
    """A Transport stand-in that only records what the node tells it about members."""

    def __init__(self):
        self.members = {}

    def set_members(self, peers):
        self.members = dict(peers)


def test_the_node_tells_its_transport_each_members_peer_address(tmp_path):
    """From the document, else --peers, else the client port + 1000; itself left out."""
    from dcli_server.kv.node import KVConfig, KVNode

    transport = _Members()
    config = KVConfig(node_id=1, peers={1: "127.0.0.1:7181", 2: "127.0.0.1:7182", 3: "127.0.0.1:7183"},
                      peer_addresses={1: "127.0.0.1:9001", 2: "127.0.0.1:9002"})
    node = KVNode(tmp_path, config, transport)
    saved = bootstrap(config.peers, peer_addresses={3: "127.0.0.1:9903"})

    async def started():
        await node.start("127.0.0.1:7181")
        await node.stop()
    asyncio.run(started())
    assert transport.members == {"2": "127.0.0.1:9002", "3": "127.0.0.1:8183"}
    node.adopt(RingDocument(5, saved.vnodes, dict(saved.nodes)))
    assert transport.members == {"2": "127.0.0.1:9002", "3": "127.0.0.1:9903"}
    node.adopt(node.document.change(add={"4": ("127.0.0.1:7184", 1.0)}))
    assert transport.members["4"] == "127.0.0.1:8184"
    node.adopt(node.document.committed().change(remove=["2"]))
    assert "2" in transport.members             # still in the old ring while ranges move
    node.adopt(node.document.committed())
    assert "2" not in transport.members
