"""The broker's topics: names, ids, partition counts, replica lists and config overrides, kept
durably in the broker's directory, and the partition directories that go with them.

    store = TopicStore(broker_dir)             # reads topics.json, removes stray directories
    info = plan_topic("chat", 3, 1, {}, {}, brokers=[1], config=BrokerConfig(), existing=store.topics)
    store.create(info)                         # topics.json, then chat-0 .. chat-2
    store.delete("chat")                       # topics.json, then rename to *-delete, then remove

`topics.json` is replaced whole (temporary file, fsync, rename, fsync of the directory), so it
always holds the state before or after a change. It is the commit point: a topic exists once it
is there, and partition directories are made (or removed) after. On open, a directory that
topics.json does not account for (a deleted topic, a dropped partition, an older topic of the
same name: `partition.metadata` holds the topic id, as in Kafka) is renamed to
`<topic>-<n>.<uuid>-delete` and removed, so no crash leaves half a topic behind.

The planning functions check a request against Kafka's rules and messages; nothing here knows
about the partitions' logs.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from dcli.wire.errors import (BrokerError, InvalidPartitionsError, InvalidReplicaAssignmentError,
                              InvalidRequestError, InvalidTopicError, TopicExistsError,
                              UnknownTopicOrPartitionError)
from dcli.wire.topics import collides, parse_partition_dir, partition_dir_name, validate_topic
from dcli_server.broker.assignment import assign_replicas, check_replication_factor as _check_replication_factor
from dcli_server.broker.config import BrokerConfig, validate_topic_configs
from dcli_server.storage.files import fsync_dir, write_atomically
from dcli_server.storage.wal import CorruptLogError

log = logging.getLogger(__name__)

TOPICS_FILE = "topics.json"
PARTITION_METADATA = "partition.metadata"
DELETE_SUFFIX = "-delete"
_FORMAT_VERSION = 1


class BrokerStateError(CorruptLogError):
    """The broker's directory holds something that starting would have to destroy."""

    def __str__(self) -> str:
        return f"broker directory {self.path}: {self.problem}; the server refuses to start"


# -- topics -------------------------------------------------------------------------------------


