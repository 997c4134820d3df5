"""Durable storage for one node: the write-ahead log, snapshots, the data-directory lock.

Pure standard library; fsync and CRC checks live here and nowhere else. Nothing in this
package knows what the bytes it stores mean.
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
