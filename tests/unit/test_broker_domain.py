"""The Broker object itself, on an asyncio loop over a temporary directory: produce and fetch,
acks and group commit, idempotent producers, long polls, offsets, topics, housekeeping and
reopening. The broker runs as it does in a server, in a node alone (a broker cluster of one):
its node's services are opened in this process with a client port, so that its membership
agent reads and writes the coordination tree as it always does."""
from __future__ import annotations

import asyncio
import inspect

import pytest

from dcli.wire.records import (
    Record, build_batch, decode_records, iter_batches, parse_header, with_base_offset,
    with_leader_epoch,
)
from dcli_server.broker import broker as broker_module
from dcli_server.broker.broker import Broker
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.requests import FetchItem, NewTopic
from dcli_server.config import ServerConfig
from dcli_server.listeners.client import ClientListener
from dcli_server.main import Services

WAIT_S = 60  # a bound on waiting for something that should come at once, not a measurement


async def open_node(data_dir, config: BrokerConfig, fsync: str) -> Broker:
    """A node alone, serving on a free port; its broker's `close` closes the node."""
    settings = ServerConfig(listen="127.0.0.1:0", data_dir=data_dir, fsync=fsync)
    services = await Services.open(settings, config)
    listener = ClientListener(services, settings.listen)
    host, port = listener.bind()
    address = await services.serving_at(host, port)
    await listener.start()
    await services.start(address)
    broker = services.broker
    close_broker = broker.close

    async def close() -> None:
        broker.close = close_broker         # the node's close calls the broker's own
        if services.membership is not None:
            await asyncio.to_thread(services.membership.stop)
            services.membership = None
        await listener.stop(grace=0.5)
        await services.close()
    broker.close = close
    return broker


def run(coro_fn):
    """Run an async test body, `async def test_x(open_broker[, tmp_path][, monkeypatch])`, with
    a factory of brokers over tmp_path (closed at the end)."""
    wanted = [n for n in inspect.signature(coro_fn).parameters if n != "open_broker"]

    def wrapper(tmp_path, monkeypatch):
        fixtures = {"tmp_path": tmp_path, "monkeypatch": monkeypatch}
        kwargs = {n: fixtures[n] for n in wanted}

        async def main():
            opened = []

            async def open_broker(config=None, fsync="always"):
                b = await open_node(tmp_path, config or BrokerConfig(broker_id=1), fsync)
                opened.append(b)
                return b
            try:
                await asyncio.wait_for(coro_fn(open_broker, **kwargs), WAIT_S)
            finally:
                for b in opened:
                    if not b._closed:
                        await b.close()
        asyncio.run(main())
    wrapper.__name__ = coro_fn.__name__
    wrapper.__doc__ = coro_fn.__doc__
    return wrapper


def batch(*values: bytes, key: bytes | None = b"k", **kwargs) -> bytes:
    return build_batch([Record(key, v, (), 1000 + i) for i, v in enumerate(values)], **kwargs)


def stored(data: bytes, offset: int) -> bytes:
    """The bytes the broker keeps for a batch: base offset and leader epoch rewritten."""
    return with_leader_epoch(with_base_offset(data, offset), 0)


async def create(b: Broker, name="chat", partitions=1, **configs):
    [r] = await b.create_topics([NewTopic(name, partitions, -1, configs)])
    assert r.error is None, r.error
    return r


async def fetch_all(b: Broker, topic="chat", partition=0, offset=0) -> bytes:
    [r] = await b.fetch([FetchItem(topic, partition, offset)], max_wait_ms=0)
    assert r.error is None, r.error
    return r.records


# -- produce and fetch ---------------------------------------------------------------------------


@run
async def test_batches_come_back_byte_identical_at_contiguous_offsets(open_broker):
    b = await open_broker()
    await create(b, partitions=2)
    sent = [batch(b"a", b"b", b"c"), batch(b"d"), batch(b"e", b"f")]
    offsets = []
    for data in sent:
        [r] = await b.produce(-1, 0, [("chat", 1, data)])
        assert r.error is None
        offsets.append(r.base_offset)
    assert offsets == [0, 3, 4]
    got = await fetch_all(b, partition=1)
    assert got == b"".join(stored(d, o) for d, o in zip(sent, offsets))
    values = [r.value for _, x in iter_batches(got) for r in decode_records(x)]
    assert values == [b"a", b"b", b"c", b"d", b"e", b"f"]
    assert await fetch_all(b, partition=0) == b""


