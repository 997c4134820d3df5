"""The partition directories of one broker, `<data_dir>/broker/<topic>-<n>`: made, found, checked
against the tree's topics and removed. What topics exist is the tree's business
(cluster_meta.py); this module only keeps the disk in line with it.

    dirs = PartitionDirs(data_dir / "broker")     # removes what an interrupted delete left
    path = dirs.ensure("chat", topic_id, 0)       # chat-0 with its partition.metadata
    dirs.delete("chat")                           # rename to *-delete, then remove
    dirs.remove_strays({"chat": topic_id})        # directories of topics the tree no longer has

Each directory holds `partition.metadata` with its topic's id, as in Kafka, so that a directory
left by a deleted topic is never taken for a new topic of the same name. Removal renames first
(`<topic>-<n>.<uuid>-delete`, then fsync of the directory) and deletes after, so a crash leaves
either the whole partition or a name that the next start removes.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Mapping

from dcli.wire.errors import InvalidTopicError
from dcli.wire.topics import parse_partition_dir, partition_dir_name
from dcli_server.storage.files import fsync_dir, write_atomically

log = logging.getLogger(__name__)

PARTITION_METADATA = "partition.metadata"
DELETE_SUFFIX = "-delete"


class PartitionDirs:
    """See the module's docstring. Not thread-safe: one caller at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove([e for e in self.directory.iterdir() if e.is_dir() and e.name.endswith(DELETE_SUFFIX)])

    def path(self, topic: str, partition: int) -> Path:
        return self.directory / partition_dir_name(topic, partition)

    def found(self) -> dict[str, list[int]]:
        """The partition directories on disk: topic -> partition numbers, sorted."""
        out: dict[str, list[int]] = {}
        for entry in self.directory.iterdir():
            if not entry.is_dir() or entry.name.endswith(DELETE_SUFFIX):
                continue
            try:
                topic, n = parse_partition_dir(entry.name)
            except InvalidTopicError:
                continue
            out.setdefault(topic, []).append(n)
        return {t: sorted(ns) for t, ns in out.items()}

    def ensure(self, topic: str, topic_id: str, partition: int) -> Path:
        """The partition's directory, made (with its partition.metadata) if it is not there.
        One that an older topic of the same name left (another topic id) is removed first."""
        path = self.path(topic, partition)
        stored = read_topic_id(path)
        if stored == topic_id:
            return path
        if stored is not None:
            log.warning("broker: removing %s, left by an older topic of the same name", path.name)
            self._remove([self._mark_for_deletion(path)])
        path.mkdir(exist_ok=True)
        write_atomically(path / PARTITION_METADATA, f"version: 0\ntopic_id: {topic_id}\n".encode())
        fsync_dir(self.directory)
        return path

    def delete(self, topic: str, partitions: Iterable[int] | None = None) -> None:
        """Remove the topic's partition directories (all, or these); the caller closed their logs."""
        wanted = self.found().get(topic, []) if partitions is None else partitions
        self._remove([self._mark_for_deletion(self.path(topic, n)) for n in wanted
                      if self.path(topic, n).exists()])

    def remove_strays(self, topics: Mapping[str, str], keep: Iterable[str] = ()) -> list[str]:
        """Remove the directories of topics that `topics` (name -> topic id, the tree's) does not
        have, or has under another id (an older topic of the same name), except those of `keep`
        (open here). Returns the directory names removed."""
        keep = set(keep)
        doomed = []
        for topic, numbers in self.found().items():
            if topic in keep:
                continue
            for n in numbers:
                path = self.path(topic, n)
                stored = read_topic_id(path)
                if topic not in topics or (stored is not None and stored != topics[topic]):
                    log.warning("broker: removing %s, which belongs to no current topic", path.name)
                    doomed.append(self._mark_for_deletion(path))
        self._remove(doomed)
        return [p.name for p in doomed]

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


def read_topic_id(path: Path) -> str | None:
    """The topic id in a partition directory's partition.metadata (None: missing or unreadable)."""
    try:
        text = (path / PARTITION_METADATA).read_text()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "topic_id":
            return value.strip()
    return None
