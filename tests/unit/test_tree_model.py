"""The Coordinator against a tiny dict model, driven by hypothesis: random creates (ephemeral,
sequential), deletes, sets, multis, session opens, closes and expiries, snapshots and restarts.

After every step the tree must match the model (existence, data, versions, cversions, owners,
children). A restart rebuilds the Coordinator from a snapshot taken earlier plus the whole
captured log and must reproduce the snapshot bytes; at the end, replaying the captured log into
a fresh Coordinator must, too.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from dcli.v1 import coord_pb2 as pb, coordlog_pb2 as logpb
from dcli_server.coord import Coordinator, Limits

T0 = 1_764_030_612_000
NAMES = ["a", "b", "c"]
SEQ_NAMES = ["a", "s-", ""]           # "" = `create -s /parent/`
TIMEOUTS = [4_000, 10_000, 40_000]


class ModelError(Exception):
    def __init__(self, code: int):
        self.code = code


@dataclass
class MNode:
    data: bytes | None
    owner: int = 0
    version: int = 0
    cversion: int = 0
    creates: int = 0


def parent_of(path: str) -> str:
    i = path.rfind("/")
    return "/" if i == 0 else path[:i]


def join(parent: str, name: str) -> str:
    return parent + name if parent == "/" else f"{parent}/{name}"


class Model:
    """What the tree should be: path -> MNode, ZooKeeper's rules in their plainest form."""

    def __init__(self) -> None:
        self.nodes = {p: MNode(b"") for p in ("/", "/zookeeper", "/zookeeper/config",
                                               "/zookeeper/quota")}

    def children(self, path: str) -> list[str]:
        prefix = path if path == "/" else path + "/"
        return sorted(p[len(prefix):] for p in self.nodes
                      if p != path and p.startswith(prefix) and "/" not in p[len(prefix):])

    def user_paths(self) -> list[str]:
        return sorted(p for p in self.nodes if p != "/" and not p.startswith("/zookeeper"))

    def create(self, sid: int, parent: str, name: str, data, ephemeral: bool, sequential: bool) -> str:
        path = join(parent, name)
        if name == "" and not sequential:
            raise ModelError(pb.NODE_EXISTS if path == "/" else pb.INVALID_PATH)
        if parent not in self.nodes:
            raise ModelError(pb.NO_NODE)
        final = f"{path}{self.nodes[parent].creates:010d}" if sequential else path
        if final in self.nodes:
            raise ModelError(pb.NODE_EXISTS)
        if self.nodes[parent].owner:
            raise ModelError(pb.NO_CHILDREN_FOR_EPHEMERALS)
        self.nodes[final] = MNode(data, owner=sid if ephemeral else 0)
        self.nodes[parent].creates += 1
        self.nodes[parent].cversion += 1
        return final

    def _existing(self, path: str, version: int) -> MNode:
        node = self.nodes.get(path)
        if node is None:
            raise ModelError(pb.NO_NODE)
        if version not in (-1, node.version):
            raise ModelError(pb.BAD_VERSION)
        return node

    def delete(self, path: str, version: int) -> None:
        self._existing(path, version)
        if self.children(path):
            raise ModelError(pb.NOT_EMPTY)
        self._remove(path)

    def _remove(self, path: str) -> None:
        del self.nodes[path]
        self.nodes[parent_of(path)].cversion += 1

    def set(self, path: str, data, version: int) -> None:
        node = self._existing(path, version)
        node.data = data
        node.version += 1

    def check(self, path: str, version: int) -> None:
        self._existing(path, version)

    def kill(self, sid: int) -> None:
        for path in [p for p, n in self.nodes.items() if n.owner == sid]:
            self._remove(path)


versions = st.sampled_from([-1, -1, 0, 1, 2])
payloads = st.one_of(st.none(), st.binary(max_size=3))
generated_paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(
    lambda names: "/" + "/".join(names))


class TreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.raw_log: list[bytes] = []
        self.coord = self._coordinator()
        self.model = Model()
        self.timeouts: dict[int, int] = {}      # live sessions -> timeout
        self.deadlines: dict[int, int] = {}
        self.dead: list[int] = []
        self.saved: bytes | None = None         # a snapshot taken earlier, for restarts

    def _coordinator(self) -> Coordinator:
        return Coordinator(limits=Limits(), log=lambda t: self.raw_log.append(t.SerializeToString()),
                           deliver=lambda sid, event: None, now_ms=lambda: self.now)

    def _tick(self) -> None:
        self.now += 1

    # ---- drawing ----

    def _session(self, data) -> int:
        pool = sorted(self.timeouts) * 4 + self.dead
        return data.draw(st.sampled_from(pool), label="session")

    def _path(self, data) -> str:
        existing = self.model.user_paths()
        strategy = generated_paths if not existing else st.one_of(generated_paths,
                                                                 st.sampled_from(existing))
        return data.draw(strategy, label="path")

    def _parent(self, data) -> str:
        return data.draw(st.one_of(st.just("/"), st.just("/zookeeper"), generated_paths,
                                   st.sampled_from(self.model.user_paths() or ["/"])),
                         label="parent")

    def _op(self, data) -> tuple:
        kind = data.draw(st.sampled_from(["create", "create", "delete", "set", "check"]), label="op")
        if kind == "create":
            seq = data.draw(st.booleans(), label="sequential")
            name = data.draw(st.sampled_from(SEQ_NAMES if seq else NAMES), label="name")
            return (kind, self._parent(data), name, data.draw(payloads),
                    data.draw(st.booleans(), label="ephemeral"), seq)
        if kind == "set":
            return (kind, self._path(data), data.draw(payloads), data.draw(versions))
        return (kind, self._path(data), data.draw(versions))

    # ---- running one op on both sides ----

    @staticmethod
    def _request(op: tuple) -> pb.Request:
        kind = op[0]
        if kind == "create":
            _, parent, name, payload, eph, seq = op
            req = pb.CreateRequest(path=join(parent, name), ephemeral=eph, sequential=seq)
            if payload is not None:
                req.data = payload
            return pb.Request(create=req)
        if kind == "set":
            req = pb.SetDataRequest(path=op[1], version=op[3])
            if op[2] is not None:
                req.data = op[2]
            return pb.Request(set_data=req)
        if kind == "delete":
            return pb.Request(delete=pb.DeleteRequest(path=op[1], version=op[2]))
        return pb.Request(check=pb.CheckVersionRequest(path=op[1], version=op[2]))

    def _apply_model(self, model: Model, sid: int, op: tuple) -> str | None:
        kind = op[0]
        if kind == "create":
            _, parent, name, payload, eph, seq = op
            final = model.create(sid, parent, name, payload, eph, seq)
            if final == "/zookeeper" or final.startswith("/zookeeper/"):
                raise ModelError(pb.NO_AUTH)
            return final
        if kind == "set":
            if op[1].startswith("/zookeeper"):
                model._existing(op[1], -1)
                raise ModelError(pb.NO_AUTH)
            model.set(op[1], op[2], op[3])
        elif kind == "delete":
            model.delete(op[1], op[2])
        else:
            model.check(op[1], op[2])
        return None

    def _alive(self, sid: int) -> bool:
        """Open and not past its deadline (a session at its deadline is refused even before
        expire_sessions() closes it)."""
        return sid in self.timeouts and self.now < self.deadlines[sid]

    def _touch(self, sid: int) -> None:
        if self._alive(sid):
            self.deadlines[sid] = self.now + self.timeouts[sid]

    @initialize()
    def two_sessions(self) -> None:
        for timeout in (10_000, 40_000):
            self.open_session(timeout)

    @rule(timeout=st.sampled_from(TIMEOUTS))
    def open_session(self, timeout: int) -> None:
        self._tick()
        sid, password, granted = self.coord.open_session(timeout)
        assert granted == timeout and len(password) == 16
        assert sid not in self.timeouts and sid not in self.dead
        self.timeouts[sid] = timeout
        self.deadlines[sid] = self.now + timeout

    @rule(data=st.data())
    def single(self, data) -> None:
        self._tick()
        sid = self._session(data)
        op = self._op(data)
        if op[0] == "check":
            op = ("delete",) + op[1:]          # check alone is BadArguments; covered elsewhere
        r = self.coord.handle(sid, self._request(op))
        alive = self._alive(sid)
        self._touch(sid)
        try:
            if not alive:
                raise ModelError(pb.SESSION_EXPIRED)
            trial = copy.deepcopy(self.model)
            final = self._apply_model(trial, sid, op)
        except ModelError as err:
            assert r.error.code == err.code, (op, r)
            return
        assert not r.HasField("error"), (op, r)
        self.model = trial
        if final is not None:
            assert r.create.path == final
        assert r.zxid == self.coord.last_zxid

    @rule(data=st.data(), size=st.integers(0, 4))
    def multi(self, data, size: int) -> None:
        self._tick()
        sid = self._session(data)
        ops = [self._op(data) for _ in range(size)]
        before = self.coord.last_zxid
        r = self.coord.handle(sid, pb.Request(multi=pb.MultiRequest(
            ops=[self._request(op) for op in ops])))
        alive = self._alive(sid)
        self._touch(sid)
        if not alive:
            assert r.error.code == pb.SESSION_EXPIRED
            return
        trial = copy.deepcopy(self.model)
        finals = []
        for index, op in enumerate(ops):
            try:
                finals.append(self._apply_model(trial, sid, op))
            except ModelError as err:
                assert r.error.code == err.code, (ops, r)
                codes = [x.error.code for x in r.multi.results]
                assert codes == ([pb.OK] * index + [err.code]
                                 + [pb.RUNTIME_INCONSISTENCY] * (len(ops) - index - 1))
                assert self.coord.last_zxid == before
                return
        assert not r.HasField("error"), (ops, r)
        self.model = trial
        assert [x.create.path or None for x in r.multi.results] == finals
        assert self.coord.last_zxid == before + (1 if ops else 0)

    @precondition(lambda self: self.timeouts)
    @rule(data=st.data())
    def close_session(self, data) -> None:
        self._tick()
        sid = data.draw(st.sampled_from(sorted(self.timeouts)))
        r = self.coord.handle(sid, pb.Request(close_session=pb.CloseSessionRequest()))
        if not self._alive(sid):
            assert r.error.code == pb.SESSION_EXPIRED     # expire() will close it
            return
        assert not r.HasField("error")
        self._forget(sid)

    def _forget(self, sid: int) -> None:
        self.model.kill(sid)
        del self.timeouts[sid], self.deadlines[sid]
        self.dead.append(sid)

    @rule(advance=st.sampled_from([1, 3_999, 4_000, 10_000, 39_999, 40_000]))
    def expire(self, advance: int) -> None:
        self.now += advance
        due = sorted((d, sid) for sid, d in self.deadlines.items() if d <= self.now)
        assert self.coord.expire_sessions() == [sid for _, sid in due]
        for _, sid in due:
            self._forget(sid)

    @rule()
    def save_snapshot(self) -> None:
        self.saved = self.coord.snapshot()

    @rule(from_snapshot=st.booleans())
    def restart(self, from_snapshot: bool) -> None:
        """A new Coordinator from an earlier snapshot (or nothing) plus the whole log."""
        before = self.coord.snapshot()
        self.coord = self._coordinator()
        self.coord.recover(self.saved if from_snapshot else None, list(self.raw_log))
        assert self.coord.snapshot() == before
        for sid, timeout in self.timeouts.items():
            self.deadlines[sid] = self.now + timeout

    # ---- checks ----

    @invariant()
    def tree_matches_model(self) -> None:
        tree = self.coord.tree
        assert len(tree) == len(self.model.nodes)
        for path, expected in self.model.nodes.items():
            node = tree.get(path)
            assert node is not None, path
            stat = node.stat()
            assert (node.data, stat.version, stat.cversion, stat.ephemeral_owner) == \
                (expected.data, expected.version, expected.cversion, expected.owner), path
            assert tree.children(path) == self.model.children(path), path
            assert stat.num_children == len(self.model.children(path))

    def teardown(self) -> None:
        fresh = self._coordinator()
        fresh.recover(None, list(self.raw_log))
        assert fresh.snapshot() == self.coord.snapshot()
        from_snap = self._coordinator()
        from_snap.recover(self.coord.snapshot(), [])
        assert from_snap.snapshot() == self.coord.snapshot()
        zxids = [logpb.Txn.FromString(raw).zxid for raw in self.raw_log]
        assert zxids == list(range(1, len(zxids) + 1))


TreeMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
test_tree_model = TreeMachine.TestCase
