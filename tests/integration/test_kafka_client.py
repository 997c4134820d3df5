"""The Producer, Consumer (assigned partitions) and Admin clients against a real server."""
from __future__ import annotations

import signal
import uuid

import pytest

from dcli.client import Admin, Consumer, Producer
from dcli.wire import errors
from dcli.wire.murmur2 import partition_for_key
from tests.conftest import ServerProcess, read_records


def topic() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


def read_all(server, name: str, partitions: int):
    return read_records(server.address, name, partitions)


@pytest.mark.parametrize("acks", ["all", 1])
def test_produce_and_read_back_in_order(server, acks):
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=3)
    with Producer(server.address, acks=acks, linger_ms=2) as p:
        futures = [p.send(name, b"v%d" % i, key=b"k%d" % (i % 7)) for i in range(300)]
        p.flush()
        metas = [f.result(timeout=30) for f in futures]
    for i, m in enumerate(metas):
        assert m.partition == partition_for_key(b"k%d" % (i % 7), 3)
    records = read_all(server, name, 3)
    assert len(records) == 300
    for part in range(3):
        mine = [r for r in records if r.partition == part]
        assert [r.offset for r in mine] == list(range(len(mine)))               # contiguous
        assert [r.value for r in mine] == [b"v%d" % i for i, m in enumerate(metas) if m.partition == part]
    assert {(m.partition, m.offset) for m in metas} == {(r.partition, r.offset) for r in records}


def test_batches_of_one_partition_in_one_request_each_get_their_offsets(server):
    name = topic()
    with Producer(server.address, acks=1, linger_ms=60000, batch_size=512) as p:
        futures = [p.send(name, b"%099d" % i) for i in range(40)]     # ~10 batches, sent at flush
        p.flush()
        assert [f.result(timeout=30).offset for f in futures] == list(range(40))
    assert [r.value for r in read_all(server, name, 1)] == [b"%099d" % i for i in range(40)]


def test_headers_given_as_none_or_a_list_start_batches_like_any_record(server):
    name = topic()
    with Producer(server.address, acks=1, batch_size=256) as p:
        # each record opens a batch of its own here, by way of the sizing that reads headers
        futures = [p.send(name, b"%0150d" % i, headers=None if i % 2 else [("h", b"%d" % i)])
                   for i in range(6)]
        p.flush()
        assert [f.result(timeout=30).offset for f in futures] == list(range(6))
    records = read_all(server, name, 1)
    assert [list(r.headers) for r in records] == [[] if i % 2 else [("h", b"%d" % i)] for i in range(6)]


def test_unkeyed_records_go_round_robin_and_sticky_keeps_a_partition(server):
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=3)
    with Producer(server.address, linger_ms=0) as p:
        parts = [p.send(name, b"x").result(timeout=30).partition for _ in range(6)]
    assert parts == [0, 1, 2, 0, 1, 2]
    with Producer(server.address, partitioner="sticky", linger_ms=1000, batch_size=1 << 20) as p:
        futures = [p.send(name, b"y") for _ in range(20)]
        p.flush()
        assert len({f.result(timeout=30).partition for f in futures}) == 1


def test_acks_zero_gets_no_offsets_but_the_records_arrive(server):
    name = topic()
    with Producer(server.address, acks=0, retries=0) as p:
        futures = [p.send(name, b"z%d" % i) for i in range(10)]
        p.flush()
        assert {f.result(timeout=30).offset for f in futures} == {-1}
    assert [r.value for r in read_all(server, name, 1)] == [b"z%d" % i for i in range(10)]


def test_producer_and_admin_errors(server):
    with pytest.raises(errors.UsageError):
        Producer(server.address, acks="2")
    with pytest.raises(errors.UsageError):
        Producer(server.address, acks=1, enable_idempotence=True)
    with Producer(server.address) as p:
        with pytest.raises(errors.InvalidTopicError):
            p.send("bad topic!", b"x")
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=1)
        with pytest.raises(errors.BrokerError) as e:
            admin.create_topic(name)
        assert str(e.value) == f"Topic '{name}' already exists."
    with Producer(server.address) as p:
        with pytest.raises(errors.UsageError):
            p.send(name, b"x", partition=5)