@run
async def test_several_batches_in_one_request(open_broker):
    b = await open_broker()
    await create(b)
    one, two = batch(b"a"), batch(b"b", b"c")
    [r] = await b.produce(1, 0, [("chat", 0, one + two)])
    assert r.error is None and r.base_offset == 0
    [r] = await b.produce(-1, 0, [("chat", 0, batch(b"d"))])
    assert r.base_offset == 3


@run
async def test_acks_all_answers_after_the_fsync_and_acks_1_before(open_broker):
    b = await open_broker()
    await create(b)
    p = b._lookup("chat", 0)
    [r] = await b.produce(1, 0, [("chat", 0, batch(b"a"))])
    # acks=1 answered on the append; no fsync has run yet, so consumers do not see it
    assert r.error is None and p.log_end_offset == 1 and p.durable_offset == 0
    [f] = await b.fetch([FetchItem("chat", 0, 0)], max_wait_ms=0)
    assert f.records == b"" and f.high_watermark == 0 and f.log_end_offset == 1
    [r] = await b.produce(-1, 0, [("chat", 0, batch(b"b"))])
    assert r.base_offset == 1 and p.durable_offset >= 2 and p.high_watermark >= 2
    assert len(list(iter_batches(await fetch_all(b)))) == 2


@run
async def test_acks_0_appends_too(open_broker):
    b = await open_broker()
    await create(b)
    await b.produce(0, 0, [("chat", 0, batch(b"a"))])
    assert b._lookup("chat", 0).log_end_offset == 1


@run
async def test_concurrent_acks_all_produces_share_fsyncs(open_broker, monkeypatch):
    rounds = []
    real = broker_module._flush_all

    def counting(parts, *how):
        rounds.append(len(parts))
        return real(parts, *how)
    monkeypatch.setattr(broker_module, "_flush_all", counting)
    b = await open_broker()
    await create(b, partitions=2)
    results = await asyncio.gather(*(b.produce(-1, 0, [("chat", i % 2, batch(b"x"))]) for i in range(40)))
    assert all(r.error is None for [r] in results)
    assert sorted(r.base_offset for [r] in results) == sorted(list(range(20)) * 2)
    assert 1 <= len(rounds) <= 2   # one fsync round (two at most) for forty acknowledgements


@run
async def test_fsync_off_and_batch_move_the_high_watermark_on_append(open_broker):
    b = await open_broker(fsync="off")
    await create(b)
    await b.produce(1, 0, [("chat", 0, batch(b"a"))])
    assert b._lookup("chat", 0).high_watermark == 1
    [r] = await b.produce(-1, 0, [("chat", 0, batch(b"b"))])
    assert r.error is None


@run
async def test_a_bad_crc_is_refused_and_the_log_is_intact(open_broker):
    b = await open_broker()
    await create(b)
    good = batch(b"a")
    await b.produce(-1, 0, [("chat", 0, good)])
    bad = bytearray(batch(b"b"))
    bad[-1] ^= 0xFF
    [r] = await b.produce(-1, 0, [("chat", 0, good + bytes(bad))])
    assert r.error.kafka_code == 2 and "crc" in r.error.message
    [r] = await b.produce(-1, 0, [("chat", 0, good[:-3])])
    assert r.error.kafka_code == 2
    [r] = await b.produce(-1, 0, [("chat", 0, b"")])
    assert r.error.kafka_code == 2
    assert await fetch_all(b) == stored(good, 0)


@run
async def test_an_oversize_batch_is_refused(open_broker):
    b = await open_broker()
    await create(b, **{"max.message.bytes": "1000"})
    [r] = await b.produce(-1, 0, [("chat", 0, batch(b"x" * 2000))])
    assert r.error.kafka_code == 10
    assert "exceeds the maximum configured value of 1000" in r.error.message
    assert b._lookup("chat", 0).log_end_offset == 0


@run
async def test_unknown_partitions_and_bad_names(open_broker):
    b = await open_broker(BrokerConfig(broker_id=1, auto_create_topics_enable=False))
    await create(b)
    results = await b.produce(-1, 0, [("chat", 1, batch(b"a")), ("nope", 0, batch(b"a")),
                                      ("../x", 0, batch(b"a")), ("chat", 0, batch(b"a"))])
    assert [r.error.kafka_code if r.error else 0 for r in results] == [3, 3, 17, 0]


