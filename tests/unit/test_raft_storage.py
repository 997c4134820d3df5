"""RaftStorage: what step 1 of the Ready contract writes is what a restart reads back."""
from __future__ import annotations

import pytest

from dcli_server.consensus import ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Snapshot
from dcli_server.consensus.storage import RaftStorage
from dcli_server.storage import CorruptLogError


def entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(term, i, EntryType.NORMAL, b"e%d" % i) for i in range(first, last + 1)]


def test_entries_hard_state_and_commit_come_back(tmp_path):
    s = RaftStorage(tmp_path)
    s.load()
    s.write(None, entries(1, 10, 1), HardState(term=1, vote=2, commit=7))
    s.sync()
    s.close()
    p = RaftStorage(tmp_path).load()
    assert p.hard_state == HardState(1, 2, 7)
    assert [e.index for e in p.entries] == list(range(1, 11))
    assert p.entries[4] == Entry(1, 5, EntryType.NORMAL, b"e5")


def test_an_overwritten_tail_is_replaced(tmp_path):
    s = RaftStorage(tmp_path)
    s.load()
    s.write(None, entries(1, 10, 1), HardState(1, 1, 3))
    s.write(None, entries(6, 8, 2), HardState(2, 3, 3))     # a new leader's entries from 6 on
    s.close()
    p = RaftStorage(tmp_path).load()
    assert [(e.index, e.term) for e in p.entries] == [(i, 1) for i in range(1, 6)] + [(6, 2), (7, 2), (8, 2)]
    assert (p.hard_state.term, p.hard_state.vote) == (2, 3)


def test_a_commit_past_the_log_is_clamped_and_a_torn_commit_reads_as_zero(tmp_path):
    s = RaftStorage(tmp_path)
    s.load()
    s.write(None, entries(1, 4, 1), HardState(1, 0, 4))
    s.close()
    (tmp_path / "commit").write_bytes(b"\x00\x00")
    assert RaftStorage(tmp_path).load().hard_state.commit == 0


def test_a_snapshot_from_the_leader_replaces_the_log(tmp_path):
    s = RaftStorage(tmp_path)
    s.load()
    s.write(None, entries(1, 5, 1), HardState(1, 0, 5))
    snap = Snapshot(index=40, term=3, conf=ConfState(frozenset({1, 2, 3})), data=b"tree")
    s.write(snap, entries(41, 42, 3), HardState(3, 0, 41))
    s.close()
    p = RaftStorage(tmp_path).load()
    assert p.snapshot == snap
    assert [e.index for e in p.entries] == [41, 42]


def test_own_snapshot_compacts_the_log_but_keeps_what_follows(tmp_path):
    s = RaftStorage(tmp_path)
    s.load()
    s.write(None, entries(1, 30, 1), HardState(1, 0, 30))
    s.save_snapshot(Snapshot(index=20, term=1, conf=ConfState(frozenset({1})), data=b"at 20"))
    s.close()
    p = RaftStorage(tmp_path).load()
    assert p.snapshot.index == 20 and p.snapshot.data == b"at 20"
    assert [e.index for e in p.entries] == list(range(21, 31))


def test_a_damaged_hard_state_refuses_to_start(tmp_path):
    s = RaftStorage(tmp_path)
    s.load()
    s.write(None, entries(1, 2, 1), HardState(1, 1, 0))
    s.close()
    raw = bytearray((tmp_path / "hardstate").read_bytes())
    raw[3] ^= 0xFF
    (tmp_path / "hardstate").write_bytes(bytes(raw))
    with pytest.raises(CorruptLogError):
        RaftStorage(tmp_path).load()


@pytest.mark.parametrize("context", [b"", b"127.0.0.1:7184"])
def test_a_conf_change_carries_its_context(context):
    change = ConfChange(ConfChangeType.ADD_NODE, 4, context)
    assert ConfChange.decode(change.encode()) == change
    with pytest.raises(ValueError):
        ConfChange.decode(change.encode() + b"x")
