"""Whole-stream scenarios: the order of replies and notifications on one connection (a bare
socket, so nothing between the wire and the test reorders them), failed writes' reply-header
zxids, a seeded random request stream through kazoo, session timeout negotiation and an abandoned
session's expiry. Run by the live comparison (test_zk_streams.py) and replayed from ZooKeeper's
recorded answers (recording.py). Normalisation as in transcript.py; children lists sorted.
"""
from __future__ import annotations

import random

from dcli.wire import zk_records as rec
from dcli.wire.jute import Reader
from dcli.wire.zk_protocol import OpCode
from tests.conformance.raw_client import RawSession
from tests.conformance.scenarios import OPEN_ACL, children
from tests.conformance.transcript import Events, Normaliser, Transcript

SEED = 18
STREAM_OPS = 300


def one_connection(connect, address, root):
    s = RawSession(address)
    norm = Normaliser({s.session_id: "me"})
    answers = {}

    def req(xid, opcode, record, response=None):
        answers[xid] = response
        return s.request(xid, opcode, record)

    def run(*frames):
        got = s.frames_until({int.from_bytes(f[4:8], "big", signed=True) for f in frames} - {-1})
        out = []
        for xid, zxid, err, body in got:
            if xid != -1 and not err and answers.get(xid):
                body = norm.value(answers[xid].read(Reader(body)))
            out.append((xid, "notification zxid " + str(zxid) if xid == -1 else norm.zxid(zxid), err, body))
        return out

    steps = []
    try:
        s.send(*(frames := [req(1, OpCode.CREATE, rec.CreateRequest(root, b"r", OPEN_ACL, 0), rec.CreateResponse),
                            req(2, OpCode.CREATE, rec.CreateRequest(f"{root}/x", b"x", OPEN_ACL, 0), rec.CreateResponse),
                            req(3, OpCode.CREATE, rec.CreateRequest(f"{root}/y", b"y", OPEN_ACL, 0), rec.CreateResponse)]))
        steps.append(("creates, pipelined", run(*frames)))
        s.send(*(frames := [req(4, OpCode.GET_DATA, rec.GetDataRequest(f"{root}/x", True), rec.GetDataResponse),
                            req(5, OpCode.GET_CHILDREN, rec.GetChildrenRequest(root, True), None),
                            req(6, OpCode.EXISTS, rec.ExistsRequest(f"{root}/m", True), rec.ExistsResponse),
                            req(7, OpCode.EXISTS, rec.ExistsRequest(f"{root}/y", True), rec.ExistsResponse)]))
        steps.append(("watches set", [f[:3] for f in run(*frames)]))
        s.send(*(frames := [req(10, OpCode.SET_DATA, rec.SetDataRequest(f"{root}/x", b"x2", -1), rec.SetDataResponse),
                            req(11, OpCode.CREATE, rec.CreateRequest(f"{root}/m", b"", OPEN_ACL, 0), rec.CreateResponse),
                            req(12, OpCode.GET_DATA, rec.GetDataRequest(f"{root}/x", False), rec.GetDataResponse),
                            req(-2, OpCode.PING, None),
                            req(13, OpCode.DELETE, rec.DeleteRequest(f"{root}/y", -1)),
                            req(14, OpCode.EXISTS, rec.ExistsRequest(f"{root}/m", False), rec.ExistsResponse)]))
        steps.append(("writes firing watches, reads and a ping, pipelined", run(*frames)))
    finally:
        s.close()
    return steps


def failed_writes(connect, address, root):
    s = RawSession(address)
    norm = Normaliser()
    try:
        frames = [s.request(1, OpCode.CREATE, rec.CreateRequest(root, b"", OPEN_ACL, 0)),
                  s.request(2, OpCode.DELETE, rec.DeleteRequest(f"{root}/nope", -1)),
                  s.request(3, OpCode.CREATE, rec.CreateRequest(root, b"", OPEN_ACL, 0)),
                  s.request(4, OpCode.SET_DATA, rec.SetDataRequest(root, b"", 9)),
                  s.request(5, OpCode.EXISTS, rec.ExistsRequest(root, False))]
        s.send(*frames)
        return [(xid, norm.zxid(zxid), err) for xid, zxid, err, _ in s.frames_until({1, 2, 3, 4, 5})]
    finally:
        s.close()