def new_topic_id() -> str:
    """Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64 without padding,
    never all zeros and never starting with '-' (a command line would take it for an option)."""
    while True:
        raw = os.urandom(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if any(raw) and not text.startswith("-"):
            return text


@dataclass(frozen=True)
class TopicInfo:
    """One topic as the broker keeps it; `replicas[p]` lists partition p's brokers, the
    preferred leader first."""

    name: str
    topic_id: str
    replicas: tuple[tuple[int, ...], ...]
    configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def partitions(self) -> int:
        return len(self.replicas)

    @property
    def replication_factor(self) -> int:
        return len(self.replicas[0]) if self.replicas else 0

    def to_json(self) -> dict:
        return {"name": self.name, "id": self.topic_id, "replicas": [list(r) for r in self.replicas],
                "configs": dict(self.configs)}

    @classmethod
    def from_json(cls, d: dict) -> TopicInfo:
        return cls(d["name"], d["id"], tuple(tuple(int(b) for b in r) for r in d["replicas"]),
                   {str(k): str(v) for k, v in d.get("configs", {}).items()})


def _check_assignments(assignments: Mapping[int, list[int]], brokers: list[int],
                       first_partition: int = 0) -> list[tuple[int, ...]]:
    """Explicit replica lists (`--replica-assignment`), checked as Kafka's controller does."""
    expected = list(range(first_partition, first_partition + len(assignments)))
    if sorted(assignments) != expected:
        raise InvalidReplicaAssignmentError(message=(
            "Partitions should be a consecutive 0-based integer sequence."
            if first_partition == 0 else
            f"The manual partition assignment must cover partitions {expected[0]} to {expected[-1]}."))
    out = []
    width = None
    for p in expected:
        replicas = list(assignments[p])
        if not replicas:
            raise InvalidReplicaAssignmentError(
                message="The manual partition assignment includes an empty replica list.")
        if len(set(replicas)) != len(replicas):
            raise InvalidReplicaAssignmentError(
                message="The manual partition assignment specifies the same node id more than once.")
        for b in replicas:
            if b not in brokers:
                raise InvalidReplicaAssignmentError(message=(
                    f"The manual partition assignment includes broker {b}, but no broker with "
                    "that ID is registered."))
        if width is not None and len(replicas) != width:
            raise InvalidReplicaAssignmentError(message=(
                f"The manual partition assignment includes a partition with {len(replicas)} "
                f"replica(s), but this is not consistent with previous partitions, which have "
                f"{width} replica(s)."))
        width = len(replicas)
        out.append(tuple(replicas))
    return out


def _check_partition_budget(adding: int, existing: Mapping[str, TopicInfo], config: BrokerConfig) -> None:
    held = sum(t.partitions for t in existing.values())
    if held + adding > config.max_partitions:
        raise InvalidPartitionsError(message=(
            f"Unable to add {adding} partition(s): the broker holds {held} of at most "
            f"{config.max_partitions} partitions (dcli.max.partitions)."))


def plan_topic(name: str, num_partitions: int, replication_factor: int,
               configs: Mapping[str, str], assignments: Mapping[int, list[int]], *,
               brokers: list[int], config: BrokerConfig, existing: Mapping[str, TopicInfo]) -> TopicInfo:
    """A new topic as CreateTopics asks for it (-1: the broker's default), checked in Kafka's
    order: name, existence, collision, partitions, replication, configs."""
    validate_topic(name)
    if name in existing:
        raise TopicExistsError(message=f"Topic '{name}' already exists.")
    for other in existing:
        if collides(name, other):
            raise InvalidTopicError(message=f"Topic '{name}' collides with existing topic: {other}")
    if assignments:
        if num_partitions != -1 or replication_factor != -1:
            raise InvalidRequestError(message=(
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time."))
        replicas = _check_assignments(assignments, brokers)
    else:
        partitions = config.num_partitions if num_partitions == -1 else num_partitions
        rf = config.default_replication_factor if replication_factor == -1 else replication_factor
        if partitions <= 0:
            raise InvalidPartitionsError(message="Number of partitions must be larger than 0.")
        _check_replication_factor(rf, brokers)
        replicas = assign_replicas(partitions, rf, sorted(brokers))
    _check_partition_budget(len(replicas), existing, config)
    overrides = validate_topic_configs(configs, config)
    return TopicInfo(name, new_topic_id(), tuple(replicas), overrides)


def plan_partitions(info: TopicInfo, count: int, *, brokers: list[int], config: BrokerConfig,
                    existing: Mapping[str, TopicInfo]) -> TopicInfo:
    """`info` grown to `count` partitions (CreatePartitions: only an increase)."""
    if count < info.partitions:
        raise InvalidPartitionsError(message=(
            f"The topic {info.name} currently has {info.partitions} partition(s); {count} would "
            "not be an increase."))
    if count == info.partitions:
        raise InvalidPartitionsError(message=f"Topic already has {info.partitions} partition(s).")
    rf = info.replication_factor
    _check_replication_factor(rf, brokers)
    _check_partition_budget(count - info.partitions, existing, config)
    more = assign_replicas(count - info.partitions, rf, sorted(brokers), first_partition=info.partitions)
    return TopicInfo(info.name, info.topic_id, info.replicas + tuple(more), info.configs)


# -- the store ----------------------------------------------------------------------------------


class TopicStore:
    """The topics of one broker, in `directory` (the broker's, which also holds the
    partition directories). Not thread-safe: one caller at a time (the broker's admin lock)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.topics: dict[str, TopicInfo] = {}
        self._load()
        self._remove_strays()

    @property
    def path(self) -> Path:
        return self.directory / TOPICS_FILE

    def get(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.directory / partition_dir_name(topic, partition)

    # -- loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            found = [p.name for p in self._partition_dirs()]
            if found:
                raise BrokerStateError(self.directory, 0, (
                    f"{TOPICS_FILE} is missing but {len(found)} partition directories are there "
                    f"(e.g. {found[0]}); restore {TOPICS_FILE} or remove them")) from None
            return
        try:
            doc = json.loads(raw)
            if doc.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unknown format version {doc.get('version')!r}")
            for d in doc["topics"]:
                info = TopicInfo.from_json(d)
                validate_topic(info.name)
                self.topics[info.name] = info
        except (ValueError, KeyError, TypeError, BrokerError) as exc:
            raise BrokerStateError(self.path, 0, f"unreadable topic metadata: {exc}") from None

    def _partition_dirs(self) -> list[Path]:
        out = []
        for entry in self.directory.iterdir():
            if entry.is_dir() and not entry.name.endswith(DELETE_SUFFIX):
                try:
                    parse_partition_dir(entry.name)
                except InvalidTopicError:
                    continue
                out.append(entry)
        return out

    def _remove_strays(self) -> None:
        doomed = []
        for entry in self.directory.iterdir():
            if entry.is_dir() and entry.name.endswith(DELETE_SUFFIX):
                doomed.append(entry)
        for entry in self._partition_dirs():
            topic, n = parse_partition_dir(entry.name)
            info = self.topics.get(topic)
            stored_id = _read_topic_id(entry)
            if info is None or n >= info.partitions or (stored_id is not None and stored_id != info.topic_id):
                log.warning("broker: removing %s, which belongs to no current topic", entry.name)
                doomed.append(self._mark_for_deletion(entry))
            elif stored_id is None:
                _write_partition_metadata(entry, info.topic_id)
        self._remove(doomed)

    # -- changes ----------------------------------------------------------------------------

    def _save(self, topics: dict[str, TopicInfo]) -> None:
        doc = {"version": _FORMAT_VERSION,
               "topics": [topics[name].to_json() for name in sorted(topics)]}
        write_atomically(self.path, json.dumps(doc, indent=1).encode())

    def create(self, info: TopicInfo, *, hosted: int | None = None) -> None:
        """Record a planned topic, then make its partition directories (with `hosted`, only
        those of the partitions that broker is a replica of)."""
        topics = dict(self.topics)
        topics[info.name] = info
        self._save(topics)
        self.topics = topics
        self._make_partition_dirs(info, [p for p in range(info.partitions)
                                         if hosted is None or hosted in info.replicas[p]])

    def add_partitions(self, info: TopicInfo) -> None:
        """Record a topic grown by `plan_partitions`, then make the new directories."""
        old = self.topics[info.name]
        topics = dict(self.topics)
        topics[info.name] = info
        self._save(topics)
        self.topics = topics
        self._make_partition_dirs(info, range(old.partitions, info.partitions))

    def ensure_partition_dir(self, info: TopicInfo, partition: int) -> Path:
        """The partition's directory, made if a crash came between topics.json and mkdir."""
        path = self.partition_dir(info.name, partition)
        if not (path / PARTITION_METADATA).exists():
            self._make_partition_dirs(info, [partition])
        return path

    def _make_partition_dirs(self, info: TopicInfo, partitions) -> None:
        for p in partitions:
            path = self.partition_dir(info.name, p)
            path.mkdir(exist_ok=True)
            _write_partition_metadata(path, info.topic_id)
        fsync_dir(self.directory)

    def delete(self, name: str) -> TopicInfo:
        """Forget a topic, then remove its partition directories (the caller has closed
        their logs). Raises UnknownTopicOrPartitionError."""
        info = self.topics.get(name)
        if info is None:
            raise UnknownTopicOrPartitionError()
        topics = dict(self.topics)
        del topics[name]
        self._save(topics)
        self.topics = topics
        doomed = []
        for p in range(info.partitions):
            path = self.partition_dir(name, p)
            if path.exists():
                doomed.append(self._mark_for_deletion(path))
        self._remove(doomed)
        return info

    def _mark_for_deletion(self, path: Path) -> Path:
        target = path.with_name(f"{path.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
        os.rename(path, target)
        return target

    def _remove(self, doomed: list[Path]) -> None:
        if not doomed:
            return
        fsync_dir(self.directory)  # the renames first: a crash now leaves only *-delete names
        for path in doomed:
            shutil.rmtree(path, ignore_errors=True)
        fsync_dir(self.directory)


def _write_partition_metadata(path: Path, topic_id: str) -> None:
    write_atomically(path / PARTITION_METADATA, f"version: 0\ntopic_id: {topic_id}\n".encode())


def _read_topic_id(path: Path) -> str | None:
    try:
        text = (path / PARTITION_METADATA).read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "topic_id":
            return value.strip()
    return None