def test_consumer_seek_and_out_of_range(server):
    name = topic()
    with Producer(server.address, linger_ms=0) as p:
        for i in range(5):
            p.send(name, b"%d" % i).result(timeout=30)
    with Consumer(server.address, auto_offset_reset="latest") as c:
        tp = (name, 0)
        c.assign([tp])
        assert c.position(tp) == 5
        c.seek(tp, 3)
        assert [r.value for r in c.poll(1000)] == [b"3", b"4"]
        c.seek(tp, 99)                                  # past the end: reset by the policy
        assert c.poll(200) == [] and c.position(tp) == 5


def test_fetching_ahead_loses_and_repeats_nothing_across_seeks_and_new_records(server):
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=3)
    with Producer(server.address, acks=1, linger_ms=0, batch_size=2048) as p, \
            Consumer(server.address, auto_offset_reset="earliest", max_poll_records=7,
                     max_partition_fetch_bytes=1024, fetch_max_wait_ms=50) as c:
        for i in range(300):
            p.send(name, b"a%d" % i, partition=i % 3)
        p.flush()
        tps = [(name, part) for part in range(3)]
        c.assign(tps)
        seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
        polls = 0
        while sum(map(len, seen.values())) < 600:
            for r in c.poll(5000):
                seen[r.partition].append(r.offset)
                assert r.value.startswith(b"a" if r.offset < 100 else b"b")
            polls += 1
            if polls == 10:                     # new records while a fetch is on its way
                for i in range(300):
                    p.send(name, b"b%d" % i, partition=i % 3)
                p.flush()
        assert all(offsets == list(range(200)) for offsets in seen.values())
        c.seek((name, 1), 150)                  # a fetch from 200 is on its way: not used
        again = []
        while len(again) < 50:
            again += [r.offset for r in c.poll(5000) if r.partition == 1]
        assert again == list(range(150, 200)) and c.position((name, 1)) == 200


def test_consumer_record_fields_are_what_the_decoder_fills():
    from dcli.client import ConsumerRecord
    from dcli.wire.records import ROW_FIELDS
    assert ConsumerRecord._fields == ROW_FIELDS


def test_the_shells_name_source_lists_topics_and_groups(server):
    from dcli.shell.refresher import broker_names
    name = topic()
    with Admin(server.address) as admin:
        admin.create_topic(name, partitions=1)
        admin.commit_offsets("shell-group", {(name, 0): 0})
    assert name in broker_names(server.address, "kafka:topics")
    assert "shell-group" in broker_names(server.address, "kafka:groups")


def test_send_blocks_when_buffer_memory_is_full_and_gives_up_after_max_block_ms(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    try:
        name = topic()
        with Admin(srv.address) as admin:
            admin.create_topic(name, partitions=1)
        with Producer(srv.address, acks=1, linger_ms=0, batch_size=1024, buffer_memory=4096,
                      max_block_ms=300) as p:
            p.partitions_for(name)
            srv.proc.send_signal(signal.SIGSTOP)        # no answers: no batch frees its memory
            try:
                accepted = []
                with pytest.raises(errors.OperationTimeoutError, match="max blocking time 300 ms"):
                    for i in range(1000):
                        accepted.append(p.send(name, b"%099d" % i))
                assert 0 < len(accepted) < 1000
            finally:
                srv.proc.send_signal(signal.SIGCONT)
            p.flush(timeout=60)
            assert [f.result().offset for f in accepted] == list(range(len(accepted)))
        assert len(read_all(srv, name, 1)) == len(accepted)
    finally:
        srv.kill()
