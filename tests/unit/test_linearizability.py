"""The linearizability checker on hand-written histories (with the verdict known), on histories
generated from a sequential run of the model, and the Recorder around fake client calls."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from dcli.client.types import Stat
from dcli.wire import errors
from tests.linearizability import (KINDS, UNKNOWN, Op, Recorder, ZnodeModel, check, check_ops,
                                   ops_from)

P = "/k"


def hist(*rows) -> list[Op]:
    """Rows (client, kind, input, output, call, ret) on path P; ret None = unknown outcome."""
    return ops_from([(c, P, k, i, o, t0, t1) for c, k, i, o, t0, t1 in rows])


def linearizable(*rows) -> bool:
    result = check(hist(*rows))
    assert result.ok is not None, result.detail
    return result.ok


# ---- linearizable by hand ------------------------------------------------------------------

def test_empty_history_and_sequential_lifecycle():
    assert check([]).ok
    assert linearizable(
        (1, "get", None, "no-node", 0, 1),
        (1, "create", b"a", "ok", 2, 3),
        (1, "create", b"x", "node-exists", 4, 5),
        (1, "set", (b"b", 0), 1, 6, 7),
        (1, "set", (b"c", 0), "bad-version", 8, 9),
        (1, "get", None, (b"b", 1), 10, 11),
        (1, "delete", 0, "bad-version", 12, 13),
        (1, "delete", 1, "ok", 14, 15),
        (1, "set", (b"d", -1), "no-node", 16, 17),
        (1, "delete", -1, "no-node", 18, 19),
        (1, "create", b"e", "ok", 20, 21),
        (1, "get", None, (b"e", 0), 22, 23))      # version restarts at 0


@pytest.mark.parametrize("first, second", [((b"b", 1), (b"b", 1)), ((b"a", 0), (b"b", 1)),
                                           ((b"a", 0), (b"a", 0))])
def test_reads_overlapping_a_write_may_see_either_side(first, second):
    assert linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (2, "set", (b"b", -1), 1, 2, 10),
        (3, "get", None, first, 3, 5),
        (4, "get", None, second, 6, 8))


@pytest.mark.parametrize("last", [b"b", b"c"])
def test_concurrent_writes_in_either_order(last):
    assert linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (2, "set", (b"b", -1), 1 if last == b"c" else 2, 2, 6),
        (3, "set", (b"c", -1), 2 if last == b"c" else 1, 3, 7),
        (4, "get", None, (last, 2), 8, 9))


def test_concurrent_creates_one_wins():
    assert linearizable(
        (1, "create", b"a", "ok", 0, 5),
        (2, "create", b"b", "node-exists", 1, 4),
        (3, "get", None, (b"a", 0), 6, 7))


def test_unknown_write_seen_later():
    assert linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (2, "set", (b"b", -1), UNKNOWN, 2, None),
        (3, "get", None, (b"a", 0), 5, 6),       # not yet applied
        (3, "get", None, (b"b", 1), 7, 8),       # applied in between
        (1, "set", (b"c", 1), 2, 9, 10))


def test_unknown_write_never_seen():
    assert linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (2, "set", (b"b", -1), UNKNOWN, 2, None),
        (2, "delete", -1, UNKNOWN, 3, None),
        (3, "get", None, (b"a", 0), 5, 6),
        (3, "get", None, (b"a", 0), 100, 101))


def test_unknown_create_and_unknown_read():
    assert linearizable(
        (1, "create", b"a", UNKNOWN, 0, None),
        (2, "get", None, UNKNOWN, 1, None),      # says nothing: dropped
        (2, "create", b"b", "node-exists", 3, 4),
        (3, "get", None, (b"a", 0), 5, 6))


def test_paths_are_independent():
    history = ops_from([(1, "/a", "create", b"x", "ok", 0, 1),
                        (2, "/b", "get", None, "no-node", 2, 3),
                        (2, "/b", "create", b"x", "ok", 4, 5)])
    assert check(history).ok
    assert check(history, initial={"/b": (b"old", 3)}).ok is False


# ---- not linearizable by hand --------------------------------------------------------------

def test_stale_read_after_completed_write():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (1, "set", (b"b", -1), 1, 2, 3),
        (2, "get", None, (b"a", 0), 4, 5))


def test_read_of_value_never_written():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (1, "set", (b"b", -1), UNKNOWN, 2, None),
        (2, "get", None, (b"z", 1), 3, 4))


def test_lost_update_with_versions():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (1, "get", None, (b"a", 0), 2, 3),
        (2, "get", None, (b"a", 0), 2, 3),
        (1, "set", (b"b", 0), 1, 4, 7),
        (2, "set", (b"c", 0), 1, 5, 8))          # both conditional sets won


def test_two_creates_both_succeed():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 5),
        (2, "create", b"b", "ok", 1, 4))


def test_version_goes_backwards():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (1, "set", (b"a", -1), 1, 2, 3),
        (2, "get", None, (b"a", 0), 4, 5))


def test_later_read_sees_older_value_than_earlier_read():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (2, "set", (b"b", -1), 1, 2, 20),        # overlaps both reads
        (3, "get", None, (b"b", 1), 3, 4),
        (4, "get", None, (b"a", 0), 5, 6))       # starts after the newer read returned


def test_unknown_write_cannot_be_seen_before_its_call():
    assert not linearizable(
        (1, "create", b"a", "ok", 0, 1),
        (2, "get", None, (b"b", 1), 2, 3),
        (3, "set", (b"b", -1), UNKNOWN, 4, None))


def test_failure_names_path_prefix_and_stuck_op():
    history = ops_from([(1, "/ok", "create", b"a", "ok", 0, 1),
                        (1, "/bad", "create", b"a", "ok", 0, 1),
                        (1, "/bad", "set", (b"b", -1), 1, 2, 3),
                        (2, "/bad", "get", None, (b"a", 0), 4, 5)])
    result = check(history)
    assert result.ok is False and result.path == "/bad"
    assert "2 of 3 ops" in result.detail
    assert "could not place before this op returned: 2: get(None) -> (b'a', 0)" in result.detail
    assert "state after it: (b'b', 1)" in result.detail


def test_search_is_bounded():
    rows = [(0, "create", b"a", "ok", -2, -1)]
    rows += [(i, "set", (b"v%d" % i, -1), i + 1, 0, 100) for i in range(12)]
    rows.append((99, "get", None, (b"never", 5), 101, 102))
    assert check(hist(*rows), max_steps=50).ok is None
    assert check(hist(*rows), timeout=0.0, max_steps=10**9).ok in (None, False)
    assert check(hist(*rows)).ok is False


# ---- generated from a sequential run -------------------------------------------------------

DATA = [b"v0", b"v1", b"v2"]
IMPOSSIBLE = b"never written"


@st.composite
def histories(draw, max_ops=14, spread=25, unknowns=True):
    """A sequential run of the model on two paths; op i takes effect at 10*i and its interval
    [call, ret] contains that instant (spread 0: no overlap). Some writes end unknown, applied
    or lost. The last op is always a completed get."""
    n = draw(st.integers(0, max_ops))
    state: dict[str, object] = {"/a": None, "/b": None}
    ops = []
    for i in range(n + 1):
        path = draw(st.sampled_from(sorted(state)))
        kind = "get" if i == n else draw(st.sampled_from(KINDS))
        version = -1 if state[path] is None else state[path][1]
        expected = draw(st.sampled_from([-1, 0, version, version + 1]))
        arg = {"create": draw(st.sampled_from(DATA)), "get": None, "delete": expected,
               "set": (draw(st.sampled_from(DATA)), expected)}[kind]
        fate = draw(st.sampled_from(["ok"] * 8 + ["unknown", "lost"])) if unknowns else "ok"
        if kind == "get" and fate != "ok":
            fate = "ok"
        output = UNKNOWN
        if fate != "lost":
            output, state[path] = ZnodeModel.apply(state[path], kind, arg)
        if fate != "ok":
            output = UNKNOWN
        call = 10 * i - draw(st.integers(0, spread))
        ret = math.inf if output == UNKNOWN else 10 * i + draw(st.integers(0, spread))
        ops.append(Op(draw(st.integers(0, 3)), path, kind, arg, output, call, ret))
    return ops


@settings(max_examples=150, deadline=None)
@given(histories())
def test_generated_histories_are_linearizable(ops):
    result = check(ops)
    assert result.ok, result.detail


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_impossible_read_fails(ops, data):
    gets = [i for i, op in enumerate(ops) if op.kind == "get"]
    i = data.draw(st.sampled_from(gets))
    ops[i] = Op(ops[i].client, ops[i].path, "get", None, (IMPOSSIBLE, data.draw(st.integers(0, 3))),
                ops[i].call, ops[i].ret)
    result = check(data.draw(st.permutations(ops)))
    assert result.ok is False and result.path == ops[i].path


@settings(max_examples=150, deadline=None)
@given(histories(spread=0, unknowns=False), st.data())
def test_any_changed_read_fails_without_concurrency(ops, data):
    gets = [i for i, op in enumerate(ops) if op.kind == "get"]
    i = data.draw(st.sampled_from(gets))
    wrong = data.draw(st.sampled_from(["no-node"] + [(d, v) for d in DATA for v in range(4)])
                      .filter(lambda out: out != ops[i].output))
    ops[i] = Op(ops[i].client, ops[i].path, "get", None, wrong, ops[i].call, ops[i].ret)
    assert check(ops).ok is False


def test_long_concurrent_history_is_fast():
    state, ops = None, []
    for i in range(400):
        kind = KINDS[i * 7 % 4]
        arg = {"create": b"c", "get": None, "delete": -1, "set": (b"s%d" % i, -1)}[kind]
        output, state = ZnodeModel.apply(state, kind, arg)
        ops.append(Op(i % 5, P, kind, arg, output, 10 * i - (i * 13 % 50), 10 * i + (i * 29 % 50)))
    ok, _, steps = check_ops(ops)
    assert ok and steps < 50_000


# ---- the recorder --------------------------------------------------------------------------

def stat(version: int) -> Stat:
    return Stat(0, 0, 0, 0, version, 0, 0, 0, 0, 0, 0)


def test_recorder_outputs_and_failures():
    ticks = iter(range(100))
    rec = Recorder(clock=lambda: next(ticks))
    with rec.op("c1", "create", P, b"a") as op:
        op.ok(P)
    with rec.op("c1", "set", P, (b"b", 0)) as op:
        op.ok(stat(1))
    with rec.op("c2", "get", P) as op:
        op.ok((b"b", stat(1)))
    with rec.op("c2", "set", P, (b"c", 0)) as op:
        raise errors.BadVersionError(P)
    with rec.op("c3", "delete", P, -1) as op:
        raise errors.ConnectionLossError(P)
    assert isinstance(op.error, errors.ConnectionLossError)
    with rec.op("c3", "get", P) as op:
        raise TimeoutError()
    with pytest.raises(KeyError):
        with rec.op("c3", "create", P, b"z") as op:
            raise KeyError("a bug in the test, not an outcome")
    h = rec.history()
    assert [o.output for o in h] == ["ok", 1, (b"b", 1), "bad-version", UNKNOWN, UNKNOWN, UNKNOWN]
    assert (h[0].call, h[0].ret) == (0, 1) and h[4].ret == math.inf
    assert check(h).ok


def test_recorder_requires_an_outcome():
    rec = Recorder()
    with pytest.raises(RuntimeError):
        with rec.op("c1", "get", P):
            pass
    with pytest.raises(ValueError):
        rec.op("c1", "cas", P)
