"""A linearizability checker for recorded client histories, in the manner of Porcupine.

It owns three things: the history (`Op`, and `Recorder`, which times real client calls), the
sequential specification of one znode (`ZnodeModel`), and `check`, which searches for a
linearization with Wing & Gong's algorithm as improved by Lowe (just-in-time linearization,
memoized on the set of linearized ops plus the model state).

    rec = Recorder()
    with rec.op("c1", "create", "/k", b"a") as op:
        op.ok(zk.create("/k", b"a"))
    with rec.op("c2", "set", "/k", (b"b", 0)) as op:
        op.ok(zk.set("/k", b"b", version=0))     # Stat -> its version
    with rec.op("c3", "get", "/k") as op:
        op.ok(zk.get("/k"))                      # (data, Stat) -> (data, version)
    result = check(rec.history())
    assert result.ok, result.detail

Ops, inputs and outputs (`UNKNOWN` is the output of any op whose outcome was not seen):

    kind      input                   output
    create    data                    "ok" | "node-exists"
    set       (data, expected_ver)    new version (int) | "no-node" | "bad-version"
    get       None                    (data, version) | "no-node"
    delete    expected_ver            "ok" | "no-node" | "bad-version"

An op that timed out or lost its connection may or may not have been applied. As in Porcupine
and Knossos its return time is +infinity and its output `UNKNOWN`, which the model accepts
whatever the state: the search may place it anywhere after its call (it took effect then) or
after everything else (which is the same as never). Unknown reads say nothing and are dropped.
A history is checked one path at a time (linearizability is compositional per object).
"""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from dcli.wire import errors

UNKNOWN = "unknown"
KINDS = ("create", "set", "get", "delete")
# The only failures that prove an op took no effect and say something about the state; anything
# else (connection loss, timeout, session expiry, ...) leaves the outcome unknown.
DEFINITE_ERRORS: dict[type[Exception], str] = {
    errors.NoNodeError: "no-node",
    errors.NodeExistsError: "node-exists",
    errors.BadVersionError: "bad-version",
}


@dataclass(frozen=True)
class Op:
    """One client call: `call` <= `ret` on one comparable clock; `ret` is inf when unknown."""

    client: Hashable
    path: str
    kind: str
    input: Any
    output: Any
    call: float
    ret: float = math.inf

    def __str__(self) -> str:
        ret = "inf" if self.ret == math.inf else f"{self.ret:g}"
        return (f"{self.client}: {self.kind}({_short(self.input)}) -> {_short(self.output)}"
                f" [{self.call:g}, {ret}]")


@dataclass(frozen=True)
class Result:
    """ok is True (linearizable), False (not; `path` names the object) or None (search gave up)."""

    ok: bool | None
    path: str | None = None
    detail: str = ""


class ZnodeModel:
    """One znode as ZooKeeper sees it: None (absent) or (data, version); version 0 on create,
    +1 on every set, and back to 0 when the znode is deleted and created again."""

    @staticmethod
    def init() -> Any:
        return None

    @staticmethod
    def apply(state: Any, kind: str, arg: Any) -> tuple[Any, Any]:
        """(output, next state) of running the op on state."""
        if kind == "create":
            return ("node-exists", state) if state is not None else ("ok", (arg, 0))
        if kind == "get":
            return ("no-node" if state is None else state), state
        if state is None:
            return "no-node", state
        data, version = state
        if kind == "set":
            new_data, expected = arg
            if expected not in (-1, version):
                return "bad-version", state
            return version + 1, (new_data, version + 1)
        if kind == "delete":
            return ("bad-version", state) if arg not in (-1, version) else ("ok", None)
        raise ValueError(f"unknown op kind {kind!r}")

    @classmethod
    def step(cls, state: Any, op: Op) -> tuple[bool, Any]:
        """Whether op may take effect in state with the output it reported, and the state after."""
        output, after = cls.apply(state, op.kind, op.input)
        return (op.output == UNKNOWN or op.output == output), after


# ---- the search ----------------------------------------------------------------------------

