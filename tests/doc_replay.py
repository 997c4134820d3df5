"""Replaying the transcripts in README.md and docs/: the blocks a reader can run, and what they print.

A runnable block is a ```` ```console ```` fence whose line above is the marker

    <!-- replay -->                    against one server (started for the page)
    <!-- replay cluster=3 -->          against a local cluster of 3 nodes (one for the page)
    <!-- replay cluster=3 leader=1 --> the same, with node 1 made the Raft leader first

Inside it, a line `$ COMMAND` is a command (a trailing backslash continues it on the next line)
and the lines up to the next command are what it prints, stdout and stderr together, as a
terminal shows them. A printed line may end with `(exit N)` after some spaces: the command exits
with N (otherwise 0). A line that is just `...` stands for any number of lines.

Blocks of a page run in order on the same server or cluster, each command in `bash -c` with the
installed `dcli` and Kafka tools on PATH and DCLI_SERVER set. The transcripts are written for the
default addresses: node N of a cluster (or the one server) is 127.0.0.1:718N. The replay runs
them on free ports, so `127.0.0.1:718N` and `localhost:718N` in a command become node N's real
address, and real addresses in the output become 127.0.0.1:718N again; the cluster's directory
(DCLI_CLUSTER_DIR) prints as /home/me/.local/share/dcli/cluster. Then both sides are normalised
before they are compared (`normalise`): dates and times, hex numbers (zxids, session ids), topic
ids, process ids, runs of blanks and the width of table rules; in `dcli cluster status` rows the
role and the numbers (which node wins an election is chance: `leader=N` fixes it before a block,
and the text after a failure names the winner of the captured run); in the kv store's quorum
lines, what the replicas the answer did not wait for show (pending, stored or hinted; late,
current, repaired or failed), and how many answered beyond the quorum. (A quorum that is not
reached is an error line, compared as it is.)

`python -m tests.doc_replay FILE...` replays pages and prints what differs; with `--update` it
writes each command's real output into the page where it differs (a way to capture output,
never to invent it).
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!--\s*replay(?P<opts>(\s+\w+=\w+)*)\s*-->\s*$")
EXIT = re.compile(r"(^|\s+)\(exit (\d+)\)$")
DOC_CLUSTER_DIR = "/home/me/.local/share/dcli/cluster"
COMMAND_TIMEOUT_S = 90.0
LEADER_TIMEOUT_S = 30.0
# As the test fixtures' servers: sweeps and new groups without waiting.
SERVER_ARGS = ("--container-check-interval-ms", "200", "--group-initial-rebalance-delay-ms", "0")


@dataclasses.dataclass
class Command:
    line: int                    # 1-based line of the `$` in the page
    text: str                    # the command, continuation lines joined
    expected: list[str]          # the printed lines, with any `(exit N)` taken off
    exit_code: int
    span: tuple[int, int]        # 0-based [start, end) of the printed lines in the page


@dataclasses.dataclass
class Block:
    line: int
    nodes: int                   # 0: one server
    leader: int | None
    commands: list[Command]


def parse(text: str) -> list[Block]:
    """The marked blocks of a page, in order."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    fence = ""                   # the backticks of the fence we are in (a marker there is an example)
    while i < len(lines):
        ticks = re.match(r"^(`{3,})", lines[i].strip())
        if fence:
            if ticks and lines[i].strip() == ticks.group(1) and len(ticks.group(1)) >= len(fence):
                fence = ""
            i += 1
            continue
        if ticks:
            fence = ticks.group(1)
            i += 1
            continue
        m = MARKER.match(lines[i])
        if not m:
            i += 1
            continue
        opts = dict(o.split("=") for o in m.group("opts").split())
        if i + 1 >= len(lines) or lines[i + 1].strip() != "```console":
            raise ValueError(f"line {i + 1}: a replay marker must stand right above a ```console fence")
        start = i + 2
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append(Block(i + 1, int(opts.get("cluster", 0)),
                            int(opts["leader"]) if "leader" in opts else None,
                            _commands(lines, start, end)))
        i = end + 1
    return blocks


