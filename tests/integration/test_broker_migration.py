"""A data directory written by an older single-node server (topics in broker/topics.json, committed
offsets in groups/__consumer_offsets-0) is migrated into the coordination tree on the first
start: a consumer reads the old records from the old committed offsets, the topic keeps its id,
partition count and configs, producer ids go on past the old block, and the old files are
renamed so that the next start does not migrate them again. A node of a cluster of several
refuses such a directory with one line that says how to migrate it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc

from dcli.v1 import broker_pb2 as pb
from dcli.v1 import broker_pb2_grpc as pb_grpc
from dcli.client.admin import Admin
from dcli.client.consumer import Consumer
from dcli.client.producer import Producer
from dcli.wire.records import Record, build_batch
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.topics import new_topic_id
from dcli_server.storage.segments import PartitionLog
from tests.conftest import ROOT, ServerProcess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from legacy_layout import write_old_layout  # noqa: E402

WAIT_S = 60


def old_directory(data_dir: Path) -> str:
    """An old layout: topic chat (2 partitions, retention.ms overridden) with three records in
    partition 0 and one in partition 1, group readers committed at 1 on chat-0."""
    topic_id = new_topic_id()
    write_old_layout(data_dir, topics={"chat": (topic_id, 2, {"retention.ms": "100000"})},
                     offsets={"readers": {("chat", 0): 1}}, producer_id_block_end=1000)
    config = BrokerConfig(broker_id=1).log_config({"retention.ms": "100000"})
    for p, values in ((0, [b"a", b"b", b"c"]), (1, [b"x"])):
        with PartitionLog(data_dir / "broker" / f"chat-{p}", config) as log:
            for i, v in enumerate(values):
                log.append(build_batch([Record(None, v, (), 1000 + i)]))
            log.flush()
    return topic_id


def test_an_old_single_node_directory_is_migrated_on_first_start(tmp_path):
    data = tmp_path / "data"
    topic_id = old_directory(data)
    srv = ServerProcess(data).start()
    try:
        with Admin(srv.address) as admin:
            [t] = admin.describe_topics(["chat"])
            assert t.topic_id == topic_id and len(t.partitions) == 2
            configs = {c.name: c.value for c in admin.describe_configs("chat")}
            assert configs["retention.ms"] == "100000"
            assert admin.committed_offsets("readers") == {("chat", 0): 1}
        with Consumer(srv.address, group_id="readers", auto_offset_reset="earliest",
                      enable_auto_commit=False) as c:
            c.subscribe(["chat"])
            got: list[tuple[int, int, bytes]] = []
            for _ in range(100):
                got += [(r.partition, r.offset, r.value) for r in c.poll(1000)]
                if len(got) >= 3:
                    break
            assert sorted(got) == [(0, 1, b"b"), (0, 2, b"c"), (1, 0, b"x")]
        with Producer(srv.address, linger_ms=0) as p:      # idempotent: a new producer id
            assert p.send("chat", b"d", partition=0).result(timeout=WAIT_S).offset == 3
        broker = data / "broker"
        assert (broker / "topics.json.migrated").exists() and not (broker / "topics.json").exists()
        assert (data / "groups.migrated").is_dir() and not (data / "groups").exists()
        assert (broker / "producer-ids.migrated").exists()

        srv.restart()                                       # kill -9: nothing is migrated again
        with Admin(srv.address) as admin:
            [t] = admin.describe_topics(["chat"])
            assert t.topic_id == topic_id and len(t.partitions) == 2
            assert admin.committed_offsets("readers") == {("chat", 0): 1}
            assert admin.list_offsets([("chat", 0)], -1) == {("chat", 0): 4}
    finally:
        srv.kill()


def test_producer_ids_go_on_past_the_old_block(tmp_path):
    data = tmp_path / "data"
    old_directory(data)
    srv = ServerProcess(data).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.BrokerStub(ch)
            reply = stub.InitProducerId(pb.InitProducerIdRequest(producer_id=-1, producer_epoch=-1), timeout=WAIT_S)
            assert reply.error_code == 0 and reply.producer_id >= 1000
    finally:
        srv.kill()


def test_a_node_of_a_cluster_refuses_an_old_directory_with_one_line(tmp_path):
    data = tmp_path / "data"
    old_directory(data)
    proc = subprocess.run(
        [sys.executable, "-m", "dcli_server", "--node-id", "1", "--data-dir", str(data),
         "--peers", "1=127.0.0.1:7181,2=127.0.0.1:7182,3=127.0.0.1:7183"],
        capture_output=True, cwd=ROOT, timeout=WAIT_S)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "older version" in lines[0] and "start it alone once" in lines[0], lines
    assert (data / "broker" / "topics.json").exists()      # nothing was changed