class _Entry:
    """A call or return event in the doubly linked list the search lifts ops out of."""

    __slots__ = ("op_id", "is_call", "time", "match", "prev", "next")

    def __init__(self, op_id: int, is_call: bool, time: float):
        self.op_id, self.is_call, self.time = op_id, is_call, time
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None

    def lift(self) -> None:
        """Unlink this call and its return: the op has been linearized."""
        for e in (self, self.match):
            e.prev.next = e.next
            if e.next is not None:
                e.next.prev = e.prev

    def unlift(self) -> None:
        """Undo `lift`, return first (the reverse order keeps the neighbours' links right)."""
        for e in (self.match, self):
            e.prev.next = e
            if e.next is not None:
                e.next.prev = e


def _entry_list(ops: list[Op]) -> _Entry:
    """Calls and returns sorted by time, calls before returns at equal times (ops touching at an
    instant count as concurrent: the lenient reading, so clock granularity cannot fail a test)."""
    events = []
    for i, op in enumerate(ops):
        call, ret = _Entry(i, True, op.call), _Entry(i, False, op.ret)
        call.match = ret
        events += [(op.call, 0, i, call), (op.ret, 1, i, ret)]
    events.sort(key=lambda t: t[:3])
    head = prev = _Entry(-1, True, -math.inf)
    for *_, e in events:
        prev.next, e.prev = e, prev
        prev = e
    return head


@dataclass
class _Deepest:
    """The longest linearizable prefix seen, to explain a failure."""

    order: list[int] = field(default_factory=list)
    state: Any = None
    stuck: int = -1
    pending: list[int] = field(default_factory=list)


def check_ops(ops: list[Op], model=ZnodeModel, initial: Any = None, max_steps: int = 1_000_000,
              deadline: float | None = None) -> tuple[bool | None, _Deepest, int]:
    """Search one object's history: (verdict, deepest prefix, steps). Ops with unknown output
    must be linearized too, but once every known op is, the rest go last and always fit."""
    head = _entry_list(ops)
    state = model.init() if initial is None else initial
    known_left = sum(op.output != UNKNOWN for op in ops)
    linearized = 0
    seen: set[tuple[int, Any]] = set()
    calls: list[tuple[_Entry, Any]] = []     # (entry lifted, state before it)
    deepest = _Deepest(state=state)
    steps = 0
    entry = head.next
    while known_left > 0:
        steps += 1
        if steps > max_steps or (deadline is not None and steps % 1024 == 0
                                 and time.monotonic() > deadline):
            return None, deepest, steps
        if entry.is_call:
            op = ops[entry.op_id]
            fits, after = model.step(state, op)
            key = (linearized | (1 << entry.op_id), after)
            if fits and key not in seen:
                seen.add(key)
                calls.append((entry, state))
                state, linearized = after, key[0]
                known_left -= op.output != UNKNOWN
                entry.lift()
                entry = head.next
            else:
                entry = entry.next
            continue
        # a return whose op is not linearized yet: nothing before it fits, so undo the last choice
        if len(calls) > len(deepest.order) or deepest.stuck < 0:
            deepest = _Deepest([c.op_id for c, _ in calls], state, entry.op_id,
                               _pending_calls(head, entry))
        if not calls:
            return False, deepest, steps
        entry, state = calls.pop()
        linearized &= ~(1 << entry.op_id)
        known_left += ops[entry.op_id].output != UNKNOWN
        entry.unlift()
        entry = entry.next
    return True, deepest, steps


def _pending_calls(head: _Entry, stop: _Entry) -> list[int]:
    """Ops called (and not linearized) before `stop`: the candidates that were tried there."""
    out, e = [], head.next
    while e is not None and e is not stop:
        if e.is_call:
            out.append(e.op_id)
        e = e.next
    return out