@run
async def test_min_insync_replicas_above_the_isr_refuses_acks_all(open_broker):
    b = await open_broker()
    await create(b, **{"min.insync.replicas": "2"})
    [r] = await b.produce(-1, 0, [("chat", 0, batch(b"a"))])
    assert r.error.kafka_code == 19 and "min.isr requirement of 2" in r.error.message
    [r] = await b.produce(1, 0, [("chat", 0, batch(b"a"))])
    assert r.error is None


@run
async def test_bad_acks_are_refused(open_broker):
    b = await open_broker()
    with pytest.raises(Exception, match="acks must be 0, 1 or -1"):
        await b.produce(5, 0, [])


# -- idempotent producers --------------------------------------------------------------------------


@run
async def test_a_retried_batch_is_appended_once_with_its_original_offset(open_broker, tmp_path):
    b = await open_broker()
    await create(b)
    pid, epoch = await b.init_producer_id()
    await b.produce(-1, 0, [("chat", 0, batch(b"other"))])
    first = batch(b"a", b"b", producer_id=pid, producer_epoch=epoch, base_sequence=0)
    [r1] = await b.produce(-1, 0, [("chat", 0, first)])
    [r2] = await b.produce(-1, 0, [("chat", 0, first)])
    assert r1.base_offset == r2.base_offset == 1 and r2.error is None
    assert b._lookup("chat", 0).log_end_offset == 3
    gap = batch(b"c", producer_id=pid, producer_epoch=epoch, base_sequence=5)
    [r3] = await b.produce(-1, 0, [("chat", 0, gap)])
    assert r3.error.kafka_code == 45
    assert r3.error.message == (f"Out of order sequence number for producer {pid} at offset 3 in "
                                "partition chat-0: 5 (incoming seq. number), 1 (current end sequence number)")
    await b.close()
    b2 = await open_broker()   # the producer state is rebuilt from the log
    [r4] = await b2.produce(-1, 0, [("chat", 0, first)])
    assert r4.base_offset == 1 and b2._lookup("chat", 0).log_end_offset == 3
    nxt = batch(b"c", producer_id=pid, producer_epoch=epoch, base_sequence=2)
    [r5] = await b2.produce(-1, 0, [("chat", 0, nxt)])
    assert r5.error is None and r5.base_offset == 3


@run
async def test_producer_ids_are_never_handed_out_twice(open_broker):
    b = await open_broker()
    ids = [(await b.init_producer_id())[0] for _ in range(3)]
    assert len(set(ids)) == 3
    assert await b.init_producer_id(ids[0], 0) == (ids[0], 1)
    with pytest.raises(Exception) as e:
        await b.init_producer_id(10**9, 0)
    assert e.value.kafka_code == 49
    await b.close()
    b2 = await open_broker()
    later = (await b2.init_producer_id())[0]
    assert later > max(ids)


# -- fetch ------------------------------------------------------------------------------------------


@run
async def test_a_long_poll_is_woken_by_a_produce(open_broker):
    b = await open_broker()
    await create(b)
    p = b._lookup("chat", 0)
    task = asyncio.ensure_future(b.fetch([FetchItem("chat", 0, 0)], max_wait_ms=600_000, min_bytes=1))
    while not p._data_waiters:          # until the fetch is parked on the partition
        await asyncio.sleep(0)
    assert not task.done()
    await b.produce(1, 0, [("chat", 0, batch(b"wake"))])
    [r] = await task                    # within WAIT_S, not the 600 s the fetch allows
    assert r.error is None and decode_records(r.records)[0].value == b"wake"
    assert not p._data_waiters


@run
async def test_a_long_poll_waits_for_min_bytes(open_broker):
    b = await open_broker()
    await create(b)
    p = b._lookup("chat", 0)
    small = batch(b"s")
    task = asyncio.ensure_future(b.fetch([FetchItem("chat", 0, 0)], max_wait_ms=600_000,
                                         min_bytes=len(small) + 1))
    while not p._data_waiters:
        await asyncio.sleep(0)
    await b.produce(-1, 0, [("chat", 0, small)])
    while not p._data_waiters:           # woken, read too little, parked again
        await asyncio.sleep(0)
    assert not task.done()
    await b.produce(-1, 0, [("chat", 0, batch(b"more"))])
    [r] = await task
    assert len(list(iter_batches(r.records))) == 2


