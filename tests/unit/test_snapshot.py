"""Snapshots against real files: round trip, fallback past damage, pruning, crash leftovers."""

from __future__ import annotations

import logging

from dcli_server.storage.snapshot import SnapshotStore


def names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_save_and_latest(tmp_path):
    store = SnapshotStore(tmp_path / "snaps")
    assert store.latest() is None
    assert store.oldest_zxid() is None
    path = store.save(7, b"state at seven")
    assert path == tmp_path / "snaps" / f"snapshot.{7:020d}"
    store.save(12, b"state at twelve")
    assert store.latest() == (12, b"state at twelve")
    assert store.oldest_zxid() == 7
    assert names(tmp_path / "snaps") == [f"snapshot.{7:020d}", f"snapshot.{12:020d}"]
    # A fresh store (a restart) sees the same.
    assert SnapshotStore(tmp_path / "snaps").latest() == (12, b"state at twelve")


def test_empty_payload(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(1, b"")
    assert store.latest() == (1, b"")


def test_damaged_newest_falls_back_to_an_older_one(tmp_path, caplog):
    store = SnapshotStore(tmp_path)
    store.save(1, b"one" * 100)
    newest = store.save(2, b"two" * 100)
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="dcli_server.storage.snapshot"):
        assert store.latest() == (1, b"one" * 100)
    assert any(newest.name in r.getMessage() and "CRC" in r.getMessage() for r in caplog.records)


def test_truncated_newest_falls_back(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(1, b"one")
    newest = store.save(2, b"two" * 100)
    newest.write_bytes(newest.read_bytes()[:50])
    assert store.latest() == (1, b"one")


def test_snapshot_renamed_to_another_zxid_is_rejected(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(1, b"one")
    store.save(2, b"two").rename(tmp_path / f"snapshot.{9:020d}")
    # The header says zxid 2, the name says 9: trust neither, fall back.
    assert store.latest() == (1, b"one")


def test_all_damaged_gives_none(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(1, b"one").write_bytes(b"garbage")
    assert store.latest() is None


def test_keep_prunes_older_snapshots(tmp_path):
    store = SnapshotStore(tmp_path, keep=3)
    for zxid in (10, 20, 30, 40, 50):
        store.save(zxid, f"state {zxid}".encode())
    assert names(tmp_path) == [f"snapshot.{z:020d}" for z in (30, 40, 50)]
    assert store.oldest_zxid() == 30
    assert store.latest() == (50, b"state 50")


def test_tmp_leftovers_are_ignored_and_removed(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(5, b"five")
    # A crash in the middle of saving a newer snapshot leaves a partial .tmp behind.
    leftover = tmp_path / f"snapshot.{9:020d}.tmp"
    leftover.write_bytes(b"DSN1 half written")
    assert store.oldest_zxid() == 5
    assert store.latest() == (5, b"five")
    assert not leftover.exists()
    assert names(tmp_path) == [f"snapshot.{5:020d}"]
