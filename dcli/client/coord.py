"""CoordClient: a ZooKeeper-style session with every tree operation, sync and async.

    from dcli.client import CoordClient

    with CoordClient("127.0.0.1:7181") as zk:
        zk.create("/parent", b"parent znode")
        data, stat = zk.get("/parent", watch=lambda event: print(event))
        zk.set("/parent", b"some data")          # the watch above fires once
        path = zk.create("/q/item-", b"x", sequence=True, ephemeral=True, makepath=True)

Each `op_async` returns a concurrent.futures.Future; `op` waits for it. Watches are callables
taking a WatchedEvent (or True for the client's default watcher); they run on the event thread,
one at a time, in the order the server sent them.
"""
from __future__ import annotations

from concurrent.futures import Future

from dcli.client.session import SessionIO
from dcli.client.types import ACL, ConnState, KeeperState, Stat, WatchedEvent
from dcli.v1 import coord_pb2 as pb
from dcli.wire import errors
from dcli.wire.paths import parent_of, validate_path

WATCHER_KINDS = {
    "data": pb.WATCHER_DATA, "children": pb.WATCHER_CHILDREN, "any": pb.WATCHER_ANY,
    "persistent": pb.WATCHER_PERSISTENT, "persistent_recursive": pb.WATCHER_PERSISTENT_RECURSIVE,
}
_REMOVED_KINDS = {
    pb.WATCHER_DATA: ["data", "exist"], pb.WATCHER_CHILDREN: ["child"],
    pb.WATCHER_PERSISTENT: ["persistent"], pb.WATCHER_PERSISTENT_RECURSIVE: ["recursive"],
}


def _check(resp: pb.Response):
    if resp.HasField("error"):
        raise errors.from_proto(resp.error)
    return resp


def _bytes(value) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


