"""A data directory in the layout older single-node servers wrote (server/broker/migrate.py says
which files), made from the documented formats for the migration tests: topics.json, the
producer id block, partition directories with partition.metadata, and the committed offsets as
Kafka's offset commit records in `groups/__consumer_offsets-0`.

    write_old_layout(data_dir, topics={"chat": (topic_id, 2, {"retention.ms": "100000"})},
                     offsets={"readers": {("chat", 0): 1}}, producer_id_block_end=1000)
"""
from __future__ import annotations

import json
from pathlib import Path

from dcli.wire.records import Record, build_batch
from dcli_server.broker.offsets import DEFAULT_LOG_CONFIG, OffsetAndMetadata, encode_key, encode_value
from dcli_server.storage.segments import PartitionLog


def write_old_offsets(directory: Path, batches: list[list[tuple[str, str, int, OffsetAndMetadata | None]]]) -> None:
    """One record batch per list of (group, topic, partition, value or None for a tombstone)."""
    with PartitionLog(Path(directory), DEFAULT_LOG_CONFIG) as log:
        for batch in batches:
            log.append(build_batch([
                Record(encode_key(g, t, p), encode_value(v) if v is not None else None, (), 1)
                for g, t, p, v in batch]))
        log.flush()


def write_old_layout(data_dir: Path, *, topics: dict[str, tuple[str, int, dict[str, str]]],
                     offsets: dict[str, dict[tuple[str, int], int]] | None = None,
                     producer_id_block_end: int = 0, broker_id: int = 1) -> None:
    """topics: name -> (topic id, partitions, configs); offsets: group -> {(topic, p): offset}.
    The partition directories get their partition.metadata; their logs are the caller's."""
    broker = Path(data_dir) / "broker"
    broker.mkdir(parents=True, exist_ok=True)
    (broker / "meta.properties").write_text(f"cluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id={broker_id}\nversion=1\n")
    doc = {"version": 1, "topics": [
        {"name": name, "id": topic_id, "replicas": [[broker_id]] * partitions, "configs": configs}
        for name, (topic_id, partitions, configs) in sorted(topics.items())]}
    (broker / "topics.json").write_text(json.dumps(doc, indent=1))
    for name, (topic_id, partitions, _) in topics.items():
        for p in range(partitions):
            d = broker / f"{name}-{p}"
            d.mkdir(exist_ok=True)
            (d / "partition.metadata").write_text(f"version: 0\ntopic_id: {topic_id}\n")
    if producer_id_block_end:
        (broker / "producer-ids").write_text(f"{producer_id_block_end}\n")
    if offsets:
        write_old_offsets(Path(data_dir) / "groups" / "__consumer_offsets-0", [[
            (g, t, p, OffsetAndMetadata(o, "", 1700000000000)) for (t, p), o in sorted(found.items())]
            for g, found in sorted(offsets.items())])
