"""Durable storage for one node: the write-ahead log, snapshots, the data-directory lock, and
the broker's partition logs (segments.py).

fsync and CRC checks live here and nowhere else. The coordination log needs only the standard
library; the partition log checks Kafka's CRC-32C with the `crc32c` package. Nothing here knows
what the bytes mean beyond the record batch header.
"""

from dcli_server.storage.lock import DataDirLock, DataDirLockedError
from dcli_server.storage.snapshot import SnapshotStore
from dcli_server.storage.wal import CorruptLogError, FsyncMode, WriteAheadLog

__all__ = [
    "CorruptLogError",
    "DataDirLock",
    "DataDirLockedError",
    "FsyncMode",
    "SnapshotStore",
    "WriteAheadLog",
]
