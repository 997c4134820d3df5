"""Snapshots: whole-state images written atomically, checked by CRC, a few kept.

The store owns the files ``snapshot.<zxid, 20 decimal digits>`` in its directory. Each is::

    offset  size  field
    0       4     magic   b"DSN1"
    4       4     crc     zlib.crc32 over bytes 8.. (zxid, length, payload), big-endian
    8       8     zxid    big-endian unsigned; must match the file name
    16      8     length  payload length in bytes, big-endian unsigned
    24      n     payload

A snapshot is written to ``<name>.tmp``, fsync'd, renamed into place and the directory fsync'd,
so a crash leaves either the old set of snapshots or the new one, never a half-written file
under a final name. Older snapshots are kept (``keep``) so that a damaged newest one can fall
back to an older one; the WAL must therefore keep every record after the oldest kept snapshot.

Usage::

    store = SnapshotStore(data_dir / "snapshots")
    store.save(zxid, tree.serialize())
    found = store.latest()          # (zxid, payload) or None
    wal.purge_before(store.oldest_zxid() or 0)
"""

from __future__ import annotations

import logging
import re
import struct
import threading
import zlib
from pathlib import Path

from dcli_server.storage.files import numbered_files, write_atomically

log = logging.getLogger(__name__)

MAGIC = b"DSN1"
_HEADER = struct.Struct(">4sIQQ")  # magic, crc, zxid, length
_CRC_FROM = 8
_NAME = re.compile(r"snapshot\.(\d{20})")
_TMP_NAME = re.compile(r"snapshot\.\d{20}\.tmp")


class SnapshotStore:
    def __init__(self, directory: Path, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.directory = Path(directory)
        self.keep = keep
        # save() and the .tmp cleanup in latest() must not interleave inside one process;
        # across processes the data-directory lock keeps a second server out.
        self._lock = threading.Lock()

    def _snapshots(self) -> list[tuple[int, Path]]:
        """(zxid, path) of every snapshot file, oldest first."""
        return numbered_files(self.directory, _NAME)

    def save(self, zxid: int, payload: bytes) -> Path:
        """Write the snapshot for zxid durably and atomically, then prune to `keep` files."""
        body = struct.pack(">QQ", zxid, len(payload))
        crc = zlib.crc32(payload, zlib.crc32(body))
        final = self.directory / f"snapshot.{zxid:020d}"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(final, (MAGIC + struct.pack(">I", crc) + body, payload))
            # Pruning needs no fsync: a deletion lost in a crash only leaves an extra snapshot.
            for _, old in self._snapshots()[: -self.keep]:
                old.unlink(missing_ok=True)
        return final

    def latest(self) -> tuple[int, bytes] | None:
        """The newest snapshot whose CRC checks, as (zxid, payload); damaged newer ones are
        skipped with a warning. Leftover .tmp files (a crash during save) are removed."""
        with self._lock:
            if self.directory.is_dir():
                for entry in self.directory.iterdir():
                    if _TMP_NAME.fullmatch(entry.name):
                        log.info("removing unfinished snapshot %s", entry)
                        entry.unlink(missing_ok=True)
        for zxid, path in reversed(self._snapshots()):
            payload = self._read(zxid, path)
            if payload is not None:
                return zxid, payload
        return None

    def _read(self, zxid: int, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # pruned by a concurrent save
            return None
        problem = None
        if len(data) < _HEADER.size:
            problem = f"short header ({len(data)} bytes)"
        else:
            magic, crc, stored_zxid, length = _HEADER.unpack_from(data)
            if magic != MAGIC:
                problem = f"bad marker {magic!r}"
            elif stored_zxid != zxid:
                problem = f"header says zxid {stored_zxid}"
            elif len(data) - _HEADER.size != length:
                problem = f"payload is {len(data) - _HEADER.size} bytes, header says {length}"
            elif zlib.crc32(memoryview(data)[_CRC_FROM:]) != crc:
                problem = "CRC mismatch"
        if problem is not None:
            log.warning("skipping damaged snapshot %s: %s; trying an older one", path, problem)
            return None
        return data[_HEADER.size :]

    def oldest_zxid(self) -> int | None:
        """The zxid of the oldest kept snapshot: the WAL may be purged only up to here."""
        snapshots = self._snapshots()
        return snapshots[0][0] if snapshots else None