class CoordClient:
    def __init__(self, servers: str | list[str] = "127.0.0.1:7181", timeout: float = 10.0,
                 dial_timeout: float = 5.0, default_watcher=None, delivery: str = "at-most-once",
                 session: tuple[int, bytes] | None = None, channel=None):
        """`delivery`: what happens to a write whose connection broke before its answer came
        (see SessionIO._on_stream_lost): "at-most-once" (ZooKeeper's: ConnectionLossError),
        "at-least-once" (sent again; may apply twice) or "exactly-once" (sent again as a retry
        the server recognizes by the session's sequence number: applied once). `session`:
        (session id, password) of an existing session to take over, as kazoo's `client_id`;
        `start` raises SessionExpiredError when it is gone. `channel`: what the session's streams
        open on instead of a gRPC channel to `servers` (a node's own tree, in process:
        dcli_server.local_client); `servers` then only names it."""
        self._io = SessionIO(servers, timeout, dial_timeout, default_watcher, delivery, channel)
        if session is not None:
            self._io.session_id, self._io.password = session

    # ---- session ----

    def start(self) -> CoordClient:
        self._io.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """End the session (waiting up to `timeout_s` for the server to confirm)."""
        self._io.close(timeout_s)

    stop = close

    def __enter__(self) -> CoordClient:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def state(self) -> ConnState | None:
        return self._io.state

    @property
    def connected(self) -> bool:
        return self._io.state is ConnState.CONNECTED

    @property
    def session_id(self) -> int:
        return self._io.session_id

    @property
    def session_password(self) -> bytes:
        return self._io.password

    @property
    def session_timeout_ms(self) -> int:
        return self._io.timeout_ms

    @property
    def server(self) -> str:
        return self._io.server

    @property
    def last_zxid(self) -> int:
        return self._io.last_zxid

    def add_listener(self, fn) -> None:
        """`fn(ConnState)` on every change: CONNECTED, SUSPENDED, LOST."""
        self._io.add_listener(fn)

    def remove_listener(self, fn) -> None:
        self._io.remove_listener(fn)

    def _watcher(self, watch):
        if watch is True:
            if self._io.default_watcher is None:
                raise errors.UsageError("watch=True needs a default_watcher")
            return self._io.default_watcher
        return watch

    # ---- writes ----

    def create_async(self, path: str, value=None, *, ephemeral=False, sequence=False,
                     container=False, ttl: int = 0, include_stat=False, acl=None) -> Future:
        validate_path(path, sequential=sequence)
        req = pb.Request(create=pb.CreateRequest(path=path, ephemeral=ephemeral, sequential=sequence,
                                                 container=container, ttl_ms=int(ttl), acl=_acl(acl)))
        data = _bytes(value)
        if data is not None:
            req.create.data = data

        def reply(r):
            c = _check(r).create
            return (c.path, Stat.from_proto(c.stat)) if include_stat else c.path
        return self._io.submit(req, reply)

    def create(self, path: str, value=None, *, ephemeral=False, sequence=False, container=False,
               ttl: int = 0, makepath=False, include_stat=False, acl=None):
        """Create a znode; returns its actual path (with the sequence suffix). `acl`: a list of
        ACL (default: world:anyone with every permission)."""
        kw = dict(ephemeral=ephemeral, sequence=sequence, container=container, ttl=ttl,
                  include_stat=include_stat, acl=acl)
        try:
            return self.create_async(path, value, **kw).result()
        except errors.NoNodeError:
            if not makepath:
                raise
        self.ensure_path(parent_of(path))
        return self.create_async(path, value, **kw).result()

    def ensure_path(self, path: str) -> None:
        """Create `path` and any missing ancestors as empty persistent znodes."""
        validate_path(path)
        if path == "/" or self.exists(path):
            return
        parts = path.split("/")[1:]
        futures = []
        for i in range(1, len(parts) + 1):
            futures.append(self.create_async("/" + "/".join(parts[:i]), b""))
        for f in futures:
            try:
                f.result()
            except errors.NodeExistsError:
                pass

    def set_async(self, path: str, value, version: int = -1) -> Future:
        validate_path(path)
        req = pb.Request(set_data=pb.SetDataRequest(path=path, version=version))
        data = _bytes(value)
        if data is not None:
            req.set_data.data = data
        return self._io.submit(req, lambda r: Stat.from_proto(_check(r).stat))

    def set(self, path: str, value, version: int = -1) -> Stat:
        return self.set_async(path, value, version).result()

    def delete_async(self, path: str, version: int = -1) -> Future:
        validate_path(path)
        req = pb.Request(delete=pb.DeleteRequest(path=path, version=version))
        return self._io.submit(req, lambda r: _check(r) and None)

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        if not recursive:
            return self.delete_async(path, version).result()
        self._delete_recursive(path)

    def _delete_recursive(self, path: str) -> None:
        """zkCli's deleteall: the subtree, deepest first (breadth-first listing, reversed)."""
        order = [path]
        i = 0
        while i < len(order):
            p = order[i]
            try:
                kids = self.get_children(p)
            except errors.NoNodeError:
                if p == path:
                    raise
                kids = []
            order.extend(p.rstrip("/") + "/" + k for k in kids)
            i += 1
        futures = [(p, self.delete_async(p)) for p in reversed(order)]
        for p, f in futures:
            try:
                f.result()
            except errors.NoNodeError:
                if p == path:
                    raise

    # ---- reads ----

    def get_async(self, path: str, watch=None) -> Future:
        validate_path(path)
        watcher = self._watcher(watch)
        req = pb.Request(get_data=pb.GetDataRequest(path=path, watch=watcher is not None))
        io = self._io

        def reply(r):
            g = _check(r).get_data
            if watcher is not None:
                io.watches.add(io.watches.data, path, watcher)
            return (g.data if g.HasField("data") else None), Stat.from_proto(g.stat)
        return io.submit(req, reply, idempotent=watcher is None)

    def get(self, path: str, watch=None) -> tuple[bytes | None, Stat]:
        return self.get_async(path, watch).result()

    def exists_async(self, path: str, watch=None) -> Future:
        validate_path(path)
        watcher = self._watcher(watch)
        req = pb.Request(exists=pb.ExistsRequest(path=path, watch=watcher is not None))
        io = self._io

        def reply(r):
            _check(r)
            found = r.HasField("stat")
            if watcher is not None:
                io.watches.add(io.watches.data if found else io.watches.exist, path, watcher)
            return Stat.from_proto(r.stat) if found else None
        return io.submit(req, reply, idempotent=watcher is None)

    def exists(self, path: str, watch=None) -> Stat | None:
        return self.exists_async(path, watch).result()

    def get_children_async(self, path: str, watch=None, include_data=False) -> Future:
        validate_path(path)
        watcher = self._watcher(watch)
        req = pb.Request(get_children=pb.GetChildrenRequest(path=path, watch=watcher is not None))
        io = self._io

        def reply(r):
            g = _check(r).get_children
            if watcher is not None:
                io.watches.add(io.watches.child, path, watcher)
            kids = list(g.children)
            return (kids, Stat.from_proto(g.stat)) if include_data else kids
        return io.submit(req, reply, idempotent=watcher is None)

    def get_children(self, path: str, watch=None, include_data=False):
        return self.get_children_async(path, watch, include_data).result()

    def sync_async(self, path: str) -> Future:
        validate_path(path)
        return self._io.submit(pb.Request(sync=pb.SyncRequest(path=path)),
                               lambda r: _check(r).sync.path, idempotent=True)

    def sync(self, path: str) -> str:
        return self.sync_async(path).result()

    def get_ephemerals_async(self, prefix: str = "/") -> Future:
        req = pb.Request(get_ephemerals=pb.GetEphemeralsRequest(prefix=prefix))
        return self._io.submit(req, lambda r: list(_check(r).ephemerals.paths), idempotent=True)

    def get_ephemerals(self, prefix: str = "/") -> list[str]:
        return self.get_ephemerals_async(prefix).result()

    # ---- ACLs and who we are (ZooKeeper's addauth, getACL, setACL, whoAmI) ----

    def add_auth_async(self, scheme: str, credential: str | bytes) -> Future:
        """ZooKeeper's addauth: `digest`, `user:password` (the ACL id digest:user:hash), or
        `ip`. Kept for the session: sent again on every reconnect."""
        raw = credential.encode() if isinstance(credential, str) else bytes(credential)
        self._io.auth.append((scheme, raw))
        return self._io.submit(pb.Request(add_auth=pb.AddAuthRequest(scheme=scheme, auth=raw)),
                               lambda r: _check(r) and None)

    def add_auth(self, scheme: str, credential: str | bytes) -> None:
        return self.add_auth_async(scheme, credential).result()

    def get_acls(self, path: str) -> tuple[list[ACL], Stat]:
        validate_path(path)
        req = pb.Request(get_acl=pb.GetAclRequest(path=path))
        return self._io.submit(req, lambda r: (
            [ACL(a.perms, a.scheme, a.id) for a in _check(r).acl.acl], Stat.from_proto(r.acl.stat)),
            idempotent=True).result()

    def set_acls(self, path: str, acl, version: int = -1) -> Stat:
        validate_path(path)
        req = pb.Request(set_acl=pb.SetAclRequest(path=path, acl=_acl(acl) or [], version=version))
        return self._io.submit(req, lambda r: Stat.from_proto(_check(r).stat)).result()

    def whoami(self) -> list[tuple[str, str]]:
        """The ids the server holds for this session's stream: (scheme, user) pairs."""
        return self._io.submit(pb.Request(who_am_i=pb.WhoAmIRequest()),
                               lambda r: [(i.scheme, i.user) for i in _check(r).who_am_i.ids],
                               idempotent=True).result()

    def get_all_children_number_async(self, path: str) -> Future:
        validate_path(path)
        req = pb.Request(get_all_children_number=pb.GetAllChildrenNumberRequest(path=path))
        return self._io.submit(req, lambda r: _check(r).count, idempotent=True)

    def get_all_children_number(self, path: str) -> int:
        return self.get_all_children_number_async(path).result()

    # ---- watches ----

    def add_watch_async(self, path: str, watch, mode: str = "persistent_recursive") -> Future:
        """A watch that stays after it fires (ZooKeeper 3.6 addWatch); mode persistent or
        persistent_recursive (the whole subtree; no NodeChildrenChanged)."""
        validate_path(path)
        watcher = self._watcher(watch)
        modes = {"persistent": pb.PERSISTENT, "persistent_recursive": pb.PERSISTENT_RECURSIVE}
        if mode not in modes:
            raise errors.UsageError(f"unknown watch mode {mode!r}: persistent or persistent_recursive")
        req = pb.Request(add_watch=pb.AddWatchRequest(path=path, mode=modes[mode]))
        io = self._io

        def reply(r):
            _check(r)
            table = io.watches.persistent if mode == "persistent" else io.watches.recursive
            io.watches.add(table, path, watcher)
        return io.submit(req, reply)

    def add_watch(self, path: str, watch, mode: str = "persistent_recursive") -> None:
        return self.add_watch_async(path, watch, mode).result()

    def remove_watch(self, path: str, watch, mode: str = "persistent_recursive") -> None:
        """Stop one callable's persistent watch (from add_watch); the server forgets the watch
        when no other callable of this client still uses it."""
        io = self._io
        table = io.watches.persistent if mode == "persistent" else io.watches.recursive
        if io.watches.discard(table, path, watch):
            try:
                self.remove_watches(path, mode)
            except errors.NoWatcherError:
                pass

    def remove_watches_async(self, path: str, watcher_type: str = "any") -> Future:
        validate_path(path)
        if watcher_type not in WATCHER_KINDS:
            raise errors.UsageError(f"unknown watcher type {watcher_type!r}")
        req = pb.Request(remove_watches=pb.RemoveWatchesRequest(path=path, type=WATCHER_KINDS[watcher_type]))
        io = self._io

        def reply(r):
            removed = list(_check(r).remove_watches.removed)
            kinds = [k for t in removed for k in _REMOVED_KINDS.get(t, [])]
            for watcher, etype in io.watches.remove(path, kinds):
                io.events.submit(watcher, WatchedEvent(etype, KeeperState.SYNC_CONNECTED, path))
            return removed
        return io.submit(req, reply)

    def remove_watches(self, path: str, watcher_type: str = "any") -> list[int]:
        return self.remove_watches_async(path, watcher_type).result()

    # ---- transactions ----

    def transaction(self) -> Transaction:
        return Transaction(self)

    def _multi_async(self, ops: list[pb.Request]) -> Future:
        req = pb.Request(multi=pb.MultiRequest(ops=ops))

        def reply(r):
            results = []
            for sub in r.multi.results:
                if sub.HasField("error") and sub.error.code != pb.OK:
                    results.append(errors.from_proto(sub.error))
                else:
                    results.append(_multi_result(sub))
            if r.HasField("error"):
                err = errors.from_proto(r.error)
                err.results = results
                raise err
            return results
        return self._io.submit(req, reply)


