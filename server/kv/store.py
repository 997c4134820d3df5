"""One node's key-value storage: sqlite3 in WAL mode, one row per key holding its siblings.

A row keeps the key's reconciled sibling set (versions.encode_siblings: dots, contexts, values
and tombstones), the digest of that set for the Merkle trees, the key's ring token, and, while
every sibling is a tombstone, the time it became so. Every change goes through
`versions.reconcile` inside one `BEGIN IMMEDIATE` transaction, so a replica only ever moves
forward whatever order writes, repairs and anti-entropy arrive in.

Durability: `journal_mode=WAL` with `synchronous=FULL`. In WAL mode FULL fsyncs the log at
every commit, so a write is on disk before `write`/`apply` returns and the coordinator may
acknowledge it. NORMAL would fsync only at checkpoints: safe against a crash of the process
but able to lose the last commits on power loss, which breaks "R + W > N returns an acknowledged
write"; it is offered for tests and benchmarks only. `fullfsync` is on as well, which makes
macOS flush the drive's cache (a no-op elsewhere). A torn tail of the WAL after a crash is
sqlite's to discard on open: its frames carry checksums.

Tombstones stay for `tombstone_grace_ms` (10 days by default, Cassandra's gc_grace) so that
anti-entropy can carry the delete to every replica first; `collect_tombstones` then removes
them. A replica that was away longer than the grace period can bring a deleted value back.
Time is passed in (`now_ms`), never read here, so tests drive it.

Thread safety: one connection guarded by a lock; call the methods from an asyncio server with
`await asyncio.to_thread(store.get, keyspace, key)`. Long iterations take the lock per page.

    >>> store = KVStore(":memory:")
    >>> new, siblings = store.write("default", b"k", b"v1", VectorClock(), "n1", now_ms=0)
    >>> [v.value for v in store.get("default", b"k")], new.dot
    ([b'v1'], ('n1', 1))
"""
from __future__ import annotations

import os
import sqlite3
import threading
from typing import Iterable, Iterator

from dcli.wire.kv_keys import (InvalidKeyError, prefix_end, validate_key, validate_keyspace,
                               validate_value)
from dcli_server.kv.ring import FULL_RING, KeyRange, TokenRange, token
from dcli_server.kv.versions import (VectorClock, Version, context_of, decode_siblings,
                                     encode_siblings, new_version, reconcile, version_hash)

