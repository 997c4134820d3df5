"""Debian's zkCli.sh (ZooKeeper 3.8's Java CLI) back to back: the same commands against a real
ZooKeeper and against dcli, each command run on one server then the other, and exit code, stdout
and stderr compared after normalising:
* `Connecting to HOST:PORT` names the server's address: `<address>`;
* zxids printed in hex (cZxid, mZxid, pZxid) become z0, z1, ... in order of first appearance per
  server, as in transcript.py; ctime/mtime lines are wall-clock: `<time>`; a non-zero
  ephemeralOwner is a session id: `<session>`;
* the `WATCHER::` / `WatchedEvent ...` lines are printed by the client's event thread while the
  main thread prints the command's answer, so where they fall is a race inside the client: they are
  taken out of the stream and compared as a sorted list of their own (blank lines are dropped);
  the connection's own state events (`type:None`) are dropped, as a command refused by the
  client itself (a bad path) may exit before its connection's event is printed;
* SLF4J's warnings on stderr are the client's logging set-up, printed when its threads first
  log, interleaved at random with the command's own stderr: dropped;
* whoami's `scheme: user` lines are sorted (ZooKeeper keeps a connection's ids in a hash set).
Most commands are one-shot (`zkCli.sh -server H:P CMD ARGS`: its own session, left to expire);
what needs one session (addauth then a command, an ephemeral and getEphemerals) is one stdin-fed
session. The sequence runs once per module; each command is then its own test.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.conformance import reference_zk
from tests.conformance.transcript import Normaliser

CMD_TIMEOUT_S = 60
P = "/zkcli"
SESSION = ("addauth digest alice:secret", "whoami", f"create -e {P}/eph mine", f"getEphemerals {P}",
           f"ls {P}", "close", "quit")

# (id, argv after -server H:P); run in this order, each on both servers
COMMANDS = [
    ("create", ["create", P, "parent znode"]),
    ("create-child", ["create", f"{P}/child", "child znode"]),
    ("create-s", ["create", "-s", f"{P}/seq-", "s"]),
    ("create-s-again", ["create", "-s", f"{P}/seq-"]),
    ("create-c", ["create", "-c", f"{P}/cont", ""]),
    ("create-t", ["create", "-t", "600000", f"{P}/ttl", "t"]),
    ("create-deep", ["create", f"{P}/child/grand", "g"]),
    ("get", ["get", P]),
    ("get-s", ["get", "-s", P]),
    ("stat", ["stat", f"{P}/child"]),
    ("ls", ["ls", P]),
    ("ls-s", ["ls", "-s", P]),
    ("ls-R", ["ls", "-R", P]),
    ("set", ["set", f"{P}/child", "changed"]),
    ("set-s", ["set", "-s", f"{P}/child", "again"]),
    ("set-v-bad", ["set", "-v", "7", f"{P}/child", "x"]),
    ("get-after-set", ["get", "-s", f"{P}/child"]),
    ("getAllChildrenNumber", ["getAllChildrenNumber", P]),
    ("getEphemerals-none", ["getEphemerals", P]),
    ("sync", ["sync", P]),
    ("whoami", ["whoami"]),
    ("version", ["version"]),
    ("get-missing", ["get", f"{P}/missing"]),
    ("stat-missing", ["stat", f"{P}/missing"]),
    ("create-exists", ["create", P]),
    ("create-no-parent", ["create", f"{P}/no/parent"]),
    ("create-bad-path", ["create", f"{P}/bad/"]),
    ("delete-not-empty", ["delete", f"{P}/child"]),
    ("delete-v-bad", ["delete", "-v", "9", f"{P}/child/grand"]),
    ("delete", ["delete", f"{P}/child/grand"]),
    ("deleteall", ["deleteall", f"{P}/child"]),
    ("ls-after-deletes", ["ls", "-s", P]),
    ("usage-error", ["ls"]),
    ("unknown-command", ["frobnicate", P]),
]
KNOWN: dict[str, str] = {}


def run(address: str, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(reference_zk.ZKCLI), "-server", address, *argv], input=stdin,
                          capture_output=True, text=True, timeout=CMD_TIMEOUT_S)


_ZXID = re.compile(r"^(cZxid|mZxid|pZxid) = (0x[0-9a-f]+)$")
_TIME = re.compile(r"^(ctime|mtime) = .*$")
_OWNER = re.compile(r"^ephemeralOwner = (0x[0-9a-f]+)$")
_WHO = re.compile(r"^[a-z0-9]+: \S+$")


def normalise(out: str, address: str, norm: Normaliser) -> tuple[list[str], list[str]]:
    """(the stream's lines, the watcher lines sorted)"""
    lines, events = [], []
    for line in out.replace(address, "<address>").splitlines():
        if line in ("", "WATCHER::") or line.startswith("SLF4J: "):
            continue
        if line.startswith("WatchedEvent "):
            if "type:None " not in line:
                events.append(line)
            continue
        if m := _ZXID.match(line):
            line = f"{m[1]} = {norm.zxid(int(m[2], 16))}"
        elif m := _TIME.match(line):
            line = f"{m[1]} = <time>"
        elif (m := _OWNER.match(line)) and m[1] != "0x0":
            line = "ephemeralOwner = <session>"
        lines.append(line)
    # whoami: the `scheme: user` lines after `Auth scheme: User`, in sorted order
    if "Auth scheme: User" in lines:
        i = lines.index("Auth scheme: User") + 1
        j = i
        while j < len(lines) and _WHO.match(lines[j]):
            j += 1
        lines[i:j] = sorted(lines[i:j])
    return lines, sorted(events)


@pytest.fixture(scope="module")
def outputs(addresses):
    """Every command's normalised (exit code, stdout, stderr) per server, run in order."""
    if not reference_zk.ZKCLI.is_file():
        pytest.skip(f"{reference_zk.ZKCLI} is missing")
    norms = {name: Normaliser() for name in addresses}
    got: dict[str, dict[str, tuple]] = {}
    steps = [(cid, argv, None) for cid, argv in COMMANDS]
    steps.insert(7, ("session: addauth, whoami, ephemeral, getEphemerals", [], "\n".join(SESSION) + "\n"))
    for cid, argv, stdin in steps:
        got[cid] = {}
        for name, address in addresses.items():
            r = run(address, argv, stdin)
            got[cid][name] = (r.returncode, *normalise(r.stdout, address, norms[name]),
                              *normalise(r.stderr, address, norms[name]))
    return got


IDS = [cid for cid, _ in COMMANDS[:7]] + ["session: addauth, whoami, ephemeral, getEphemerals"] + \
      [cid for cid, _ in COMMANDS[7:]]


@pytest.mark.parametrize("cid", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN[c]))
                                 if c in KNOWN else c for c in IDS])
def test_zkcli_command(outputs, cid):
    zk, dcli = outputs[cid]["zookeeper"], outputs[cid]["dcli"]
    assert dcli == zk, f"\nzookeeper: {zk!r}\ndcli:      {dcli!r}"