@run
async def test_a_long_poll_ends_when_its_topic_is_deleted(open_broker):
    b = await open_broker()
    await create(b)
    task = asyncio.ensure_future(b.fetch([FetchItem("chat", 0, 0)], max_wait_ms=600_000))
    while not b._lookup("chat", 0)._data_waiters:
        await asyncio.sleep(0)
    await b.delete_topics(["chat"])
    [r] = await task
    assert r.error.kafka_code == 3


@run
async def test_a_short_wait_returns_empty(open_broker):
    b = await open_broker()
    await create(b)
    [r] = await b.fetch([FetchItem("chat", 0, 0)], max_wait_ms=1, min_bytes=1)
    assert r.error is None and r.records == b"" and r.high_watermark == 0


@run
async def test_fetch_sizes_are_bounded_but_one_batch_always_comes(open_broker):
    b = await open_broker()
    await create(b, partitions=2)
    big = [batch(b"x" * 1000) for _ in range(3)]
    for data in big:
        await b.produce(-1, 0, [("chat", 0, data), ("chat", 1, data)])
    size = len(big[0])
    [r] = await b.fetch([FetchItem("chat", 0, 0, partition_max_bytes=size * 2)])
    assert len(r.records) == 2 * size
    [r] = await b.fetch([FetchItem("chat", 0, 0, partition_max_bytes=10)])
    assert len(r.records) == size       # larger than the limit, but never nothing
    r0, r1 = await b.fetch([FetchItem("chat", 0, 0), FetchItem("chat", 1, 0)], max_bytes=size + 10)
    assert len(r0.records) == size and r1.records == b""
    [r] = await b.fetch([FetchItem("chat", 0, 1)])   # mid-batch offsets get the whole batch
    assert parse_header(r.records).base_offset == 1


@run
async def test_offsets_out_of_range(open_broker):
    b = await open_broker()
    await create(b)
    await b.produce(-1, 0, [("chat", 0, batch(b"a"))])
    for offset in (2, -1, 100):
        [r] = await b.fetch([FetchItem("chat", 0, offset)], max_wait_ms=600_000)
        assert r.error.kafka_code == 1, offset
        assert (r.log_start_offset, r.high_watermark) == (0, 1)
    [r] = await b.fetch([FetchItem("chat", 0, 1)], max_wait_ms=0)   # the log end itself is fine
    assert r.error is None and r.records == b""


@run
async def test_leader_epochs_are_checked(open_broker):
    b = await open_broker()
    await create(b)
    [r] = await b.fetch([FetchItem("chat", 0, 0, current_leader_epoch=3)])
    assert r.error.kafka_code == 75
    [r] = await b.fetch([FetchItem("chat", 0, 0, current_leader_epoch=0)])
    assert r.error is None


# -- offsets ----------------------------------------------------------------------------------------


@run
async def test_list_offsets_by_position_and_time(open_broker):
    b = await open_broker()
    await create(b)
    for ts in (1000, 2000, 3000):
        data = build_batch([Record(b"k", b"v", (), ts), Record(b"k", b"w", (), ts + 10)])
        await b.produce(-1, 0, [("chat", 0, data)])
    results = b.list_offsets([("chat", 0, -2), ("chat", 0, -1), ("chat", 0, 2005), ("chat", 0, 2010),
                              ("chat", 0, 500), ("chat", 0, 9999), ("chat", 9, -1), ("chat", 0, -7)])
    got = [(r.error.kafka_code if r.error else 0, r.offset, r.timestamp) for r in results]
    assert got == [(0, 0, -1), (0, 6, -1), (0, 3, 2010), (0, 3, 2010), (0, 0, 1000), (0, -1, -1),
                   (3, -1, -1), (42, -1, -1)]


# -- topics -------------------------------------------------------------------------------------------


@run
async def test_topics_and_records_survive_reopening(open_broker, tmp_path):
    b = await open_broker()
    r = await create(b, partitions=2, **{"retention.ms": "100000"})
    data = batch(b"kept")
    await b.produce(-1, 0, [("chat", 1, data)])
    await b.close()
    b2 = await open_broker()
    [t] = await b2.metadata(["chat"])
    assert t.topic_id == r.topic_id and len(t.partitions) == 2 and t.configs == {"retention.ms": "100000"}
    assert await fetch_all(b2, partition=1) == stored(data, 0)
    assert b2.cluster_id == b.cluster_id and len(b.cluster_id) == 22