def _commands(lines: list[str], start: int, end: int) -> list[Command]:
    out: list[Command] = []
    i = start
    while i < end:
        if not lines[i].startswith("$ "):
            raise ValueError(f"line {i + 1}: a replayed block starts each command with '$ '")
        first = i
        parts = [lines[i][2:]]
        while parts[-1].endswith("\\") and i + 1 < end:
            i += 1
            parts.append(lines[i])
        i += 1
        out_start = i
        while i < end and not lines[i].startswith("$ "):
            i += 1
        expected = lines[out_start:i]
        code = 0
        for k, line in enumerate(expected):
            m = EXIT.search(line)
            if m:
                code = int(m.group(2))
                expected[k] = line[:m.start()]
        out.append(Command(first + 1, "\n".join(parts), expected, code, (out_start, i)))
    return out


_DATE = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} +\d+ \d\d:\d\d:\d\d \w+ \d{4}\b")
_ISO = re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?\b")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_TOPIC_ID = re.compile(r"TopicId: [\w-]+")
_PID = re.compile(r"\bpid \d+")
_UP_ROW = re.compile(r"^(\d+ 127\.0\.0\.1:\d+) \d+$")          # `dcli cluster up`: NODE ADDRESS PID
_STATUS_ROW = re.compile(r"^(\d+ 127\.0\.0\.1:\d+ (leader|follower|candidate|pre-candidate|-) )(.*)$")
_RULE = re.compile(r"([━─═])\1+")                             # rich's table rules: as wide as the ports
_REPLICAS = re.compile(r"^(.*\breplicas(: | = ))(\d+ \w+.*)$")
_MET = re.compile(r"\b([RW]) met: \d+ of")
# A kv answer waits for R or W replicas; what the others show by then is a race.
_OUTCOME = {"pending": "stored", "hinted": "stored", "late": "current", "repaired": "current",
            "failed": "current"}      # a dead replica's refusal may come before or after the answer


def normalise(line: str) -> str:
    """What may differ between two honest runs, made the same."""
    line = re.sub(r"[ \t]+", " ", line).strip()
    line = _DATE.sub("<date>", line)
    line = _ISO.sub("<date>", line)
    line = _HEX.sub("0x<hex>", line)
    line = _TOPIC_ID.sub("TopicId: <id>", line)
    line = _PID.sub("pid <pid>", line)
    line = _UP_ROW.sub(r"\1 <pid>", line)
    line = _RULE.sub(r"\1", line)
    m = _STATUS_ROW.match(line)
    if m:   # role, term, leader, commit, zxid, counts: they depend on elections and timing
        role = m.group(2) if m.group(2) == "-" else "<role>"
        line = m.group(1).rsplit(" ", 2)[0] + f" {role} " + re.sub(r"\d+", "N", m.group(3))
    line = _MET.sub(r"\1 met: N of", line)
    m = _REPLICAS.match(line)
    if m:
        line = m.group(1) + ", ".join(sorted(_replica(r) for r in m.group(3).split(", ")))
    return line


def _replica(item: str) -> str:
    """`3 hinted (hint kept by 1)` -> `3 stored`: a kv replica's outcome, its race taken out."""
    node, outcome, *rest = item.split(" ", 2)
    if outcome in _OUTCOME:
        return f"{node} {_OUTCOME[outcome]}"
    return item


def matches(expected: list[str], actual: list[str]) -> bool:
    """expected (with `...` lines) against actual, both normalised line by line."""
    exp = [normalise(x) for x in expected]
    act = [normalise(x) for x in actual]
    while exp and exp[-1] == "":
        exp.pop()
    while act and act[-1] == "":
        act.pop()
    return _match(exp, act)


def _match(exp: list[str], act: list[str]) -> bool:
    if not exp:
        return not act
    if exp[0] == "...":
        return any(_match(exp[1:], act[k:]) for k in range(len(act) + 1))
    return bool(act) and exp[0] == act[0] and _match(exp[1:], act[1:])


