"""`dcli server start` as a user runs it: its one line, clean shutdown on signals, bad flags."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys

import pytest

from dcli.client import CoordClient, EventType
from tests.conftest import ROOT, ServerProcess, _readline, run_cli

WAIT_S = 60


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dcli_server", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_one_line_and_stops_cleanly_on_signals(tmp_path, sig):
    proc = start("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"))
    try:
        line = _readline(proc, WAIT_S)
        assert line.startswith("dcli server listening on 127.0.0.1:")
        assert line.endswith(f"data in {tmp_path / 'd'} (fsync always)")
        address = line.split()[4].rstrip(",")
        with CoordClient(address) as zk:
            zk.create("/x", b"kept")
        proc.send_signal(sig)
        assert proc.wait(WAIT_S) == 0
        assert proc.stderr.read() == b""
        again = ServerProcess(tmp_path / "d").start()      # the lock was released, the data kept
        with CoordClient(again.address) as zk:
            assert zk.get("/x")[0] == b"kept"
        again.kill()
    finally:
        proc.kill()


@pytest.mark.parametrize("args,message", [
    (["--fsync", "sometimes"], "invalid --fsync 'sometimes': choose always, batch or off"),
    (["--listen", "nonsense"], "invalid --listen 'nonsense': expected host:port"),
    (["--max-data-bytes", "0"], "must be positive"),
])
def test_bad_flags_are_refused_with_one_line(tmp_path, args, message):
    result = run_cli("server", "start", "--data-dir", str(tmp_path / "d"), *args)
    assert result.returncode == 2
    assert message in result.stderr.decode() and b"Traceback" not in result.stderr


def test_a_node_starts_without_typer_or_the_cli(tmp_path):
    """`python -m dcli_server` serves without importing Typer, click or anything under dcli.cli
    (-X importtime lists every module the process imported, on stderr)."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "dcli_server", "--listen", "127.0.0.1:0",
                             "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    try:
        line = _readline(proc, WAIT_S)
        address = line.split()[4].rstrip(",")
        with CoordClient(address) as zk:
            zk.create("/served", b"")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0
        imported = {row.split("|")[-1].strip() for row in proc.stderr.read().decode().splitlines() if "|" in row}
        assert "dcli_server.main" in imported and "grpc" in imported       # the list is real
        assert not {m for m in imported if m.split(".")[0] in ("typer", "click") or m == "dcli.cli" or m.startswith("dcli.cli.")}
    finally:
        proc.kill()


def test_a_config_file_configures_the_node_and_flags_win(tmp_path):
    """`dcli server start --config FILE`: the file's settings, under DCLI_* and flags."""
    config = tmp_path / "node.toml"
    config.write_text(f'data-dir = "{tmp_path / "from-file"}"\nfsync = "off"\nlisten = "127.0.0.1:1"\n')
    proc = subprocess.Popen([sys.executable, "-c", "from dcli.cli.main import main; main()", "server", "start",
                             "--config", str(config), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "DCLI_FSYNC": "batch"})
    try:
        line = _readline(proc, WAIT_S)
        assert line.startswith("dcli server listening on 127.0.0.1:")
        assert line.endswith(f"data in {tmp_path / 'from-file'} (fsync batch)")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0
    finally:
        proc.kill()


def test_print_config_prints_a_file_that_reads_back(tmp_path):
    first = run_cli("server", "start", "--print-config", "--node-id", "2",
                    "--peers", "1=127.0.0.1:7181,2=127.0.0.1:7182,3=127.0.0.1:7183", "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    text = first.stdout.decode()
    assert 'listen = "127.0.0.1:7182"' in text and "node-id = 2" in text
    (tmp_path / "node.toml").write_text(text)
    again = run_cli("server", "start", "--print-config", "--config", str(tmp_path / "node.toml"))
    assert again.stdout == first.stdout


def test_help_lists_every_setting():
    from dcli_server.config import SETTINGS

    result = run_cli("server", "start", "--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert all(f"--{s.name}" in out for s in SETTINGS) and "--config FILE" in out


def test_port_in_use_is_refused_with_one_line(server, tmp_path):
    result = run_cli("server", "start", "--listen", server.address, "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 5
    err = result.stderr.decode()
    assert err.count("\n") == 1 and f"cannot serve on {server.address}" in err


def test_container_and_ttl_nodes_are_swept(server, root_path):
    with CoordClient(server.address) as zk:
        zk.create(root_path, b"")
        zk.create(root_path + "/cont", b"", container=True)
        zk.create(root_path + "/cont/kid", b"")
        zk.create(root_path + "/ttl", b"", ttl=1)
        gone: queue.SimpleQueue = queue.SimpleQueue()
        zk.exists(root_path + "/cont", watch=gone.put)
        # a sweep may take the 1 ms TTL node before this watch is set: then there is no event
        # to wait for, only its absence below
        watched = [root_path + "/cont"]
        if zk.exists(root_path + "/ttl", watch=gone.put) is not None:
            watched.append(root_path + "/ttl")
        zk.delete(root_path + "/cont/kid")        # the container's last child: it goes next sweep
        events = {(e.type, e.path) for e in (gone.get(timeout=WAIT_S) for _ in watched)}
        assert events == {(EventType.NODE_DELETED, path) for path in watched}
        assert zk.get_children(root_path) == []