@run
async def test_create_describe_grow_and_delete(open_broker, tmp_path):
    b = await open_broker(BrokerConfig(broker_id=1, auto_create_topics_enable=False))
    results = await b.create_topics([NewTopic("chat", 3), NewTopic("chat", 1), NewTopic("x", 0),
                                     NewTopic("y", 1, 3), NewTopic("../z", 1)])
    assert [r.error.kafka_code if r.error else 0 for r in results] == [42, 42, 37, 38, 17]
    [r] = await b.create_topics([NewTopic("chat", 3)], validate_only=True)
    assert r.error is None and b.topic_names() == []
    await create(b, partitions=3)
    [t] = await b.metadata(["chat"])
    assert [(p.partition, p.leader, p.replicas, p.isr) for p in t.partitions] == [
        (i, 1, (1,), (1,)) for i in range(3)]
    [missing] = await b.metadata(["nope"], allow_auto_topic_creation=True)
    assert missing.error.kafka_code == 3
    grown = await b.create_partitions("chat", 5)
    assert grown.error is None
    [r] = await b.produce(-1, 0, [("chat", 4, batch(b"new"))])
    assert r.error is None
    shrink = await b.create_partitions("chat", 2)
    assert shrink.error.kafka_code == 37
    deleted = await b.delete_topics(["chat", "chat"])
    assert deleted[0].error is None and deleted[1].error.kafka_code == 3
    assert sorted(p.name for p in (tmp_path / "broker").iterdir()) == ["membership-session", "meta.properties"]
    await create(b, partitions=5)              # the same name again starts empty
    assert await fetch_all(b, partition=4) == b""


@run
async def test_explicit_replica_assignments(open_broker):
    b = await open_broker()
    [ok, bad, both] = await b.create_topics([NewTopic("placed", assignments={0: [1], 1: [1]}),
                                             NewTopic("elsewhere", assignments={0: [2]}),
                                             NewTopic("both", 2, -1, assignments={0: [1]})])
    assert ok.error is None
    assert bad.error.kafka_code == 39 and "broker 2, but no broker" in bad.error.message
    assert both.error.kafka_code == 42
    [t] = await b.metadata(["placed"])
    assert [(p.partition, p.leader, p.replicas) for p in t.partitions] == [(0, 1, (1,)), (1, 1, (1,))]
    [r] = await b.produce(-1, 0, [("placed", 1, batch(b"a"))])
    assert r.error is None and r.base_offset == 0


@run
async def test_auto_creation_on_metadata_and_produce(open_broker):
    b = await open_broker(BrokerConfig(broker_id=1, num_partitions=2))
    [t] = await b.metadata(["auto"], allow_auto_topic_creation=True)
    assert t.error is None and len(t.partitions) == 2
    [r] = await b.produce(-1, 0, [("other", 1, batch(b"a"))])
    assert r.error is None and b.topic_names() == ["auto", "other"]
    [t] = await b.metadata(["fresh"], allow_auto_topic_creation=False)
    assert t.error.kafka_code == 3


@run
async def test_describe_configs_marks_overrides(open_broker):
    b = await open_broker(BrokerConfig.from_properties({"log.segment.bytes": "1048576"})[0])
    await create(b, **{"cleanup.policy": "compact"})
    entries = {c.name: (c.value, c.is_default) for c in b.describe_configs("chat")}
    assert entries["cleanup.policy"] == ("compact", False)
    assert entries["segment.bytes"] == ("1048576", False)
    assert entries["retention.ms"] == ("604800000", True)
    [t] = await b.metadata(["chat"])
    assert t.configs == {"cleanup.policy": "compact", "segment.bytes": "1048576"}
    broker_entries = {c.name: c.value for c in b.describe_configs("")}
    assert broker_entries["log.segment.bytes"] == "1048576"
    with pytest.raises(Exception) as e:
        b.describe_configs("nope")
    assert e.value.kafka_code == 3


@run
async def test_housekeeping_applies_retention(open_broker):
    b = await open_broker()
    await create(b, **{"segment.bytes": "200", "retention.bytes": "1"})
    for i in range(5):
        await b.produce(-1, 0, [("chat", 0, batch(b"x" * 100))])
    assert await b.run_housekeeping() == 4
    p = b._lookup("chat", 0)
    assert p.log_start_offset == 4
    [r] = await b.fetch([FetchItem("chat", 0, 0)])
    assert r.error.kafka_code == 1
    [r] = await b.fetch([FetchItem("chat", 0, 4)])
    assert parse_header(r.records).base_offset == 4
