"""write_atomically: the old file or the new one, whole, and durable; members.json read back."""
from __future__ import annotations

import os

import pytest

from dcli_server.cluster.replica import read_members
from dcli_server.storage.files import DamagedFileError, write_atomically


def test_replaces_the_file_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "doc.json"
    write_atomically(path, "first")
    write_atomically(path, [b"sec", b"ond"])
    assert path.read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_fsyncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    write_atomically(tmp_path / "x", b"data")
    assert synced == [str(tmp_path / "x.tmp"), str(tmp_path)]
    synced.clear()
    write_atomically(tmp_path / "x", b"data", durable=False)
    assert synced == []


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    path = tmp_path / "doc"
    write_atomically(path, b"old")

    def chunks():
        yield b"half"
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, chunks())
    assert path.read_bytes() == b"old"
    assert not (tmp_path / "doc.tmp").exists()


def test_members_file_round_trip_and_damage(tmp_path, caplog):
    path = tmp_path / "members.json"
    assert read_members(path) == {}
    write_atomically(path, '{"4": "127.0.0.1:7184/127.0.0.1:9184", "5": "127.0.0.1:7185"}')
    assert read_members(path) == {4: ("127.0.0.1:7184", "127.0.0.1:9184"),      # a client address alone:
                                  5: ("127.0.0.1:7185", "127.0.0.1:8185")}      # an older version's
    path.write_text("")                          # what an unsynced write left after a power loss
    assert read_members(path) == {} and "is empty" in caplog.text
    path.write_text("{not json")
    with pytest.raises(DamagedFileError, match="members.json is damaged"):
        read_members(path)
