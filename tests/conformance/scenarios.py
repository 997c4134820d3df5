"""The kazoo scenarios the conformance suite runs against both servers: each takes
(connect, address, root), opens its own clients with connect(address), works under root and
returns its transcript (transcript.py: what is normalised and why).

Shared by the live comparison (tests/conformance/test_zk_back_to_back.py, against a real ZooKeeper
3.8 and dcli side by side) and the replay of what ZooKeeper answered (recording.py, run in
`make test` by tests/integration/test_zk_recorded.py).

Children lists are compared sorted: ZooKeeper keeps a node's children in a hash set and sends them
in its iteration order, which no client may rely on.
"""
from __future__ import annotations

from dcli.wire import zk_records as rec
from dcli.wire.zk_protocol import OpCode
from tests.conformance.transcript import Events, Transcript, call
from tests.waiting import eventually

OPEN_ACL = [rec.ACL(perms=31, id=rec.Id(scheme="world", id="anyone"))]


def children(client, path, **kw):
    got = client.get_children(path, **kw)
    return (sorted(got[0]), got[1]) if isinstance(got, tuple) else sorted(got)


# ---- CRUD, stats, names, data ----

def crud_and_stats(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root, b"root")
    t.do("stat new root", me.exists, root)
    for name, data in (("a", b"alpha"), ("b", b""), ("c", None)):
        t.do(f"create {name}", me.create, f"{root}/{name}", data)
        t.do(f"stat {name}", me.exists, f"{root}/{name}")
    t.do("stat root after 3 creates", me.exists, root)
    t.do("delete b", me.delete, f"{root}/b")
    t.do("stat root after a delete (cversion?)", me.exists, root)
    t.do("create b again", me.create, f"{root}/b", b"again")
    t.do("stat root after re-create", me.exists, root)
    t.do("create2 d", me.create, f"{root}/d", b"dd", include_data=True)
    t.do("set a", me.set, f"{root}/a", b"alpha2")
    t.do("set a at version 1", me.set, f"{root}/a", b"alpha3", version=1)
    t.do("get a", me.get, f"{root}/a")
    t.do("children2 root", children, me, root, include_data=True)
    t.do("children root", children, me, root)
    t.do("create grandchild", me.create, f"{root}/a/x", b"x")
    t.do("stat a with a child", me.exists, f"{root}/a")
    t.do("delete grandchild", me.delete, f"{root}/a/x")
    t.do("stat a after its child's delete", me.exists, f"{root}/a")
    for name in ("a", "b", "c", "d"):
        t.do(f"delete {name}", me.delete, f"{root}/{name}")
    t.do("stat root after 4 deletes", me.exists, root)
    t.do("delete root", me.delete, root)
    t.do("stat deleted root", me.exists, root)
    t.do("sync", me.sync, "/")
    return t.steps


def sequential_names(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root)
    t.do("seq 1", me.create, f"{root}/s-", b"", sequence=True)
    t.do("plain child", me.create, f"{root}/plain")
    t.do("seq 2 (after a plain child)", me.create, f"{root}/s-", b"", sequence=True)
    t.do("ephemeral seq", me.create, f"{root}/e-", b"", sequence=True, ephemeral=True)
    t.do("no prefix", me.create, f"{root}/", b"", sequence=True)
    t.do("delete plain", me.delete, f"{root}/plain")
    t.do("delete seq 1", me.delete, f"{root}/s-0000000000")
    t.do("stat root after 5 creates, 2 deletes", me.exists, root)
    t.do("seq after 2 deletes", me.create, f"{root}/s-", b"", sequence=True)
    t.do("ephemeral seq after deletes", me.create, f"{root}/e-", b"", sequence=True, ephemeral=True)
    t.do("stat root", me.exists, root)
    t.do("names", children, me, root)
    t.do("seq in a new parent", me.create, f"{root}/p/q-", b"", sequence=True, makepath=True)
    return t.steps


