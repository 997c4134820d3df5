"""ZooKeeper's answers to the conformance scenarios, kept in files committed in
tests/conformance/recorded/, so that `make test` compares dcli with them without java or ZooKeeper
(tests/integration/test_zk_recorded.py); `make record-zk` (record.py) writes them again from
Debian's ZooKeeper 3.8.

Owns: which scenarios are recorded, the known differences both the live comparison and the
replay mark as xfail, the file format, and running one scenario to its recordable transcript.

One file per scenario, `<name>.json`: "scenario", "zookeeper" (the version that answered, as
`srvr` says it), "recorded" (the UTC date), "root" (the path the scenario worked under: paths are
in the transcript, so a replay works under the same one) and "steps", the normalised transcript
(transcript.py), one step per line with keys sorted. JSON has no tuples and no bytes: a tuple is
written as a list, bytes as {"$bytes": text} where text is the bytes decoded as latin-1 (one code
point per byte: exact, and readable for ASCII data). The transcript of a run is encoded the same
way before it is compared, as canonical JSON text (so `true` is not `1`).
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Callable

from tests.conformance import acl_scenarios, scenarios, stream_scenarios
from tests.conformance.reference_zk import REAPER_INTERVAL_MS
from tests.conformance.transcript import Clients

DIR = Path(__file__).resolve().parent / "recorded"

# the dcli server both comparisons run against: the container reaper as often as the reference's,
# and every four-letter word allowed (the reference's 4lw.commands.whitelist=*)
DCLI_FLAGS = ("--container-check-interval-ms", str(REAPER_INTERVAL_MS), "--zk-4lw-whitelist", "*")

# every scenario the live comparison runs, the timed ones too (container and TTL reaping every
# 200 ms, a 4 s session's expiry): about 10 s against dcli in all
RECORDED: dict[str, Callable] = {f.__name__: f for f in (
    scenarios.crud_and_stats, scenarios.sequential_names, scenarios.null_and_empty, scenarios.errors,
    scenarios.reads_of_bad_paths, scenarios.multi, scenarios.watches, scenarios.session_close,
    scenarios.extended_creates, scenarios.container_through_create, scenarios.ephemerals_and_counts,
    scenarios.who_am_i, scenarios.big_packets,
    acl_scenarios.acl_session, acl_scenarios.exists_without_read,
    stream_scenarios.one_connection, stream_scenarios.failed_writes, stream_scenarios.random_stream,
    stream_scenarios.session_timeouts, stream_scenarios.abandoned_session)}

# where dcli answers otherwise, on purpose or not yet: xfail(strict=True) in both comparisons,
# so each fails the day dcli matches and the mark goes (docs/conformance.md, "Known differences")
KNOWN_DIFFERENCES: dict[str, str] = {
    "failed_writes":
        "ZooKeeper gives every failed write (delete NONODE, create NODEEXISTS, setData BADVERSION) a zxid of "
        "its own in the reply header (an error txn): (xid, zxid, err) [(1, z0, 0), (2, z1, -101), (3, z2, -110), "
        "(4, z3, -103), (5, z3, 0)]; dcli answers a failed write with the last zxid: [(1, z0, 0), (2, z0, -101), "
        "(3, z0, -110), (4, z0, -103), (5, z0, 0)]",
    "exists_without_read":
        "deliberate: ZooKeeper 3.8.0 answers exists on a znode its caller may not READ with the Stat; dcli asks "
        "for READ, as ZooKeeper's FinalRequestProcessor does from 3.8.4 on (NoAuth)",
}


def root_of(name: str) -> str:
    return "/" + name


def to_json(v: Any) -> Any:
    """A transcript value as JSON: tuples as lists, bytes as {"$bytes": latin-1 text}."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).decode("latin-1")}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {k: to_json(x) for k, x in v.items()}
    raise TypeError(f"a transcript value that cannot be recorded: {v!r}")


def canonical(step: Any) -> str:
    return json.dumps(step, sort_keys=True, ensure_ascii=True)


def run(name: str, address: str) -> list:
    """One scenario against the ZooKeeper protocol at address, with clients of its own, under
    root_of(name): its transcript, encoded as recorded."""
    clients = Clients()
    try:
        return to_json(RECORDED[name](clients, address, root_of(name)))
    finally:
        clients.close_all()


def save(name: str, steps: list, zookeeper_version: str, directory: Path | None = None) -> Path:
    date = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    head = {"scenario": name, "zookeeper": zookeeper_version, "recorded": date, "root": root_of(name)}
    lines = [f"  {canonical(k)}: {canonical(v)}," for k, v in head.items()]
    body = ",\n".join("    " + canonical(s) for s in steps)
    directory = directory or DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text("{\n" + "\n".join(lines) + '\n  "steps": [\n' + body + "\n  ]\n}\n")
    return path


def load(name: str, directory: Path | None = None) -> dict:
    return json.loads(((directory or DIR) / f"{name}.json").read_text())


def differences(recorded: list, got: list, limit: int = 30) -> str:
    """Every step where a run differs from the recording, for the failure message."""
    a, b = [canonical(x) for x in recorded], [canonical(y) for y in got]
    out = [f"step {i}: zookeeper {x} / dcli {y}" for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        out.append(f"lengths differ: zookeeper {len(a)}, dcli {len(b)}")
    return "\n".join(out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else []))
