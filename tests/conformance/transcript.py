"""What one client session saw, in a form two servers can be compared by: a list of (step, result)
where each result has the values that are the server's own replaced.

Normalised, and why:
* zxids (czxid, mzxid, pzxid, a reply header's zxid) are each server's own counter: each distinct
  zxid becomes `z0`, `z1`, ... in order of first appearance, so which values are equal (czxid ==
  mzxid after a create, one zxid for every op of a multi, pzxid moving on a child's delete) is
  still compared, but not the numbers;
* ctime and mtime are wall-clock: `<time>`;
* session ids (ephemeralOwner, whoAmI) are the server's: the transcript's own clients become
  their names (`me`, `other`), any other non-zero id `<session>`;
* an error is its kazoo exception's class name (the code, not the message).
Everything else (data, names with their sequence suffixes, version, cversion, aversion,
dataLength, numChildren, event type/state/path, error codes) is compared as is.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import WatchedEvent, ZnodeStat

from dcli.wire.jute import Reader, encode

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner",
               "dataLength", "numChildren", "pzxid")
WAIT_S = 15.0
CLIENT_TIMEOUT_S = 15


class Normaliser:
    def __init__(self, sessions: dict[int, str] | None = None):
        self.zxids: dict[int, str] = {}
        self.sessions = dict(sessions or {})

    def zxid(self, z: int) -> str:
        return self.zxids.setdefault(z, f"z{len(self.zxids)}")

    def session(self, sid: int) -> Any:
        return 0 if sid == 0 else self.sessions.get(sid, "<session>")

    def stat(self, s) -> dict:
        out = {}
        for f in STAT_FIELDS:
            v = getattr(s, f)
            if f.endswith("zxid"):
                v = self.zxid(v)
            elif f.endswith("time"):
                v = "<time>"
            elif f == "ephemeralOwner":
                v = self.session(v)
            out[f] = v
        return out

    def value(self, v: Any) -> Any:
        if isinstance(v, ZnodeStat) or type(v).__name__ == "Stat":
            return self.stat(v)
        if isinstance(v, WatchedEvent):
            return ("event", v.type, v.state, v.path)
        if isinstance(v, BaseException):
            return type(v).__name__
        if isinstance(v, (list, tuple)):
            return type(v)(self.value(x) for x in v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if dataclasses.is_dataclass(v):           # dcli's jute records (JuteCall answers)
            return {f.name: self.value(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return v


class Clients:
    """The `connect` a scenario is given: opens kazoo clients, all stopped by close_all()."""

    def __init__(self):
        self.open: list[KazooClient] = []

    def __call__(self, address: str) -> KazooClient:
        c = KazooClient(hosts=address, timeout=CLIENT_TIMEOUT_S)
        c.start(timeout=CLIENT_TIMEOUT_S)
        self.open.append(c)
        return c

    def close_all(self) -> None:
        for c in self.open:
            try:
                c.stop()
                c.close()
            except Exception:          # a client a scenario already closed
                pass


class Transcript:
    """Runs steps on one kazoo client and records each normalised result or error."""

    def __init__(self, client, name: str = "me"):
        self.client = client
        self.norm = Normaliser({client.client_id[0]: name})
        self.steps: list[tuple[str, Any]] = []

    def add_session(self, client, name: str) -> None:
        self.norm.sessions[client.client_id[0]] = name

    def do(self, label: str, fn: Callable, *args, **kwargs) -> Any:
        try:
            value = fn(*args, **kwargs)
        except KazooException as e:
            self.steps.append((label, type(e).__name__))
            return None
        except (ValueError, TypeError) as e:       # refused by kazoo before it is sent
            self.steps.append((label, "client " + type(e).__name__))
            return None
        self.steps.append((label, self.norm.value(value)))
        return value

    def note(self, label: str, value: Any) -> None:
        self.steps.append((label, self.norm.value(value)))


class Events:
    """Watch callbacks that keep every event they get, in order of arrival, each tagged with the
    watch it came to (`events.to("data /a")` is one callback), and let a test wait for them."""

    def __init__(self):
        self.got: list = []
        self._cond = threading.Condition()

    def to(self, tag: str) -> Callable:
        def callback(event) -> None:
            with self._cond:
                self.got.append((tag, event.type, event.path))
                self._cond.notify_all()
        return callback

    def wait(self, n: int, timeout: float = WAIT_S) -> list:
        """The events once there are n of them, or those that came within timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.got) < n and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            return list(self.got)


class JuteCall:
    """A request kazoo does not have (createContainer, createTTL, getEphemerals,
    getAllChildrenNumber, whoAmI), sent through kazoo's own connection with dcli's jute records."""

    def __init__(self, opcode: int, record, response_cls):
        self.type, self.record, self.response_cls = opcode, record, response_cls

    def serialize(self) -> bytes:
        return encode(self.record) if self.record is not None else b""

    def deserialize(self, buf, offset):
        return self.response_cls.read(Reader(buf, offset))


def call(client, opcode: int, record, response_cls, timeout: float = WAIT_S):
    result = client.handler.async_result()
    client._call(JuteCall(opcode, record, response_cls), result)
    return result.get(timeout=timeout)


def differences(a: list, b: list, limit: int = 30) -> str:
    """Every step where two transcripts differ (zookeeper's first), for the failure message."""
    out = [f"step {i} {x[0]!r}: zookeeper {x[1]!r} / dcli {y[1]!r}" if x[0] == y[0] else
           f"step {i}: zookeeper {x!r} / dcli {y!r}" for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        out.append(f"lengths differ: zookeeper {len(a)}, dcli {len(b)}")
    return "\n".join(out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else []))