DEFAULT_TOMBSTONE_GRACE_MS = 10 * 24 * 3600 * 1000
DEFAULT_SCAN_LIMIT = 1000
_PAGE = 512
_SIGNED = 1 << 63       # sqlite integers are signed 64-bit: store token - 2**63 to keep order
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    keyspace      TEXT    NOT NULL,
    key           BLOB    NOT NULL,
    token         INTEGER NOT NULL,
    siblings      BLOB    NOT NULL,
    vhash         BLOB    NOT NULL,
    dead_since_ms INTEGER,
    UNIQUE (keyspace, key)
);
CREATE INDEX IF NOT EXISTS kv_by_token ON kv (keyspace, token, key);
CREATE INDEX IF NOT EXISTS kv_dead ON kv (dead_since_ms) WHERE dead_since_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS hints (
    id       INTEGER PRIMARY KEY,
    target   TEXT    NOT NULL,
    keyspace TEXT    NOT NULL,
    key      BLOB    NOT NULL,
    siblings BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS hints_by_target ON hints (target, id);
CREATE TABLE IF NOT EXISTS dot_floor (
    node    TEXT PRIMARY KEY,
    counter INTEGER NOT NULL
);
"""


class StoreClosedError(RuntimeError):
    pass


Entry = tuple[bytes, tuple[Version, ...]]


class KVStore:
    """The key-value rows of one node, in one sqlite3 file (`":memory:"` for a throwaway)."""

    def __init__(self, path: str | os.PathLike, *, synchronous: str = "FULL",
                 tombstone_grace_ms: int = DEFAULT_TOMBSTONE_GRACE_MS):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = str(path)
        self.tombstone_grace_ms = tombstone_grace_ms
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False)
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal" and self.path != ":memory:":
            raise RuntimeError(f"sqlite refused WAL mode for {self.path} (got {mode})")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA fullfsync=ON")
        db.execute("PRAGMA checkpoint_fullfsync=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            raise RuntimeError(f"{self.path} has schema version {version}, this build knows "
                               f"{_SCHEMA_VERSION}")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> KVStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosedError(f"the store at {self.path} is closed")
        return self._db

    def pragma(self, name: str):
        with self._lock:
            return self._conn().execute(f"PRAGMA {name}").fetchone()[0]

    # -- reads --------------------------------------------------------------------------------

    def get(self, keyspace: str, key: bytes) -> tuple[Version, ...]:
        """The key's siblings, tombstones included; () when the store has never heard of it
        (or collected its tombstones)."""
        validate_keyspace(keyspace)
        key = validate_key(key)
        with self._lock:
            row = self._conn().execute("SELECT siblings FROM kv WHERE keyspace=? AND key=?",
                                       (keyspace, key)).fetchone()
        return decode_siblings(row[0]) if row else ()

    def scan(self, keyspace: str, *, prefix: bytes | None = None, start: bytes = b"",
             end: bytes | None = None, limit: int = DEFAULT_SCAN_LIMIT,
             include_tombstones: bool = False) -> list[Entry]:
        """Keys in [start, end) (or starting with `prefix`) in byte order, at most `limit`.
        Page on by calling again with `start` just past the last key (`last + b"\\0"`).
        Keys whose siblings are all tombstones are left out unless asked for."""
        validate_keyspace(keyspace)
        if limit < 1:
            raise InvalidKeyError(message=f"Invalid scan: limit must be positive, not {limit}")
        if prefix is not None:
            if start or end is not None:
                raise InvalidKeyError(message="Invalid scan: give a prefix or a range, not both")
            start, end = bytes(prefix), prefix_end(bytes(prefix))
        sql = "SELECT key, siblings FROM kv WHERE keyspace=? AND key>=?"
        args: list = [keyspace, bytes(start)]
        if end is not None:
            sql += " AND key<?"
            args.append(bytes(end))
        if not include_tombstones:
            sql += " AND dead_since_ms IS NULL"
        sql += " ORDER BY key LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn().execute(sql, args).fetchall()
        return [(bytes(k), decode_siblings(s)) for k, s in rows]

    def hashes(self, keyspace: str, span: TokenRange = FULL_RING) -> Iterator[tuple[bytes, bytes]]:
        """(key, version hash) of every key whose token is in `span`, tombstones included,
        in token order: the input of a Merkle tree (merkle.MerkleTree.build)."""
        validate_keyspace(keyspace)
        yield from self._token_pages(keyspace, span, "vhash")

    def _token_pages(self, keyspace: str, span: TokenRange, column: str, after: bytes | None = None):
        lo, hi = span.start - _SIGNED, span.end - _SIGNED
        if span.start < span.end:
            pieces = [(lo, hi)]
        elif span.start > span.end:
            pieces = [(lo, _SIGNED - 1), (None, hi)]     # wraps past the top of the ring
        else:
            pieces = [(None, _SIGNED - 1)]
        position = None
        if after is not None:       # go on past `after`: from its place in the piece that holds it
            position = (token(after) - _SIGNED, bytes(after))
            held = [i for i, (low, upto) in enumerate(pieces) if (low is None or position[0] > low)
                    and position[0] <= upto]
            if not held:
                return              # not a key of this span: nothing follows it here
            pieces = pieces[held[0]:]
        for i, (low, upto) in enumerate(pieces):
            yield from self._pages(
                "SELECT token, key, " + column + " FROM kv WHERE keyspace=? AND token<=?{cond} "
                "ORDER BY token, key LIMIT ?", keyspace, upto, low, position if i == 0 else None)

    def entries(self, keyspace: str, span: TokenRange = FULL_RING, after: bytes | None = None) -> Iterator[Entry]:
        """(key, siblings) of every key whose token is in `span`, tombstones included, in token
        order (past key `after` when given): what a range's new owner streams."""
        validate_keyspace(keyspace)
        for key, raw in self._token_pages(keyspace, span, "siblings", after):
            yield key, decode_siblings(raw)

    def entries_in_keys(self, keyspace: str, keys: KeyRange, after: bytes | None = None) -> Iterator[Entry]:
        start = bytes(keys.start) if after is None else max(bytes(keys.start), bytes(after) + b"\0")
        while True:
            page = self.scan(keyspace, start=start, end=keys.end, limit=_PAGE, include_tombstones=True)
            yield from page
            if len(page) < _PAGE:
                return
            start = page[-1][0] + b"\0"

    def hashes_in_keys(self, keyspace: str, keys: KeyRange) -> Iterator[tuple[bytes, bytes]]:
        """(key, version hash) of every key in a key range, tombstones included: the Merkle
        input for a range-sharded keyspace."""
        validate_keyspace(keyspace)
        cursor = bytes(keys.start)
        first = True
        while True:
            sql = "SELECT key, vhash FROM kv WHERE keyspace=? AND key" + (">=?" if first else ">?")
            args: list = [keyspace, cursor]
            if keys.end is not None:
                sql += " AND key<?"
                args.append(keys.end)
            sql += " ORDER BY key LIMIT ?"
            args.append(_PAGE)
            with self._lock:
                rows = self._conn().execute(sql, args).fetchall()
            for k, h in rows:
                yield bytes(k), bytes(h)
            if len(rows) < _PAGE:
                return
            cursor, first = bytes(rows[-1][0]), False

    def _pages(self, template: str, keyspace: str, upto: int, after: int | None,
               position: tuple[int, bytes] | None = None):
        while True:
            if position is not None:
                cond, args = " AND (token, key) > (?, ?)", [keyspace, upto, *position]
            elif after is not None:
                cond, args = " AND token>?", [keyspace, upto, after]
            else:
                cond, args = "", [keyspace, upto]
            with self._lock:
                rows = self._conn().execute(template.format(cond=cond), [*args, _PAGE]).fetchall()
            for _, k, h in rows:
                yield bytes(k), bytes(h)
            if len(rows) < _PAGE:
                return
            position = (rows[-1][0], rows[-1][1])

    def keyspaces(self) -> list[str]:
        with self._lock:
            rows = self._conn().execute("SELECT DISTINCT keyspace FROM kv ORDER BY keyspace")
            return [r[0] for r in rows.fetchall()]

    def count(self, keyspace: str, *, include_tombstones: bool = False) -> int:
        sql = "SELECT count(*) FROM kv WHERE keyspace=?"
        if not include_tombstones:
            sql += " AND dead_since_ms IS NULL"
        with self._lock:
            return self._conn().execute(sql, (keyspace,)).fetchone()[0]

    # -- writes -------------------------------------------------------------------------------

    def write(self, keyspace: str, key: bytes, value: bytes | None, context: VectorClock | None,
              node: str, now_ms: int) -> tuple[Version, tuple[Version, ...]]:
        """A client's put (or delete, value None) coordinated by this node: a new version with
        a fresh dot of `node` after `context`, reconciled with what is here and durable on
        return. Returns the new version and the key's resulting siblings (what the coordinator
        sends to the other replicas). Context None: after every version held here (read and
        written in one transaction, so two such writes on this node never become siblings)."""
        validate_keyspace(keyspace)
        key = validate_key(key)
        if value is not None:
            value = validate_value(value)
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT siblings, dead_since_ms FROM kv WHERE keyspace=? AND key=?",
                                 (keyspace, key)).fetchone()
                held = decode_siblings(row[0]) if row else ()
                if context is None:
                    context = context_of(held)
                floor = db.execute("SELECT counter FROM dot_floor WHERE node=?", (node,)).fetchone()
                version = new_version(node, value, context, held, floor[0] if floor else 0)
                db.execute("INSERT INTO dot_floor (node, counter) VALUES (?, ?) "
                           "ON CONFLICT (node) DO UPDATE SET counter=excluded.counter",
                           (node, version.counter))
                merged = self._store(db, keyspace, key, row, held, [version], now_ms)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return version, merged

    def put(self, keyspace: str, key: bytes, value: bytes, context: VectorClock, node: str,
            now_ms: int) -> tuple[Version, tuple[Version, ...]]:
        if value is None:
            raise InvalidKeyError(message="Invalid value: a put needs a value; use delete")
        return self.write(keyspace, key, value, context, node, now_ms)

    def delete(self, keyspace: str, key: bytes, context: VectorClock, node: str,
               now_ms: int) -> tuple[Version, tuple[Version, ...]]:
        """A tombstone after `context`: it supersedes the versions the context covers."""
        return self.write(keyspace, key, None, context, node, now_ms)

    def apply(self, keyspace: str, key: bytes, versions: Iterable[Version],
              now_ms: int) -> tuple[Version, ...]:
        """Reconcile versions from another replica (replication, read repair, anti-entropy,
        hand-off) into this one; returns the key's siblings afterwards."""
        validate_keyspace(keyspace)
        key = validate_key(key)
        versions = list(versions)
        for v in versions:
            if v.value is not None:
                validate_value(v.value)
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT siblings, dead_since_ms FROM kv WHERE keyspace=? AND key=?",
                                 (keyspace, key)).fetchone()
                held = decode_siblings(row[0]) if row else ()
                merged = self._store(db, keyspace, key, row, held, versions, now_ms)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return merged

    def apply_many(self, keyspace: str, entries: Iterable[tuple[bytes, Iterable[Version]]],
                   now_ms: int) -> int:
        """`apply` for many keys in one transaction (one fsync): streamed ranges, hints,
        anti-entropy. Returns how many keys changed."""
        return self.apply_groups([(keyspace, entries)], now_ms)

    def apply_groups(self, groups: Iterable[tuple[str, Iterable[tuple[bytes, Iterable[Version]]]]],
                     now_ms: int) -> int:
        """`apply_many` for several keyspaces' entries in one transaction: the replicas' group
        commit, where concurrent replica writes share one fsync."""
        checked = []
        for keyspace, entries in groups:
            validate_keyspace(keyspace)
            for key, versions in entries:
                versions = list(versions)
                for v in versions:
                    if v.value is not None:
                        validate_value(v.value)
                checked.append((keyspace, validate_key(key), versions))
        changed = 0
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                for keyspace, key, versions in checked:
                    row = db.execute("SELECT siblings, dead_since_ms FROM kv WHERE keyspace=? AND key=?",
                                     (keyspace, key)).fetchone()
                    held = decode_siblings(row[0]) if row else ()
                    if self._store(db, keyspace, key, row, held, versions, now_ms) != held:
                        changed += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return changed

    def mint(self, node: str, value: bytes | None, context: VectorClock | None) -> Version:
        """A new version for a write this node coordinates without being a replica of the key
        (nothing is stored here): the dot's counter is above every one `node` has used."""
        if value is not None:
            value = validate_value(value)
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                floor = db.execute("SELECT counter FROM dot_floor WHERE node=?", (node,)).fetchone()
                version = new_version(node, value, context or VectorClock(), (), floor[0] if floor else 0)
                db.execute("INSERT INTO dot_floor (node, counter) VALUES (?, ?) "
                           "ON CONFLICT (node) DO UPDATE SET counter=excluded.counter",
                           (node, version.counter))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return version

    # -- hints: writes kept for a replica that was down -------------------------------------

    def add_hints(self, target: str, keyspace: str,
                  entries: Iterable[tuple[bytes, Iterable[Version]]]) -> None:
        """Keep versions for `target` until it comes back; durable on return."""
        validate_keyspace(keyspace)
        rows = [(target, keyspace, validate_key(k), encode_siblings(reconcile(v))) for k, v in entries]
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO hints (target, keyspace, key, siblings) VALUES (?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def hints_for(self, target: str, limit: int = _PAGE) -> list[tuple[int, str, bytes, tuple[Version, ...]]]:
        """The oldest hints for `target`: (id, keyspace, key, versions)."""
        with self._lock:
            rows = self._conn().execute(
                "SELECT id, keyspace, key, siblings FROM hints WHERE target=? ORDER BY id LIMIT ?",
                (target, limit)).fetchall()
        return [(i, ks, bytes(k), decode_siblings(s)) for i, ks, k, s in rows]

    def drop_hints(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM hints WHERE id=?", [(i,) for i in ids])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def hint_targets(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn().execute("SELECT target, count(*) FROM hints GROUP BY target").fetchall()
        return {t: n for t, n in rows}

    def load_bytes(self) -> int:
        with self._lock:
            db = self._conn()
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        return pages * size

    def _store(self, db, keyspace, key, row, held, incoming, now_ms) -> tuple[Version, ...]:
        merged = reconcile(held, incoming)
        if row is not None and merged == held:
            return held
        if not merged:
            return merged
        # the grace period runs from the last change: a newer delete starts it again
        dead_since = now_ms if all(v.is_tombstone for v in merged) else None
        db.execute(
            "INSERT INTO kv (keyspace, key, token, siblings, vhash, dead_since_ms) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (keyspace, key) DO UPDATE SET "
            "siblings=excluded.siblings, vhash=excluded.vhash, dead_since_ms=excluded.dead_since_ms",
            (keyspace, key, token(key) - _SIGNED, encode_siblings(merged), version_hash(merged),
             dead_since))
        return merged

    def collect_tombstones(self, now_ms: int, keyspace: str | None = None) -> int:
        """Remove keys that have been all tombstones for longer than the grace period;
        returns how many went."""
        sql = "DELETE FROM kv WHERE dead_since_ms IS NOT NULL AND dead_since_ms <= ?"
        args: list = [now_ms - self.tombstone_grace_ms]
        if keyspace is not None:
            sql += " AND keyspace=?"
            args.append(validate_keyspace(keyspace))
        with self._lock:
            return self._conn().execute(sql, args).rowcount

    def drop_keyspace(self, keyspace: str) -> int:
        validate_keyspace(keyspace)
        with self._lock:
            return self._conn().execute("DELETE FROM kv WHERE keyspace=?", (keyspace,)).rowcount

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (sqlite also does this every 1000 pages)."""
        with self._lock:
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