def random_stream(connect, address, root):
    me = connect(address)
    t = Transcript(me)
    rng = random.Random(SEED)
    t.do("create root", me.create, root)
    paths = [root + p for p in ("/a", "/a/b", "/a/b/c", "/d", "/d/e", "/f", "/a/f")]
    created: list[str] = []
    datas = [None, b"", b"x", b"yy" * 10]
    versions = [-1, -1, 0, 1, 2]

    def target():
        return rng.choice(created) if created and rng.random() < 0.3 else rng.choice(paths)

    def create_op():
        eph, seq = rng.random() < 0.2, rng.random() < 0.25
        return ("create", target() + ("-" if seq else ""), rng.choice(datas), {"ephemeral": eph, "sequence": seq})

    def any_op():
        kind = rng.choice(["create", "delete", "set", "check"])
        if kind == "create":
            return create_op()
        if kind == "delete":
            return ("delete", target(), rng.choice(versions))
        if kind == "set":
            return ("set_data", target(), rng.choice(datas), rng.choice(versions))
        return ("check", target(), rng.choice(versions))

    def commit(ops):
        tx = me.transaction()
        for name, *args in ops:
            kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
            getattr(tx, name)(*args, **kwargs)
        return tx.commit()

    for i in range(STREAM_OPS):
        roll = rng.random()
        if roll < 0.3:
            name, path, data, kw = create_op()
            got = t.do(f"{i} create {path} {kw}", me.create, path, data, **kw)
            if got:
                created.append(got)
        elif roll < 0.45:
            path, v = target(), rng.choice(versions)
            t.do(f"{i} delete {path} v{v}", me.delete, path, version=v)
        elif roll < 0.6:
            path, data, v = target(), rng.choice(datas), rng.choice(versions)
            t.do(f"{i} set {path} v{v}", me.set, path, data, version=v)
        elif roll < 0.7:
            path = target()
            t.do(f"{i} get {path}", me.get, path)
        elif roll < 0.78:
            path = target()
            t.do(f"{i} exists {path}", me.exists, path)
        elif roll < 0.88:
            path, with_stat = target(), rng.random() < 0.5
            t.do(f"{i} children {path}", children, me, path, include_data=with_stat)
        else:
            ops = [any_op() for _ in range(rng.randint(1, 3))]
            got = t.do(f"{i} multi {ops}", commit, ops)
            created.extend(x for x in got or () if isinstance(x, str))
    return t.steps


def session_timeouts(connect, address, root):
    out = []
    for asked in (1, 3_999, 4_000, 10_000, 40_000, 40_001, 1_000_000):
        s = RawSession(address, timeout_ms=asked)
        out.append((asked, s.connect_response.timeOut, s.connect_response.protocolVersion,
                    len(s.connect_response.passwd)))
        s.close()
    return out


def abandoned_session(connect, address, root):
    watcher = connect(address)
    t = Transcript(watcher, "watcher")
    t.do("create root", watcher.create, root)
    s = RawSession(address, timeout_ms=4_000)
    t.norm.sessions[s.session_id] = "abandoned"
    s.send(s.request(1, OpCode.CREATE, rec.CreateRequest(f"{root}/e", b"", OPEN_ACL, 1)))
    t.note("ephemeral created", [f[:3] for f in s.frames_until({1})][0][2])
    t.do("owner of the ephemeral", lambda: watcher.exists(f"{root}/e").ephemeralOwner and "set")
    gone = Events()
    t.do("watch it", watcher.exists, f"{root}/e", watch=gone.to("exists e"))
    s.sock.close()                      # no closeSession: the session has to expire
    t.note("deleted on expiry", gone.wait(1, timeout=30))
    t.do("children", children, watcher, root)
    return t.steps