def _acl(acl) -> list[pb.Acl]:
    """ACL entries for a request; None: the server's default (world:anyone, every permission)."""
    if acl is None:
        return []
    return [pb.Acl(perms=a.perms, scheme=a.scheme, id=a.id) for a in acl]


def _multi_result(sub: pb.Response):
    kind = sub.WhichOneof("result")
    if kind == "create":
        return sub.create.path
    if kind == "stat":
        return Stat.from_proto(sub.stat)
    return True


class Transaction:
    """All-or-nothing: `with zk.transaction() as t: t.create(...); t.check(...)`, or commit()."""

    def __init__(self, client: CoordClient):
        self._client = client
        self._ops: list[pb.Request] = []
        self.results = None

    def create(self, path, value=None, *, ephemeral=False, sequence=False, container=False, ttl=0):
        validate_path(path, sequential=sequence)
        r = pb.Request(create=pb.CreateRequest(path=path, ephemeral=ephemeral, sequential=sequence,
                                               container=container, ttl_ms=int(ttl)))
        data = _bytes(value)
        if data is not None:
            r.create.data = data
        self._ops.append(r)
        return self

    def delete(self, path, version=-1):
        validate_path(path)
        self._ops.append(pb.Request(delete=pb.DeleteRequest(path=path, version=version)))
        return self

    def set_data(self, path, value, version=-1):
        validate_path(path)
        r = pb.Request(set_data=pb.SetDataRequest(path=path, version=version))
        data = _bytes(value)
        if data is not None:
            r.set_data.data = data
        self._ops.append(r)
        return self

    def check(self, path, version):
        validate_path(path)
        self._ops.append(pb.Request(check=pb.CheckVersionRequest(path=path, version=version)))
        return self

    def commit_async(self) -> Future:
        return self._client._multi_async(self._ops)

    def commit(self) -> list:
        self.results = self.commit_async().result()
        return self.results

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.commit()