@dataclasses.dataclass
class Target:
    """Where a block's commands run: node N's real address is addresses[N-1]."""
    addresses: list[str]
    cluster_dir: Path | None = None
    zk_addresses: list[str] = dataclasses.field(default_factory=list)    # node N's ZooKeeper port: 218N

    def env(self, home: Path) -> dict:
        bindir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DCLI_", "XDG_"))}  # a reader's defaults
        env.update(PATH=bindir + os.pathsep + os.environ.get("PATH", ""), HOME=str(home),
                   PYTHONUNBUFFERED="1", COLUMNS="120", TERM="dumb", NO_COLOR="1")
        env["DCLI_SERVER"] = ",".join(self.addresses)
        if self.cluster_dir is not None:
            env["DCLI_CLUSTER_DIR"] = str(self.cluster_dir)
        return env

    def to_real(self, command: str) -> str:
        for doc, real in ((718, self.addresses), (218, self.zk_addresses)):
            for n, addr in enumerate(real, start=1):
                port = addr.rsplit(":", 1)[1]
                command = re.sub(rf"\b(127\.0\.0\.1|localhost):{doc}{n}\b", lambda m: f"{m.group(1)}:{port}",
                                 command)
        return command

    def to_doc(self, text: str) -> str:
        for n, addr in enumerate(self.zk_addresses, start=1):
            text = re.sub(rf"\b(127\.0\.0\.1|localhost):{addr.rsplit(':', 1)[1]}\b",
                          lambda m: f"{m.group(1)}:218{n}", text)
        for n, addr in enumerate(self.addresses, start=1):
            port = addr.rsplit(":", 1)[1]
            pad = " " * max(0, len(port) - 4)        # keeps a table's columns where they were
            text = re.sub(rf"\b(127\.0\.0\.1|localhost):{port}\b( ( |(?=[│┃])))?",
                          lambda m: f"{m.group(1)}:718{n}" + (m.group(2) + pad if m.group(2) else ""), text)
        if self.cluster_dir is not None:
            text = text.replace(str(self.cluster_dir), DOC_CLUSTER_DIR)
        return text


