"""One node's sqlite3 storage: versions, tombstones, scans, Merkle input, durability."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import pytest

from dcli.wire.errors import ExitCode
from dcli.wire.kv_keys import (MAX_KEY_BYTES, MAX_VALUE_BYTES, InvalidKeyError,
                               InvalidKeyspaceError, ValueTooLargeError)
from dcli_server.kv.merkle import MerkleTree, diff, differing_keys
from dcli_server.kv.ring import FULL_RING, KeyRange, TokenRange, token
from dcli_server.kv.store import KVStore, StoreClosedError
from dcli_server.kv.versions import VectorClock, Version, context_of, version_hash

KS = "default"
GRACE = 1000


@pytest.fixture
def store(tmp_path):
    with KVStore(tmp_path / "kv.db", tombstone_grace_ms=GRACE) as s:
        yield s


def values(store, key, keyspace=KS):
    return [v.value for v in store.get(keyspace, key)]


# -- put, get, delete ---------------------------------------------------------------------------

def test_put_then_overwrite_with_the_context(store):
    v1, _ = store.put(KS, b"k", b"one", VectorClock(), "n1", now_ms=0)
    v2, siblings = store.put(KS, b"k", b"two", v1.clock, "n1", now_ms=1)
    assert siblings == (v2,) and v2.counter == 2
    assert values(store, b"k") == [b"two"]
    assert store.get(KS, b"missing") == ()


def test_writes_that_did_not_see_each_other_become_siblings_until_resolved(store):
    a, _ = store.put(KS, b"k", b"a", VectorClock(), "n1", now_ms=0)
    b, siblings = store.put(KS, b"k", b"b", VectorClock(), "n1", now_ms=0)
    assert siblings == (a, b)
    merged, after = store.put(KS, b"k", b"a+b", context_of(siblings), "n2", now_ms=0)
    assert after == (merged,) and values(store, b"k") == [b"a+b"]


def test_delete_leaves_a_tombstone_that_scans_skip(store):
    v, _ = store.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
    tomb, _ = store.delete(KS, b"k", v.clock, "n1", now_ms=5)
    assert store.get(KS, b"k") == (tomb,) and tomb.is_tombstone
    assert store.scan(KS) == []
    assert store.scan(KS, include_tombstones=True) == [(b"k", (tomb,))]
    assert store.count(KS) == 0 and store.count(KS, include_tombstones=True) == 1


def test_a_delete_concurrent_with_a_put_keeps_the_value_visible(store):
    store.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
    store.delete(KS, b"k", VectorClock(), "n2", now_ms=0)      # had not seen the put
    assert sorted(map(repr, values(store, b"k"))) == ["None", "b'v'"]
    assert [k for k, _ in store.scan(KS)] == [b"k"]
    assert store.collect_tombstones(now_ms=10 * GRACE) == 0    # not all tombstones: not dead


# -- tombstone collection -----------------------------------------------------------------------

def test_tombstones_go_after_the_grace_period_only(store):
    v, _ = store.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
    store.delete(KS, b"k", v.clock, "n1", now_ms=100)
    assert store.collect_tombstones(now_ms=100 + GRACE - 1) == 0
    assert store.get(KS, b"k") != ()
    assert store.collect_tombstones(now_ms=100 + GRACE) == 1
    assert store.get(KS, b"k") == ()


def test_a_newer_delete_restarts_the_grace_period(store):
    v, _ = store.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
    t1, _ = store.delete(KS, b"k", v.clock, "n1", now_ms=0)
    store.delete(KS, b"k", t1.clock, "n2", now_ms=500)
    assert store.collect_tombstones(now_ms=GRACE) == 0
    assert store.collect_tombstones(now_ms=500 + GRACE) == 1


def test_a_put_after_a_delete_revives_the_key_for_good(store):
    v, _ = store.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
    t, _ = store.delete(KS, b"k", v.clock, "n1", now_ms=0)
    store.put(KS, b"k", b"again", t.clock, "n1", now_ms=1)
    assert store.collect_tombstones(now_ms=10 * GRACE) == 0
    assert values(store, b"k") == [b"again"]


def test_counters_never_repeat_after_collection(store):
    v, _ = store.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
    t, _ = store.delete(KS, b"k", v.clock, "n1", now_ms=0)
    store.collect_tombstones(now_ms=GRACE)
    fresh, _ = store.put(KS, b"k", b"new", VectorClock(), "n1", now_ms=GRACE)
    assert fresh.counter > t.counter
    # so a replica still holding the old version does not mistake the new one for it
    assert store.apply(KS, b"k", [v], now_ms=GRACE) == (v, fresh)


def test_collection_can_be_limited_to_a_keyspace(store):
    for ks in ("a", "b"):
        v, _ = store.put(ks, b"k", b"v", VectorClock(), "n1", now_ms=0)
        store.delete(ks, b"k", v.clock, "n1", now_ms=0)
    assert store.collect_tombstones(now_ms=GRACE, keyspace="a") == 1
    assert store.get("a", b"k") == () and store.get("b", b"k") != ()


# -- replication input --------------------------------------------------------------------------

def test_apply_reconciles_and_never_goes_back(store):
    old = Version("n2", 1, VectorClock(), b"old")
    new = Version("n2", 2, old.clock, b"new")
    assert store.apply(KS, b"k", [new], now_ms=0) == (new,)
    assert store.apply(KS, b"k", [old], now_ms=0) == (new,)     # stale repair changes nothing
    assert store.apply(KS, b"k", [new], now_ms=0) == (new,)     # idempotent
    concurrent = Version("n3", 1, old.clock, b"other")
    assert store.apply(KS, b"k", [concurrent], now_ms=0) == (new, concurrent)


def test_apply_checks_value_sizes(store):
    with pytest.raises(ValueTooLargeError):
        store.apply(KS, b"k", [Version("n", 1, VectorClock(), bytes(MAX_VALUE_BYTES + 1))], 0)
    assert store.get(KS, b"k") == ()


# -- scans --------------------------------------------------------------------------------------

@pytest.fixture
def filled(store):
    for key in [b"a", b"user/1", b"user/2", b"user/10", b"user0", b"\xff", b"\xff\xff\x01", b"users"]:
        store.put(KS, key, key.upper(), VectorClock(), "n1", now_ms=0)
    store.put("other", b"user/9", b"elsewhere", VectorClock(), "n1", now_ms=0)
    return store


def keys_of(entries):
    return [k for k, _ in entries]


def test_scan_by_prefix_in_byte_order(filled):
    assert keys_of(filled.scan(KS, prefix=b"user/")) == [b"user/1", b"user/10", b"user/2"]
    assert keys_of(filled.scan(KS, prefix=b"\xff")) == [b"\xff", b"\xff\xff\x01"]
    assert keys_of(filled.scan(KS, prefix=b"user")) == [b"user/1", b"user/10", b"user/2",
                                                         b"user0", b"users"]


def test_scan_by_range_limit_and_paging(filled):
    assert keys_of(filled.scan(KS, start=b"user/10", end=b"user0")) == [b"user/10", b"user/2"]
    first = filled.scan(KS, limit=3)
    rest = filled.scan(KS, start=first[-1][0] + b"\0")
    assert keys_of(first + rest) == sorted(keys_of(first + rest))
    assert len(first + rest) == 8
    assert filled.scan(KS, prefix=b"user/1", limit=1)[0][1][0].value == b"USER/1"


def test_keyspaces_are_apart(filled):
    assert filled.keyspaces() == ["default", "other"]
    assert keys_of(filled.scan("other")) == [b"user/9"]
    assert filled.get(KS, b"user/9") == ()
    assert filled.drop_keyspace("other") == 1
    assert filled.keyspaces() == ["default"]


def test_scan_refuses_nonsense(store):
    with pytest.raises(InvalidKeyError):
        store.scan(KS, prefix=b"a", start=b"b")
    with pytest.raises(InvalidKeyError):
        store.scan(KS, limit=0)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("key, words", [(b"", "must not be empty"),
                                        (b"x" * (MAX_KEY_BYTES + 1), "more than the limit of 1024"),
                                        ("text", "must be bytes, not str")])
def test_bad_keys_are_refused_with_a_clear_message(store, key, words):
    with pytest.raises(InvalidKeyError, match=words) as info:
        store.put(KS, key, b"v", VectorClock(), "n1", now_ms=0)
    assert info.value.exit_code == ExitCode.USAGE
    with pytest.raises(InvalidKeyError):
        store.get(KS, key)


def test_value_size_limit(store):
    store.put(KS, b"x" * MAX_KEY_BYTES, bytes(MAX_VALUE_BYTES), VectorClock(), "n1", now_ms=0)
    assert len(values(store, b"x" * MAX_KEY_BYTES)[0]) == MAX_VALUE_BYTES
    with pytest.raises(ValueTooLargeError, match="1048577 bytes, more than the limit of 1048576"):
        store.put(KS, b"k", bytes(MAX_VALUE_BYTES + 1), VectorClock(), "n1", now_ms=0)
    assert store.get(KS, b"k") == ()
    store.put(KS, b"empty", b"", VectorClock(), "n1", now_ms=0)
    assert values(store, b"empty") == [b""]


@pytest.mark.parametrize("name", ["", ".", "..", "has space", "x" * 129, "ümlaut"])
def test_bad_keyspaces_are_refused(store, name):
    with pytest.raises(InvalidKeyspaceError, match="Invalid keyspace"):
        store.put(name, b"k", b"v", VectorClock(), "n1", now_ms=0)


def test_a_closed_store_says_so(tmp_path):
    s = KVStore(tmp_path / "kv.db")
    s.close()
    with pytest.raises(StoreClosedError):
        s.get(KS, b"k")


# -- Merkle input -------------------------------------------------------------------------------

def test_hashes_cover_the_span_with_the_stored_version_hashes(store):
    for i in range(1200):       # more than one page
        store.put(KS, b"key%d" % i, b"v", VectorClock(), "n1", now_ms=0)
    v, _ = store.put(KS, b"key7", b"w", VectorClock.of({"n1": 8}), "n1", now_ms=0)
    store.delete(KS, b"key7", v.clock, "n1", now_ms=0)        # tombstones are included
    everything = dict(store.hashes(KS))
    assert len(everything) == 1200
    assert everything[b"key7"] == version_hash(store.get(KS, b"key7"))
    assert [token(k) for k in everything] == sorted(token(k) for k in everything)
    ts = sorted(token(k) for k in everything)
    for span in (TokenRange(ts[10], ts[900]), TokenRange(ts[1100], ts[50]), FULL_RING,
                 TokenRange(ts[5], ts[5])):
        got = dict(store.hashes(KS, span))
        assert got == {k: h for k, h in everything.items() if span.contains(token(k))}
    in_keys = dict(store.hashes_in_keys(KS, KeyRange(b"key1", b"key2")))
    assert set(in_keys) == {k for k in everything if b"key1" <= k < b"key2"}


def test_anti_entropy_between_two_stores_converges(tmp_path):
    with KVStore(tmp_path / "a.db") as a, KVStore(tmp_path / "b.db") as b:
        for i in range(300):
            v, siblings = a.put(KS, b"k%d" % i, b"v", VectorClock(), "n1", now_ms=0)
            b.apply(KS, b"k%d" % i, siblings, now_ms=0)
        a.put(KS, b"k5", b"newer", VectorClock.of({"n1": 5}), "n1", now_ms=0)
        b.put(KS, b"k9", b"concurrent", VectorClock(), "n2", now_ms=0)
        b.put(KS, b"only-b", b"x", VectorClock(), "n2", now_ms=0)
        found = diff(MerkleTree.build(a.hashes(KS)), MerkleTree.build(b.hashes(KS)))
        mine = {k: h for r in found.ranges for k, h in a.hashes(KS, r)}
        theirs = {k: h for r in found.ranges for k, h in b.hashes(KS, r)}
        assert differing_keys(mine, theirs) == {b"k5", b"k9", b"only-b"}
        for key in differing_keys(mine, theirs):
            b.apply(KS, key, a.get(KS, key), now_ms=0)
            a.apply(KS, key, b.get(KS, key), now_ms=0)
        assert MerkleTree.build(a.hashes(KS)).root == MerkleTree.build(b.hashes(KS)).root
        assert len(a.get(KS, b"k9")) == 2


# -- durability and threads ---------------------------------------------------------------------

def test_settings_are_wal_and_full_sync(store):
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2        # FULL
    with pytest.raises(ValueError):
        KVStore(":memory:", synchronous="OFF")


def test_acknowledged_writes_survive_a_process_that_dies_without_closing(tmp_path):
    path = tmp_path / "kv.db"
    child = textwrap.dedent(f"""
        import os
        from dcli_server.kv.store import KVStore
        from dcli_server.kv.versions import VectorClock
        store = KVStore({str(path)!r})
        for i in range(50):
            store.put("default", b"k%d" % i, b"v%d" % i, VectorClock(), "n1", now_ms=0)
        print("acknowledged", flush=True)
        os._exit(0)     # no close, no checkpoint: the writes are only in the WAL
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "acknowledged"
    wal = tmp_path / "kv.db-wal"
    assert wal.exists() and wal.stat().st_size > 0
    with KVStore(path) as reopened:
        assert reopened.count(KS) == 50
        assert values(reopened, b"k49") == [b"v49"]


def test_reopen_keeps_data_and_schema(tmp_path):
    with KVStore(tmp_path / "kv.db") as s:
        s.put(KS, b"k", b"v", VectorClock(), "n1", now_ms=0)
        s.checkpoint()
    with KVStore(tmp_path / "kv.db") as s:
        assert values(s, b"k") == [b"v"]
        assert s.pragma("user_version") == 1


def test_concurrent_writers_from_threads_get_distinct_dots(store):
    def writer(i):
        for j in range(25):
            store.put(KS, b"hot", b"%d-%d" % (i, j), VectorClock(), "n1", now_ms=0)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    siblings = store.get(KS, b"hot")
    assert len(siblings) == 100         # every blind write kept, none overwrote another
    assert sorted(v.counter for v in siblings) == list(range(1, 101))


def test_usable_from_asyncio_through_a_thread(store):
    async def main():
        await asyncio.to_thread(store.put, KS, b"k", b"v", VectorClock(), "n1", 0)
        return await asyncio.to_thread(store.get, KS, b"k")

    assert [v.value for v in asyncio.run(main())] == [b"v"]