def check(history: list[Op], model=ZnodeModel, *, initial: dict[str, Any] | None = None,
          max_steps: int = 1_000_000, timeout: float | None = None) -> Result:
    """Check every path of history on its own. `initial` maps a path to its state before the
    history (default: model.init()). Gives up with ok=None after max_steps search steps on one
    path or `timeout` seconds in all, unless some other path already failed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    by_path: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        if op.kind not in KINDS:
            raise ValueError(f"unknown op kind {op.kind!r} in {op}")
        if op.output == UNKNOWN and op.kind == "get":
            continue
        if op.output != UNKNOWN and op.ret < op.call:
            raise ValueError(f"op returns before it is called: {op}")
        by_path[op.path].append(op)
    gave_up = []
    for path in sorted(by_path):
        ops = by_path[path]
        ok, deepest, steps = check_ops(ops, model, (initial or {}).get(path), max_steps, deadline)
        if ok is False:
            return Result(False, path, _explain(path, ops, deepest))
        if ok is None:
            gave_up.append(f"{path} ({len(ops)} ops, gave up after {steps} steps)")
    if gave_up:
        return Result(None, None, "search bounded out on " + ", ".join(gave_up))
    return Result(True, None, f"linearizable: {len(history)} ops on {len(by_path)} paths")


def _explain(path: str, ops: list[Op], deepest: _Deepest) -> str:
    lines = [f"not linearizable on {path}: longest linearizable prefix has "
             f"{len(deepest.order)} of {len(ops)} ops:"]
    lines += [f"  {ops[i]}" for i in deepest.order]
    lines.append(f"state after it: {_short(deepest.state)}")
    if deepest.stuck >= 0:
        lines.append(f"could not place before this op returned: {ops[deepest.stuck]}")
        lines.append("none of these fits next:")
        lines += [f"  {ops[i]}" for i in deepest.pending]
    return "\n".join(lines)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- recording -----------------------------------------------------------------------------

class Recorder:
    """Collects Ops from many threads around real client calls; `clock` defaults to
    time.monotonic_ns. Inside `with rec.op(...) as op:` call `op.ok(result)` with what the client
    returned; a NoNode/NodeExists/BadVersion error becomes that op's output, any other
    DcliError or TimeoutError makes it unknown and is swallowed (so a workload keeps going and
    can look at `op.error`); other exceptions are recorded as unknown and propagate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic_ns):
        self.clock = clock
        self._ops: list[Op] = []
        self._lock = threading.Lock()

    def op(self, client: Hashable, kind: str, path: str, input: Any = None) -> _Pending:
        if kind not in KINDS:
            raise ValueError(f"unknown op kind {kind!r}")
        return _Pending(self, client, kind, path, input)

    def add(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def history(self) -> list[Op]:
        with self._lock:
            return list(self._ops)


class _Pending:
    """One op being timed; see Recorder."""

    def __init__(self, rec: Recorder, client: Hashable, kind: str, path: str, input: Any):
        self.rec, self.client, self.kind, self.path, self.input = rec, client, kind, path, input
        self.output: Any = None
        self.error: BaseException | None = None
        self.call = 0

    def __enter__(self) -> _Pending:
        self.call = self.rec.clock()
        return self

    def ok(self, result: Any = None) -> None:
        """The client's return value: create's path, set's Stat, get's (data, Stat), delete's
        None; or already the model's output."""
        self.output = _output_of(self.kind, result)

    def fail(self, output: str) -> None:
        """A definite failure given by name ("no-node", "node-exists", "bad-version")."""
        self.output = output

    def __exit__(self, exc_type, exc, tb) -> bool:
        ret = self.rec.clock()
        if exc is not None:
            self.error = exc
            self.output = next((out for cls, out in DEFINITE_ERRORS.items()
                                if isinstance(exc, cls)), UNKNOWN)
        elif self.output is None:
            raise RuntimeError(f"{self.kind} {self.path}: neither ok() nor fail() was called")
        if self.output == UNKNOWN:
            ret = math.inf
        self.rec.add(Op(self.client, self.path, self.kind, self.input, self.output, self.call, ret))
        return isinstance(exc, (errors.DcliError, TimeoutError))


def _output_of(kind: str, result: Any) -> Any:
    if kind in ("create", "delete"):
        return "ok"
    if kind == "set":
        return result if isinstance(result, int) else result.version
    if kind == "get":
        if isinstance(result, str):
            return result
        data, stat = result
        return (data or b"", stat if isinstance(stat, int) else stat.version)
    raise ValueError(f"unknown op kind {kind!r}")


def ops_from(rows: list[tuple]) -> list[Op]:
    """Ops from (client, path, kind, input, output, call, ret) rows, ret None meaning unknown:
    a compact way to write histories by hand."""
    return [Op(client, path, kind, inp, out, call, math.inf if ret is None else ret)
            for client, path, kind, inp, out, call, ret in rows]
