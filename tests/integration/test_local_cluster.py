"""The local_cluster fixture and LocalCluster under it: node processes by id, signals, status,
and never a signal to a process that is not the node it was recorded as."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dcli.cluster import LocalCluster
from dcli.cluster.manager import default_directory
from dcli.cluster.process import run_state
from dcli.wire import errors
from tests.cluster_fixture import ClusterFactory

ROLES = {"leader", "follower", "candidate", "pre-candidate"}


def gone(pid: int) -> bool:
    return run_state(pid) in ("", "Z", "X")


def test_a_cluster_by_node_id(local_cluster):
    c = local_cluster(3)
    assert c.ids == [1, 2, 3]
    assert len(set(c.addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in c.addresses)
    assert c.servers == ",".join(c.addresses)
    for s in c.status_all():
        assert s.up and s.address == c.address(s.id) and s.role in ROLES and s.pid == c.pid(s.id)

    pid = c.pid(2)
    c.kill(2)
    assert gone(pid)
    assert [s.state for s in c.status_all()] == ["up", "down", "up"]
    c.start(2)
    c.wait_for(lambda: c.status(2).up, message="node 2 answers again")

    c.pause(3)
    assert c.status(3).state == "paused" and run_state(c.pid(3)) == "T"
    c.resume(3)
    assert c.status(3).up

    pid = c.pid(1)
    c.restart(1, kill=True)
    assert gone(pid) and c.pid(1) != pid and c.status(1).up
    c.stop(1)
    assert c.status(1).state == "down"


def test_a_paused_node_does_not_hold_up_status(local_cluster):
    """A frozen node accepts connections and never answers: status must not wait on it."""
    c = local_cluster(1)
    c.pause(1)
    assert c.manager.process_state(1) == "paused"
    assert c.status(1).state == "paused"


def test_a_recycled_pid_is_never_signalled(local_cluster):
    c = local_cluster(1)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = json.loads(c.manager.state_file.read_text())
        real = state["nodes"][0]["pid"]
        state["nodes"][0]["pid"] = stranger.pid          # as if node 1 had died and its pid been reused
        c.manager.state_file.write_text(json.dumps(state))
        fresh = LocalCluster(c.directory)                 # a later command: knows only cluster.json
        assert fresh.status(1).state == "down"
        with pytest.raises(errors.ClusterStateError):
            fresh.kill(1)
        with pytest.raises(errors.ClusterStateError):
            fresh.pause(1)
        assert fresh.down() == []
        assert stranger.poll() is None and run_state(stranger.pid) != "T"
    finally:
        stranger.kill()
        stranger.wait()
    assert not gone(real)                                 # the fixture's teardown ends it, by its Popen


def test_teardown_ends_every_process_it_started(tmp_path):
    factory = ClusterFactory(tmp_path)
    c = factory(3)
    c.pause(2)
    pids = [c.pid(i) for i in c.ids]
    factory.close()
    assert all(gone(p) for p in pids)


def test_a_node_that_cannot_start_is_reported_and_cleaned_up(tmp_path):
    manager = LocalCluster(tmp_path / "c", start_timeout=30.0)
    with pytest.raises(errors.NodeStartError, match="Unrecognized option: --no-such-flag"):
        manager.up(nodes=3, base_port=0, extra_args=["--no-such-flag"])
    assert manager.close() == []                          # nothing was left running
    assert not manager.exists()


def test_the_default_directory_sits_beside_the_single_nodes_data_dir():
    from dcli_server.config import ServerConfig

    assert default_directory().parent == ServerConfig().data_dir.parent
