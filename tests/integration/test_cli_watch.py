"""One-shot watches and watch streams through the real CLI: the waiting command is a real process,
the change comes from another client, and the command prints zkCli's event lines."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from dcli.client import CoordClient
from tests.conftest import ROOT, ServerProcess

WAIT_S = 60


def start_cli(server: ServerProcess, *args: str) -> subprocess.Popen:
    env = dict(os.environ, DCLI_SERVER=server.address)
    return subprocess.Popen([sys.executable, "-c", "from dcli.cli.main import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)


def wait_for_line(proc: subprocess.Popen, expected: str) -> list[str]:
    """Read stdout lines until `expected` shows up (the command is then waiting for its event)."""
    lines = []
    while True:
        line = proc.stdout.readline().decode()
        assert line, f"command ended before printing {expected!r}: {lines} {proc.stderr.read()!r}"
        lines.append(line.rstrip("\n"))
        if lines[-1] == expected:
            return lines


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    # not communicate(): it reads the raw pipes and would skip what readline() already buffered
    proc.wait(timeout=WAIT_S)
    return proc.returncode, proc.stdout.read().decode(), proc.stderr.read().decode()


def event_lines(kind: str, path: str) -> str:
    return f"\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{kind} path:{path}\n"


def test_get_w_prints_the_data_then_the_event(server, root_path):
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"parent znode")
        proc = start_cli(server, "zk", "get", "-w", root_path)
        wait_for_line(proc, "parent znode")
        zk.set(root_path, b"some data")
    code, out, err = finish(proc)
    assert (code, out, err) == (0, event_lines("NodeDataChanged", root_path), "")


def test_ls_w_fires_on_a_new_child(server, root_path):
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"")
        proc = start_cli(server, "zk", "ls", "-w", root_path)
        wait_for_line(proc, "[]")
        zk.create(root_path + "/kid", b"")
    code, out, _ = finish(proc)
    assert code == 0 and out == event_lines("NodeChildrenChanged", root_path)


def test_stat_w_on_a_missing_node_waits_for_it(server, root_path):
    proc = start_cli(server, "zk", "stat", "-w", root_path)
    line = proc.stderr.readline().decode()
    assert line == f"Node does not exist: {root_path}\n"
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"now here")
    code, out, _ = finish(proc)
    assert code == 0 and out == event_lines("NodeCreated", root_path)


def test_watch_timeout_exits_5(server, root_path):
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"x")
    proc = start_cli(server, "zk", "get", "-w", "--timeout", "0.5", root_path)
    code, out, err = finish(proc)
    assert code == 5 and out == "x\n" and "Timed out" in err


def test_interrupting_a_waiting_command_exits_130(server, root_path):
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"x")
    proc = start_cli(server, "zk", "get", "-w", root_path)
    wait_for_line(proc, "x")
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130 and "Traceback" not in err


def test_watch_streams_events_and_runs_a_command_per_event(server, root_path, tmp_path):
    record = tmp_path / "events"
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"")
        proc = start_cli(server, "-w", "json", "zk", "watch", "-R", root_path, "--count", "3", "--",
                         sys.executable, "-c",
                         f"import os; open({str(record)!r}, 'a').write(os.environ['DCLI_WATCH_TYPE'] + ' ' + os.environ['DCLI_WATCH_PATH'] + '\\n')")
        assert proc.stderr.readline().decode() == f"Watching {root_path} (recursive watch); Ctrl-C stops\n"
        zk.set(root_path, b"1")
        first = json.loads(proc.stdout.readline())
        zk.create(root_path + "/a", b"")
        zk.delete(root_path + "/a")
    code, out, err = finish(proc)
    events = [first] + [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert [(e["type"], e["path"]) for e in events] == [
        ("NodeDataChanged", root_path), ("NodeCreated", root_path + "/a"), ("NodeDeleted", root_path + "/a")]
    assert record.read_text().splitlines() == [
        f"NodeDataChanged {root_path}", f"NodeCreated {root_path}/a", f"NodeDeleted {root_path}/a"]


def test_add_watch_persistent_prints_each_event(server, root_path):
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"")
        proc = start_cli(server, "zk", "addWatch", "-m", "PERSISTENT", root_path, "--count", "2")
        assert proc.stderr.readline().decode() == f"Watching {root_path} (watch); Ctrl-C stops\n"
        zk.set(root_path, b"p1")
        assert proc.stdout.readline() == b"\n"
        zk.set(root_path, b"p2")
    code, out, _ = finish(proc)
    assert code == 0
    assert "\n" + out == event_lines("NodeDataChanged", root_path) * 2


def test_removewatches_without_a_watch_is_an_error(server, root_path):
    proc = start_cli(server, "zk", "removewatches", root_path)
    code, _, err = finish(proc)
    assert code == 3 and err == f"KeeperErrorCode = No such watcher for {root_path}\n"