def run(command: Command, target: Target, home: Path) -> tuple[list[str], int]:
    """The command's output as the page would show it, and its exit code."""
    proc = subprocess.run(["bash", "-c", target.to_real(command.text)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=target.env(home),
                          cwd=home, timeout=COMMAND_TIMEOUT_S)
    text = target.to_doc(proc.stdout.decode(errors="replace"))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, proc.returncode


@dataclasses.dataclass
class Mismatch:
    command: Command
    actual: list[str]
    exit_code: int

    def report(self, page: str) -> str:
        diff = difflib.unified_diff(self.command.expected, self.actual, "documented", "actual", lineterm="")
        return (f"{page}:{self.command.line}: $ {self.command.text}\n"
                f"  exit code: documented {self.command.exit_code}, actual {self.exit_code}\n"
                + "\n".join("  " + d for d in diff))


def replay(text: str, targets: Callable[[Block], Target], home: Path) -> Iterator[Mismatch | Command]:
    """Run every marked block of a page; yields each command that ran as documented, and a
    Mismatch for each that did not."""
    for block in parse(text):
        target = targets(block)
        for command in block.commands:
            actual, code = run(command, target, home)
            if code == command.exit_code and matches(command.expected, actual):
                yield command
            else:
                yield Mismatch(command, actual, code)


def with_exit(lines: list[str], code: int) -> list[str]:
    """The printed lines as a page writes them: a non-zero exit code at the end of the last."""
    if code == 0:
        return lines
    if not lines or not lines[-1]:
        return list(lines) + [f"(exit {code})"]
    return lines[:-1] + [f"{lines[-1]}{' ' * max(3, 74 - len(lines[-1]))}(exit {code})"]


class Targets:
    """Starts what a page's blocks need, once per page (one server, one cluster per size), and
    stops it all at the end."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.made: dict[int, Target] = {}
        self.servers: list = []
        self.clusters = None

    def __call__(self, block: Block) -> Target:
        from tests.cluster_fixture import ClusterFactory
        from tests.conftest import ServerProcess

        if block.nodes not in self.made:
            if block.nodes == 0:
                self.servers.append(ServerProcess(self.workdir / "server" / "data", *SERVER_ARGS).start())
                wait_for_broker(self.servers[-1].address)
                self.made[0] = Target([self.servers[-1].address],
                                      zk_addresses=[self.servers[-1].zk_address] if self.servers[-1].zk_address else [])
            else:
                self.clusters = self.clusters or ClusterFactory(self.workdir)
                c = self.clusters(block.nodes, server_args=SERVER_ARGS)
                self.made[block.nodes] = Target(c.addresses, c.directory,
                                                zk_addresses=[n.zk_address for n in c.manager.nodes if n.zk_address])
        if block.leader is not None:
            make_leader(self.clusters.clusters[-1].manager, block.leader)
        return self.made[block.nodes]

    def logs(self) -> str:
        out = [f"--- server log\n{s.log()}" for s in self.servers]
        out += [c.logs() for c in (self.clusters.clusters if self.clusters else [])]
        return "\n".join(out)

    def close(self) -> None:
        for s in self.servers:
            s.kill()
        if self.clusters:
            self.clusters.close()


def wait_for_broker(address: str) -> None:
    """The node's broker has registered and its controller has written what it writes on
    taking over, so that a page's `ls /` shows the same tree every time."""
    from dcli.client import CoordClient

    with CoordClient(address) as zk:
        eventually(lambda: zk.exists("/brokers/ids/1") and zk.exists("/controller_epoch"), LEADER_TIMEOUT_S,
                   f"the broker at {address} to register", interval=0.1)


def make_leader(manager, node_id: int) -> None:
    """Node node_id leads the cluster (a leader transfer if another does), and every node knows it."""
    def leads() -> bool:
        states = manager.status_all()
        leaders = {s.leader_id for s in states if s.up}
        if leaders == {node_id} and all(s.up for s in states):
            return True
        if any(s.role == "leader" for s in states) and leaders != {node_id}:
            try:
                manager.transfer_leader(node_id)
            except Exception:       # mid-election: the next round asks again
                pass
        return False
    eventually(leads, LEADER_TIMEOUT_S, f"node {node_id} to become the leader", interval=0.1)


@dataclasses.dataclass
class PageResult:
    page: str
    passed: int
    mismatches: list[Mismatch]
    logs: str = ""

    def report(self) -> str:
        return "\n\n".join(m.report(self.page) for m in self.mismatches)


def replay_page(page: str, workdir: Path) -> PageResult:
    """Replay one page (a path relative to the repository) on servers of its own under workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    targets = Targets(workdir)
    try:
        results = list(replay((ROOT / page).read_text(), targets, home))
        bad = [r for r in results if isinstance(r, Mismatch)]
        return PageResult(page, len(results) - len(bad), bad, targets.logs() if bad else "")
    finally:
        targets.close()


def update_page(page: str, result: PageResult) -> int:
    """Write the real output of each mismatched command into the page; returns how many."""
    path = ROOT / page
    lines = path.read_text().split("\n")
    for m in sorted(result.mismatches, key=lambda m: m.command.span, reverse=True):
        a, b = m.command.span
        lines[a:b] = with_exit(m.actual, m.exit_code)
    path.write_text("\n".join(lines))
    return len(result.mismatches)


def _main(argv: list[str]) -> int:
    """Replay pages outside pytest; --update writes real output where a page differs."""
    import tempfile

    update = "--update" in argv
    failed = 0
    for page in (a for a in argv if not a.startswith("--")):
        with tempfile.TemporaryDirectory(prefix="doc-replay-") as tmp:
            result = replay_page(page, Path(tmp))
        failed += len(result.mismatches)
        if result.mismatches:
            print(result.report(), flush=True)
        print(f"{page}: {result.passed} command(s) as documented, {len(result.mismatches)} not")
        if update and result.mismatches:
            print(f"{page}: {update_page(page, result)} command(s) rewritten with their real output")
    return 1 if failed and not update else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
