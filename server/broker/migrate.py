"""The migration of a data directory written by an older single-node server, whose broker kept its
topics in a file and its groups' committed offsets in a log, into the coordination tree where
every broker keeps them now.

The old layout, as those versions wrote it:

    <data-dir>/broker/topics.json      {"version": 1, "topics": [{"name": "chat", "id": "<topic id>",
                                         "replicas": [[1], [1]], "configs": {"retention.ms": "1000"}}]}
    <data-dir>/broker/producer-ids     the end of the last producer id block handed out ("2000\\n")
    <data-dir>/broker/chat-0/ ...      the partitions' logs (the same layout as now: reused in place)
    <data-dir>/groups/__consumer_offsets-0/   Kafka's offset commit records (offsets.py)

    old = find_old_layout(data_dir)               # None: nothing to migrate
    refuse_if_clustered(old, cluster_size=3)      # MigrationRefused: a one-line "how to" message
    migrate(client, old, broker_id=1)             # topics, offsets, producer ids into the tree

`migrate` puts each topic into the tree with this broker as the only replica and leader of every
partition (leader epoch 0, as the old server wrote its batches), its configs with it, each
committed offset at its znode (tree_offsets.py), and the producer id block past the old one, so
that no id is handed out twice; then it renames `topics.json`, `producer-ids` and `groups` to
`*.migrated`, so the next start does not migrate again. Each step can be repeated: a crash in
the middle migrates the rest on the next start. A node that is part of a cluster of several
refuses to start on an old layout: which node's topics would win is the operator's choice.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dcli.wire import errors
from dcli.wire.errors import BrokerError
from dcli.wire.topics import parse_partition_dir, validate_topic
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.producer_ids import PRODUCER_ID_BLOCK, PRODUCER_ID_BLOCK_PATH, encode_producer_id_block
from dcli_server.broker.offsets import OffsetAndMetadata, read_offsets_log
from dcli_server.broker.topics import BrokerStateError
from dcli_server.broker.tree_offsets import TreeOffsetStore
from dcli_server.storage import CorruptLogError
from dcli_server.storage.files import fsync_dir

if TYPE_CHECKING:
    from dcli.client import CoordClient

log = logging.getLogger("dcli.server")

TOPICS_FILE = "topics.json"
PRODUCER_IDS_FILE = "producer-ids"
OFFSETS_LOG = "__consumer_offsets-0"
MIGRATED = ".migrated"
_FORMAT_VERSION = 1


class MigrationRefused(CorruptLogError):
    """The data directory cannot be migrated here; the message says what to do instead."""

    def __init__(self, path: Path, message: str):
        super().__init__(path, 0, message)

    def __str__(self) -> str:
        return self.problem


@dataclass
class OldLayout:
    """What an older single-node server left in a data directory."""

    data_dir: Path
    topics: list[meta.TopicAssignment] = field(default_factory=list)     # with their configs
    offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = field(default_factory=dict)
    producer_id_block_end: int = 0

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def groups_dir(self) -> Path:
        return self.data_dir / "groups"

    def describe(self) -> str:
        return (f"{len(self.topics)} topic(s) and the committed offsets of {len(self.offsets)} group(s) "
                f"in {self.data_dir}")


def find_old_layout(data_dir: Path) -> OldLayout | None:
    """The old layout's topics, offsets and producer id block, or None when there is none.
    Raises BrokerStateError when a file of it cannot be read (nothing is changed then)."""
    data_dir = Path(data_dir)
    topics_file = data_dir / "broker" / TOPICS_FILE
    offsets_dir = data_dir / "groups" / OFFSETS_LOG
    ids_file = data_dir / "broker" / PRODUCER_IDS_FILE
    if not (topics_file.exists() or offsets_dir.is_dir() or ids_file.exists()):
        _check_not_damaged(data_dir / "broker")
        return None
    old = OldLayout(data_dir)
    if topics_file.exists():
        old.topics = _read_topics(topics_file)
    if ids_file.exists():
        text = ids_file.read_text().strip()
        try:
            old.producer_id_block_end = int(text)
        except ValueError:
            raise BrokerStateError(ids_file, 0, f"unreadable producer id block {text!r}") from None
    if offsets_dir.is_dir():
        old.offsets = read_offsets_log(offsets_dir)
    return old


def _check_not_damaged(broker_dir: Path) -> None:
    """An old layout without its topics.json but with partition directories is damaged: the
    new layout would take them for strays and remove them. Refuse, as the old server did."""
    try:
        props = (broker_dir / "meta.properties").read_text()
    except FileNotFoundError:
        props = ""
    if not broker_dir.is_dir() or "dcli.metadata=tree" in props.splitlines():
        return
    found = []
    for entry in broker_dir.iterdir():
        if entry.is_dir() and not entry.name.endswith("-delete"):
            try:
                parse_partition_dir(entry.name)
            except BrokerError:
                continue
            found.append(entry.name)
    if found:
        raise BrokerStateError(broker_dir, 0, (
            f"{TOPICS_FILE} is missing but {len(found)} partition directories are there "
            f"(e.g. {sorted(found)[0]}); restore {TOPICS_FILE} or remove them"))


def _read_topics(path: Path) -> list[meta.TopicAssignment]:
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unknown format version {doc.get('version')!r}")
        out = []
        for d in doc["topics"]:
            replicas = tuple(tuple(int(b) for b in r) for r in d["replicas"])
            if not replicas:
                raise ValueError(f"topic {d['name']!r} has no partitions")
            validate_topic(d["name"])
            configs = {str(k): str(v) for k, v in d.get("configs", {}).items()}
            out.append(meta.TopicAssignment(d["name"], str(d["id"]), replicas, configs))
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BrokerError) as exc:
        raise BrokerStateError(path, 0, f"unreadable topic metadata of the older single-node layout: {exc}") from None


def refuse_if_clustered(old: OldLayout, cluster_size: int) -> None:
    """An old single-node layout is migrated only by a node alone (a cluster of one)."""
    if cluster_size > 1:
        raise MigrationRefused(old.data_dir,
            f"{old.data_dir} holds {old.describe()} in the single-node layout of an older version, "
            f"which a node of a {cluster_size}-node cluster cannot take over; start it alone once to "
            f"migrate it (dcli server start --data-dir {old.data_dir}), stop it, then start it with --peers")


def migrate(client: CoordClient, old: OldLayout, broker_id: int) -> None:
    """Put the old layout's topics, offsets and producer id block into the tree (see the module's
    docstring), then rename the old files. Raises MigrationRefused when the tree has a different
    topic of the same name, DcliError when the tree cannot be written (nothing renamed then)."""
    for ensure in (meta.TOPICS, meta.CONFIG_TOPICS):
        client.ensure_path(ensure)
    for topic in old.topics:
        _migrate_topic(client, topic, broker_id)
    store = TreeOffsetStore(lambda: client)
    for group, offsets in old.offsets.items():
        store.restore(group, offsets)
    store.flush()
    if old.producer_id_block_end > 0:
        _raise_producer_id_block(client, broker_id, old.producer_id_block_end)
    _rename_old_files(old)
    log.info("migrated %s into the coordination tree", old.describe())


def _migrate_topic(client: CoordClient, topic: meta.TopicAssignment, broker_id: int) -> None:
    found = meta.read_assignment(client, topic.name)
    if found is not None:
        if found.topic_id != topic.topic_id:
            raise MigrationRefused(Path(meta.topic_path(topic.name)),
                f"topic {topic.name} of {topic.topic_id} in the older layout is topic {found.topic_id} in the "
                f"tree; move {topic.name}'s partition directories away to start")
        return                      # migrated by an earlier start that stopped before the rename
    mine = meta.TopicAssignment(topic.name, topic.topic_id, tuple((broker_id,) for _ in topic.replicas))
    state = meta.PartitionState(broker_id, 0, (broker_id,), 0)
    t = client.transaction()
    t.create(meta.topic_config_path(topic.name), meta.encode_topic_config(topic.configs))
    t.create(meta.topic_path(topic.name), mine.encode())
    t.create(meta.partitions_path(topic.name), b"")
    for p in range(mine.partitions):
        t.create(meta.partition_path(topic.name, p), b"")
        t.create(meta.state_path(topic.name, p), state.encode())
    t.commit()
    log.info("migrated topic %s (%d partitions) into the coordination tree", topic.name, mine.partitions)


def _raise_producer_id_block(client: CoordClient, broker_id: int, old_end: int) -> None:
    """The tree's next block starts at or past `old_end` (the old blocks were [start, end))."""
    doc = encode_producer_id_block(broker_id, old_end - PRODUCER_ID_BLOCK)
    while True:
        try:
            data, stat = client.get(PRODUCER_ID_BLOCK_PATH)
        except errors.NoNodeError:
            try:
                client.create(PRODUCER_ID_BLOCK_PATH, doc)
                return
            except errors.NodeExistsError:
                continue
        if int(json.loads(data.decode())["block_end"]) >= old_end:
            return
        try:
            client.set(PRODUCER_ID_BLOCK_PATH, doc, stat.version)
            return
        except errors.BadVersionError:
            continue


def _rename_old_files(old: OldLayout) -> None:
    for path in (old.broker_dir / TOPICS_FILE, old.broker_dir / PRODUCER_IDS_FILE, old.groups_dir):
        if path.exists():
            os.replace(path, path.with_name(path.name + MIGRATED))
            fsync_dir(path.parent)
