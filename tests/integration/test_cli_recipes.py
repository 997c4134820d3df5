"""`dcli elect`, `dcli lock` and `dcli registry` as real processes against a real server."""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_cli

WAIT_S = 30
ENTRY = "from dcli.cli.main import main; main()"


class Cli:
    """A long-running `dcli ...` process whose stdout lines are read as they come."""

    def __init__(self, server, *args: str):
        env = dict(os.environ, DCLI_SERVER=server.address)
        self.proc = subprocess.Popen([sys.executable, "-c", ENTRY, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=ROOT)
        self.lines: list[str] = []
        self._buf = b""

    def line(self, timeout: float = WAIT_S) -> str:
        """The next stdout line; fails the test if none comes within timeout."""
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                pytest.fail(f"no line from {self.proc.args[3:]} within {timeout}s; so far {self.lines}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                pytest.fail(f"{self.proc.args[3:]} ended: {self.lines} {self.proc.stderr.read().decode()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\n", 1)
        self.lines.append(raw.decode())
        return self.lines[-1]

    def until(self, prefix: str, timeout: float = WAIT_S) -> list[str]:
        """Lines up to and including the first starting with prefix."""
        got = []
        while not got or not got[-1].startswith(prefix):
            got.append(self.line(timeout))
        return got

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT_S)


@pytest.fixture
def procs():
    started: list[Cli] = []
    yield started
    for p in started:
        p.kill()


def elect(server, procs, name: str, ident: str, *extra: str) -> Cli:
    p = Cli(server, "elect", name, "--id", ident, "--session-timeout", "4", *extra)
    procs.append(p)
    return p


def test_the_seeds_election_with_processes(server, procs, root_path):
    name = f"{root_path}/election"
    nodes = []
    for i in range(1, 5):
        nodes.append(elect(server, procs, name, f"node-{i}"))
        assert nodes[-1].line().startswith(f"joined {name} as c_")
        nodes[-1].line()        # elected / following
    znodes = [n.lines[0].split(" as ")[1].split()[0] for n in nodes]
    assert nodes[0].lines[1] == f"elected: leader of {name} as {znodes[0]}"
    for i in (1, 2, 3):
        assert nodes[i].lines[1] == f"following: watching {znodes[i - 1]}"

    nodes[0].signal(signal.SIGKILL)            # the leader dies; its session expires
    assert nodes[1].until("elected") == [f"notified: {znodes[0]} NodeDeleted",
                                         f"elected: leader of {name} as {znodes[1]}"]

    back = elect(server, procs, name, "node-1")     # the old leader rejoins: at the end
    assert back.until("following") [-1] == f"following: watching {znodes[3]}"

    nodes[2].stop()                                 # a follower leaves: the gap closes
    assert nodes[3].until("following") == [f"notified: {znodes[2]} NodeDeleted",
                                           f"following: watching {znodes[1]}"]
    # no herd: nobody else was told anything
    for quiet in (nodes[1], back):
        quiet.signal(signal.SIGTERM)
        quiet.proc.wait(timeout=WAIT_S)
        rest = quiet.proc.stdout.read().decode()
        assert "notified" not in rest, rest
    assert not any("notified" in line for line in back.lines)
    assert sum("notified" in line for line in nodes[1].lines) == 1


def test_observer_and_json_lines(server, procs, root_path):
    name = f"{root_path}/e"
    observer = Cli(server, "elect", "--observe", name)
    procs.append(observer)
    assert observer.line() == f"{name}: no leader"
    a = Cli(server, "-w", "json", "elect", name, "--id", "a")
    procs.append(a)
    joined, elected = json.loads(a.line()), json.loads(a.line())
    assert joined["event"] == "joined" and elected == {"event": "elected", "path": name,
                                                        "znode": joined["znode"], "id": "a"}
    assert observer.line() == f"{name}: leader a ({joined['znode']})"
    a.stop()
    assert observer.line() == f"{name}: no leader"


def test_elect_runs_the_command_while_leader_and_exits_with_its_code(server, root_path):
    r = run_cli("elect", f"{root_path}/e", "--id", "x", "--", sys.executable, "-c",
                "import os, sys; print('leading', os.environ['DCLI_ELECTION']); sys.exit(7)", server=server)
    assert r.returncode == 7, r.stderr
    assert f"leading {root_path}/e" in r.stdout.decode()
    assert r.stdout.decode().splitlines()[-1] == f"command exited with 7: leaving {root_path}/e"
    assert run_cli("zk", "ls", f"{root_path}/e", server=server).stdout.decode() == "[]\n"


@pytest.mark.slow
def test_a_frozen_leader_loses_its_session_and_rejoins_as_follower(server, procs, root_path):
    name = f"{root_path}/e"
    a = elect(server, procs, name, "a")
    assert a.until("elected")
    b = elect(server, procs, name, "b")
    assert b.until("following")
    a.signal(signal.SIGSTOP)                     # no heartbeats: the session expires
    assert b.until("elected")[-1].startswith("elected")
    a.signal(signal.SIGCONT)
    lines = a.until("following")
    assert "revoked: connection suspended" in lines or "revoked: session lost" in lines, lines
    assert "out of the election: session lost; joining again" in lines, lines
    assert lines[-1] == f"following: watching {b.lines[0].split(' as ')[1].split()[0]}"


def test_lock_runs_the_command_and_exits_with_its_code(server, root_path):
    r = run_cli("lock", f"{root_path}/l", "--", sys.executable, "-c",
                "import os, sys; print('holding', os.environ['DCLI_LOCK']); sys.exit(4)", server=server)
    assert r.returncode == 4
    assert r.stdout.decode().splitlines()[-1] == f"holding {root_path}/l"


def test_lock_excludes_across_processes(server, root_path, tmp_path):
    log = tmp_path / "log"
    body = ("import os\n"
            f"fd = os.open({str(log)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
            "for _ in range(50):\n    os.write(fd, b'in %d\\n' % os.getpid())\n"
            "os.write(fd, b'out\\n')\n")
    env = dict(os.environ, DCLI_SERVER=server.address)
    ps = [subprocess.Popen([sys.executable, "-c", ENTRY, "lock", f"{root_path}/l", "--",
                            sys.executable, "-c", body], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
          for _ in range(4)]
    assert [p.wait(timeout=120) for p in ps] == [0, 0, 0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 4 * 51
    for i in range(4):                           # each holder's lines are contiguous
        block = lines[i * 51:(i + 1) * 51]
        assert len({line for line in block[:50]}) == 1 and block[50] == "out", block


def test_lock_timeout_is_exit_5(server, procs, root_path):
    holder = Cli(server, "lock", f"{root_path}/l")
    procs.append(holder)
    assert holder.line().startswith(f"acquired {root_path}/l")
    r = run_cli("lock", f"{root_path}/l", "--timeout", "0.3", "--", "true", server=server)
    assert r.returncode == 5
    assert r.stderr.decode() == f"Timed out waiting for the lock {root_path}/l\n"


def test_registry_entries_live_with_their_processes(server, procs, root_path):
    root = f"{root_path}/service_registry"
    watch = Cli(server, "registry", "watch", "orders", "--root", root)
    procs.append(watch)
    assert watch.line() == "orders: (none)"
    one = Cli(server, "registry", "register", "orders", "127.0.0.1:8081", "--meta", "weight=2",
              "--root", root, "--session-timeout", "4")
    procs.append(one)
    assert one.line().startswith(f"registered 127.0.0.1:8081 as {root}/orders/n_")
    two = Cli(server, "registry", "register", "orders", "127.0.0.1:8082", "--root", root)
    procs.append(two)
    assert two.line().startswith(f"registered 127.0.0.1:8082 as {root}/orders/n_")
    assert watch.until("orders: 127.0.0.1:8081 127.0.0.1:8082")
    listed = run_cli("registry", "list", "--root", root, server=server).stdout.decode().splitlines()
    assert [line.split("\t")[2:] for line in listed] == [["127.0.0.1:8081", "weight=2"], ["127.0.0.1:8082"]]
    two.stop()                                   # deregisters at once
    assert watch.line() == "orders: 127.0.0.1:8081"
    one.signal(signal.SIGKILL)                   # gone when its session expires
    assert watch.line() == "orders: (none)"


def test_registry_bad_input(server):
    r = run_cli("registry", "register", "orders", "127.0.0.1:1", "--meta", "novalue", server=server)
    assert r.returncode == 2 and r.stderr.decode() == "--meta wants KEY=VALUE, not 'novalue'\n"
    r = run_cli("registry", "list", "a/b", server=server)
    assert r.returncode == 2 and r.stderr.decode().startswith("Invalid service name")
    r = run_cli("elect", "bad//path", server=server)
    assert r.returncode == 2 and "Invalid path" in r.stderr.decode()


@pytest.mark.slow
def test_a_frozen_lock_holder_learns_it_lost_the_lock_and_stops_its_command(server, procs, root_path, tmp_path):
    path = f"{root_path}/l"
    marker = tmp_path / "child-ended"
    child = ("import signal, sys, time\n"
             f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').close(), sys.exit(0)))\n"
             "print('child running', flush=True)\n"
             "signal.pause()\n")
    holder = Cli(server, "lock", path, "--session-timeout", "4", "--", sys.executable, "-c", child)
    procs.append(holder)
    assert holder.line().startswith(f"acquired {path}")
    assert holder.line() == "child running"
    holder.signal(signal.SIGSTOP)                   # no heartbeats: the session expires
    waiter = Cli(server, "lock", path, "--", "true")
    procs.append(waiter)
    assert waiter.line().startswith(f"acquired {path}")     # the lock passed on
    holder.signal(signal.SIGCONT)
    assert holder.proc.wait(timeout=WAIT_S) == 5
    assert "Lost the lock" in holder.proc.stderr.read().decode()
    assert marker.exists()                          # its command was stopped


@pytest.mark.slow
def test_a_registration_whose_session_was_lost_registers_again(server, procs, root_path):
    root = f"{root_path}/reg"
    reg = Cli(server, "registry", "register", "svc", "127.0.0.1:9", "--root", root, "--session-timeout", "4")
    procs.append(reg)
    first = reg.line()
    assert first.startswith(f"registered 127.0.0.1:9 as {root}/svc/n_")
    watch = Cli(server, "registry", "watch", "svc", "--root", root)
    procs.append(watch)
    assert watch.line() == "svc: 127.0.0.1:9"
    reg.signal(signal.SIGSTOP)
    assert watch.line() == "svc: (none)"            # the session expired: the entry went
    reg.signal(signal.SIGCONT)
    assert reg.line() == "registration lost: registering again"
    again = reg.line()
    assert again.startswith(f"registered 127.0.0.1:9 as {root}/svc/n_") and again != first
    assert watch.line() == "svc: 127.0.0.1:9"


def test_deleting_the_election_ends_the_leadership_and_the_candidate_joins_again(server, procs, root_path):
    name = f"{root_path}/e"
    a = elect(server, procs, name, "a")
    assert a.until("elected")
    assert run_cli("zk", "deleteall", name, server=server).returncode == 0
    lines = a.until("elected")
    assert lines[-4:-2] == ["revoked: znode deleted", "out of the election: znode deleted; joining again"], lines
    assert lines[-2].startswith(f"joined {name} as c_")
    assert lines[-1].startswith(f"elected: leader of {name} as c_")
    [child] = run_cli("zk", "ls", name, server=server).stdout.decode().strip("[]\n").split(", ")
    assert lines[-1].endswith(child)               # one candidate, once: no loop of rejoins


def test_a_command_killed_by_a_signal_exits_128_plus_n(server, root_path):
    r = run_cli("lock", f"{root_path}/l", "--", sys.executable, "-c",
                "import os, signal; os.kill(os.getpid(), signal.SIGTERM)", server=server)
    assert r.returncode == 128 + signal.SIGTERM
