"""A Coordinator under test: an injected clock, the txns it logs and the events it delivers."""
from __future__ import annotations

from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coordlog_pb2 as logpb
from dcli_server.coord import Coordinator, Limits

T0 = 1_764_030_612_000          # Wed Nov 25 00:30:12 UTC 2025, in ms


class Clock:
    def __init__(self, t: int = T0):
        self.t = t

    def __call__(self) -> int:
        return self.t


class Harness:
    def __init__(self, limits: Limits | None = None, clock: Clock | None = None, node_id: int = 1):
        self.clock = clock or Clock()
        self.log: list[logpb.Txn] = []
        self.events: list[tuple[int, int, str, int]] = []
        self.coord = Coordinator(limits=limits or Limits(), log=self._log, deliver=self._deliver,
                                 now_ms=self.clock, node_id=node_id)
        self.xid = 0

    def _log(self, txn: logpb.Txn) -> None:
        self.log.append(logpb.Txn.FromString(txn.SerializeToString()))

    def _deliver(self, session_id: int, event: pb.WatchEvent) -> None:
        self.events.append((session_id, event.type, event.path, event.zxid))

    def session(self, timeout: int = 30_000) -> int:
        return self.coord.open_session(timeout)[0]

    def call(self, sid: int, **op) -> pb.Response:
        self.xid += 1
        return self.coord.handle(sid, pb.Request(xid=self.xid, **op))

    def ok(self, sid: int, **op) -> pb.Response:
        r = self.call(sid, **op)
        assert not r.HasField("error"), r.error
        return r

    def err(self, sid: int, **op) -> pb.Error:
        r = self.call(sid, **op)
        assert r.HasField("error"), r
        return r.error

    def exists(self, sid: int, path: str) -> bool:
        return self.ok(sid, exists=pb.ExistsRequest(path=path)).HasField("stat")
