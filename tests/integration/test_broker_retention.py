"""Retention and compaction through the running server: the housekeeping pass deletes closed
segments past retention.ms and compacts cleanup.policy=compact topics; the log start offset moves
and the latest value per key stays, at its original offset."""
from __future__ import annotations

import pytest

from dcli.client import Admin, Consumer, Producer
from tests.conftest import ServerProcess, read_records
from tests.waiting import eventually

WAIT_S = 60


@pytest.fixture
def housekeeping_server(tmp_path):
    props = tmp_path / "broker.properties"
    props.write_text("log.retention.check.interval.ms=100\n")
    srv = ServerProcess(tmp_path / "data", "--broker-config", str(props)).start()
    yield srv
    srv.kill()


def earliest(admin: Admin, topic: str) -> int:
    return admin.list_offsets([(topic, 0)], -2)[(topic, 0)]


def test_retention_deletes_closed_segments_and_moves_the_log_start(housekeeping_server):
    srv = housekeeping_server
    with Admin(srv.address) as admin:
        admin.create_topic("old", partitions=1, configs={"retention.ms": "1", "segment.bytes": "1024"})
        with Producer(srv.address, linger_ms=0) as p:
            for i in range(40):
                p.send("old", b"x" * 100, partition=0).result(timeout=WAIT_S)
        assert eventually(lambda: earliest(admin, "old") > 0, WAIT_S, "retention to move the log start")
        start = earliest(admin, "old")
        assert admin.list_offsets([("old", 0)], -1)[("old", 0)] == 40      # the end stays
    with Consumer(srv.address, auto_offset_reset="earliest") as c:
        c.assign([("old", 0)])
        got = c.poll(2000)
        # from the log start (which a later housekeeping pass may have moved further on)
        assert got and got[0].offset >= start


def test_compaction_keeps_the_latest_value_per_key(housekeeping_server):
    srv = housekeeping_server
    with Admin(srv.address) as admin:
        admin.create_topic("state", partitions=1, configs={"cleanup.policy": "compact", "segment.bytes": "1024"})
    with Producer(srv.address, linger_ms=0) as p:
        for i in range(60):
            p.send("state", b"v%d" % i, key=b"k%d" % (i % 3), partition=0).result(timeout=WAIT_S)

    assert eventually(lambda: len(read_records(srv.address, "state", 1)) < 60, WAIT_S, "compaction to remove records")
    records = read_records(srv.address, "state", 1)
    latest = {}
    for r in records:
        latest[r.key] = (r.offset, r.value)
    assert latest[b"k0"][1] == b"v57" and latest[b"k1"][1] == b"v58" and latest[b"k2"][1] == b"v59"
    assert all(r.value == b"v%d" % r.offset for r in records)            # offsets unchanged