def null_and_empty(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root with null data", me.create, root, None)
    t.do("get null", me.get, root)
    t.do("create empty", me.create, f"{root}/e", b"")
    t.do("get empty", me.get, f"{root}/e")
    t.do("set empty to null", me.set, f"{root}/e", None)
    t.do("get now null", me.get, f"{root}/e")
    t.do("set null to empty", me.set, root, b"")
    t.do("get now empty", me.get, root)
    t.do("set 3 bytes", me.set, root, b"\x00\xff\x00")
    t.do("get 3 bytes", me.get, root)
    return t.steps


BAD_PATHS = ("/b\x00", "/b\x1e", "/b\x7f", "/b\u0085", "/b\ufff0", "/b/", "/b//c", "/b/./c", "/b/../c", "/b/.")


def errors(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root, b"r")
    t.do("get missing", me.get, f"{root}/missing")
    t.do("set missing", me.set, f"{root}/missing", b"")
    t.do("delete missing", me.delete, f"{root}/missing")
    t.do("children of missing", me.get_children, f"{root}/missing")
    t.do("create under missing", me.create, f"{root}/missing/x")
    t.do("create existing", me.create, root)
    t.do("set bad version", me.set, root, b"", version=5)
    t.do("delete bad version", me.delete, root, version=5)
    t.do("create child", me.create, f"{root}/c")
    t.do("delete non-empty", me.delete, root)
    t.do("create ephemeral", me.create, f"{root}/eph", ephemeral=True)
    t.do("child of an ephemeral", me.create, f"{root}/eph/x")
    t.do("sequential child of an ephemeral", me.create, f"{root}/eph/x", sequence=True)
    for bad in BAD_PATHS:
        t.do(f"create {bad!r}", me.create, root + bad)
        t.do(f"set {bad!r}", me.set, root + bad, b"")
    t.do("exists with a NUL (ZooKeeper checks for that one)", me.exists, f"{root}/b\x00")
    t.do("delete /zookeeper", me.delete, "/zookeeper")
    t.do("delete /", me.delete, "/")
    t.do("create /", me.create, "/")
    t.do("state unchanged", children, me, root)
    return t.steps


def reads_of_bad_paths(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    for bad in BAD_PATHS[1:5]:
        t.do(f"delete {bad!r}", me.delete, root + bad)
        t.do(f"get {bad!r}", me.get, root + bad)
        t.do(f"exists {bad!r}", me.exists, root + bad)
        t.do(f"children {bad!r}", me.get_children, root + bad)
    t.do("get with a NUL", me.get, f"{root}/b\x00")
    return t.steps


# ---- multi ----

def multi(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root, b"0")

    def commit(*ops):
        tx = me.transaction()
        for name, *args in ops:
            kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
            getattr(tx, name)(*args, **kwargs)
        return tx.commit()

    t.do("all succeed", commit, ("create", f"{root}/a", b"a"), ("create", f"{root}/s-", b"", {"sequence": True}),
         ("set_data", root, b"1"), ("check", root, 1), ("delete", f"{root}/a"))
    t.do("stat root (one zxid)", me.exists, root)
    t.do("stat seq (one zxid)", me.exists, f"{root}/s-0000000001")
    t.do("second fails", commit, ("create", f"{root}/b", b"b"), ("create", root, b""), ("set_data", root, b"2"))
    t.do("check fails", commit, ("set_data", root, b"3"), ("check", root, 7), ("delete", f"{root}/s-0000000001"))
    t.do("first fails", commit, ("delete", f"{root}/nope"), ("create", f"{root}/c"))
    t.do("last fails", commit, ("create", f"{root}/c"), ("delete", root))
    t.do("nothing applied", children, me, root, include_data=True)
    t.do("root data unchanged", me.get, root)
    t.do("ephemeral parent in one multi", commit, ("create", f"{root}/e", b"", {"ephemeral": True}),
         ("create", f"{root}/e/x"))
    t.do("bad path in a multi", commit, ("create", f"{root}/ok"), ("create", f"{root}/b\x00"))
    return t.steps


# ---- watches ----

def watches(connect, address, root):
    me, other = connect(address), connect(address)
    t = Transcript(me)
    t.add_session(other, "other")
    ev = Events()
    t.do("create root", me.create, root)
    t.do("create a", me.create, f"{root}/a", b"a")
    t.do("get a, watch", me.get, f"{root}/a", watch=ev.to("data a"))
    t.do("exists missing, watch", me.exists, f"{root}/m", watch=ev.to("exists m"))
    t.do("get missing, watch", me.get, f"{root}/m2", watch=ev.to("get m2"))
    t.do("children root, watch", me.get_children, root, watch=ev.to("child root"))
    t.do("other sets a", other.set, f"{root}/a", b"a2")
    t.do("other creates m", other.create, f"{root}/m")
    t.note("events", ev.wait(3))
    t.do("other sets a again (watch spent)", other.set, f"{root}/a", b"a3")
    t.do("other creates m2 (no watch on it)", other.create, f"{root}/m2")
    t.do("exists a, watch", me.exists, f"{root}/a", watch=ev.to("exists a"))
    t.do("other sets a", other.set, f"{root}/a", b"a4")
    t.note("events: only the new one", ev.wait(4))
    # a delete fires the node's data and child watchers, then the parent's child watch
    t.do("create a/k", me.create, f"{root}/a/k")
    t.do("get a, watch", me.get, f"{root}/a", watch=ev.to("data a"))
    t.do("children a, watch", me.get_children, f"{root}/a", watch=ev.to("child a"))
    t.do("children root, watch", me.get_children, root, watch=ev.to("child root"))
    t.do("exists a/k, watch", me.exists, f"{root}/a/k", watch=ev.to("exists a/k"))
    t.do("other deletes a/k", other.delete, f"{root}/a/k")
    t.note("events: a/k deleted, a's children", ev.wait(6))
    t.do("children a, watch", me.get_children, f"{root}/a", watch=ev.to("child a"))
    t.do("other deletes a", other.delete, f"{root}/a")
    t.note("events: a deleted (data then child watchers), then root's children", ev.wait(9))
    t.do("my own set fires my watch", me.get, f"{root}/m", watch=ev.to("data m"))
    t.do("set m", me.set, f"{root}/m", b"mine")
    t.note("events: my own change", ev.wait(10))
    return t.steps


def session_close(connect, address, root):
    owner, watcher = connect(address), connect(address)
    t = Transcript(watcher, "watcher")
    t.add_session(owner, "owner")
    ev = Events()
    t.do("create root", watcher.create, root)
    t.do("owner: ephemeral e1", owner.create, f"{root}/e1", b"1", ephemeral=True)
    t.do("owner: ephemeral e2", owner.create, f"{root}/e2", b"2", ephemeral=True)
    t.do("owner: persistent p", owner.create, f"{root}/p")
    t.do("stat e1 (owner)", watcher.exists, f"{root}/e1", watch=ev.to("exists e1"))
    t.do("get e2, watch", watcher.get, f"{root}/e2", watch=ev.to("data e2"))
    t.do("children root, watch", children, watcher, root, watch=ev.to("child root"))
    owner.stop()
    # which ephemeral goes first is ZooKeeper's hash-set order
    t.note("events on close (sorted)", sorted(ev.wait(3), key=repr))
    t.do("children after close", children, watcher, root)
    t.do("stat root", watcher.exists, root)
    return t.steps


# ---- requests kazoo has no method for ----

def extended_creates(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root)

    def create(opcode, path, flags, ttl=None):
        record = (rec.CreateTTLRequest(path, b"d", OPEN_ACL, flags, ttl) if ttl is not None
                  else rec.CreateRequest(path, b"d", OPEN_ACL, flags))
        return call(me, opcode, record, rec.Create2Response if opcode != OpCode.CREATE else rec.CreateResponse)

    t.do("container", create, OpCode.CREATE_CONTAINER, f"{root}/c", 4)
    t.do("container never used", create, OpCode.CREATE_CONTAINER, f"{root}/unused", 4)
    t.do("child of container", me.create, f"{root}/c/x")
    t.do("stat container", me.exists, f"{root}/c")
    t.do("delete the child", me.delete, f"{root}/c/x")
    t.note("container reaped", eventually(lambda: me.exists(f"{root}/c") is None, 20, "the container's reaping"))
    t.do("unused container still there", me.exists, f"{root}/unused")
    t.do("ttl node", create, OpCode.CREATE_TTL, f"{root}/t", 5, 300)
    t.do("ttl sequential", create, OpCode.CREATE_TTL, f"{root}/ts-", 6, 300)
    t.do("stat ttl node", me.exists, f"{root}/t")
    t.note("ttl nodes reaped", eventually(lambda: me.get_children(root) == ["unused"], 20, "the ttl reaping"))
    t.do("ttl 0", create, OpCode.CREATE_TTL, f"{root}/t0", 5, 0)
    t.do("ttl too big", create, OpCode.CREATE_TTL, f"{root}/tbig", 5, 1 << 41)
    t.do("ttl with a plain mode", create, OpCode.CREATE_TTL, f"{root}/tp", 0, 300)
    t.do("ttl mode through create", create, OpCode.CREATE, f"{root}/tc", 5)
    t.do("ephemeral ttl mode", create, OpCode.CREATE_TTL, f"{root}/te", 1, 300)
    return t.steps


def container_through_create(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root)
    for opcode, response in ((OpCode.CREATE, rec.CreateResponse), (OpCode.CREATE2, rec.Create2Response)):
        path = f"{root}/c{int(opcode)}"
        t.do(f"container mode through opcode {int(opcode)}", call, me, opcode,
             rec.CreateRequest(path, b"", OPEN_ACL, 4), response)
        t.do("a child", me.create, f"{path}/x")
        t.do("its delete", me.delete, f"{path}/x")
    t.do("a real container", call, me, OpCode.CREATE_CONTAINER, rec.CreateRequest(f"{root}/real", b"", OPEN_ACL, 4),
         rec.Create2Response)
    t.do("a child", me.create, f"{root}/real/x")
    t.do("its delete", me.delete, f"{root}/real/x")
    t.note("the real one reaped", eventually(lambda: me.exists(f"{root}/real") is None, 20, "reaping"))
    t.do("what is left", children, me, root)
    return t.steps


def ephemerals_and_counts(connect, address, root):
    me, other = connect(address), connect(address)
    t = Transcript(me)

    def ephemerals(client, prefix):
        return sorted(call(client, OpCode.GET_EPHEMERALS, rec.GetEphemeralsRequest(prefix),
                           rec.GetEphemeralsResponse).ephemerals)

    def count(path):
        return call(me, OpCode.GET_ALL_CHILDREN_NUMBER, rec.GetAllChildrenNumberRequest(path),
                    rec.GetAllChildrenNumberResponse).totalNumber

    t.do("create tree", me.create, f"{root}/a/b/c", makepath=True)
    t.do("e1", me.create, f"{root}/a/e1", ephemeral=True)
    t.do("e2", me.create, f"{root}/a/b/e2", ephemeral=True)
    t.do("e3", me.create, f"{root}/x-e3", ephemeral=True)
    t.do("other's", other.create, f"{root}/a/o", ephemeral=True)
    t.do("mine under root", ephemerals, me, root)
    t.do("mine under root/a", ephemerals, me, f"{root}/a")
    t.do("mine under root/a/ (trailing slash)", ephemerals, me, f"{root}/a/")
    t.do("mine under a prefix that is no node", ephemerals, me, f"{root}/x")
    t.do("other's under root", ephemerals, other, root)
    t.do("count root", count, root)
    t.do("count root/a", count, f"{root}/a")
    t.do("count a leaf", count, f"{root}/a/b/c")
    t.do("count missing", count, f"{root}/missing")
    return t.steps


def who_am_i(connect, address, root):
    me = connect(address)
    t = Transcript(me)

    def whoami():
        # sorted: ZooKeeper keeps a connection's ids in a hash set (ServerCnxn.authInfo)
        got = call(me, OpCode.WHO_AM_I, None, rec.WhoAmIResponse).clientInfo
        return sorted((i.authScheme, i.user) for i in got)

    t.do("whoami", whoami)
    t.do("addauth digest", me.add_auth, "digest", "alice:secret")
    t.do("whoami after addauth", whoami)
    t.do("a request after auth", me.create, root, b"")
    return t.steps


# ---- limits ----

def big_packets(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    t.do("create root", me.create, root)
    t.do("1,000,000 bytes", me.create, f"{root}/under", b"u" * 1_000_000)
    t.do("read back its length", lambda: len(me.get(f"{root}/under")[0]))
    t.do("1 MiB + 1 byte", me.create, f"{root}/over", b"o" * (1024 * 1024 + 1))
    t.note("reconnected", eventually(lambda: me.connected, 30, "kazoo to reconnect"))
    t.do("nothing created", me.exists, f"{root}/over")
    t.do("set 1 MiB + 1 byte", me.set, f"{root}/under", b"s" * (1024 * 1024 + 1))
    t.note("reconnected", eventually(lambda: me.connected, 30, "kazoo to reconnect"))
    t.do("data unchanged", lambda: me.get(f"{root}/under")[1].version)
    return t.steps
