"""The documentation cannot drift: every runnable transcript in README.md and docs/ is replayed.

A block is runnable when the line above its ```` ```console ```` fence is `<!-- replay -->` (one
server) or `<!-- replay cluster=3 -->` (a local cluster; `leader=1` makes node 1 the Raft leader
first). Each `$ command` in it runs through the real CLI, in a subprocess, against a real server
or cluster started for the page, and what it prints must be what the page shows, after the
normalising described in tests/doc_replay.py (times, zxids, session and topic ids, pids, ports,
the cluster's directory, the numbers of `dcli cluster status` rows). `(exit N)` after a printed
line is the exit code the command must end with.

When a page changes what a command prints, `python -m tests.doc_replay --update PAGE` writes the
real output into the page.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.doc_replay import ROOT, Mismatch, Targets, parse, replay

PAGES = ["README.md", "docs/coordination.md", "docs/broker.md", "docs/kv.md", "docs/cluster.md"]
SERVER_ARGS = ("--container-check-interval-ms", "200", "--group-initial-rebalance-delay-ms", "0")
LEADER_TIMEOUT_S = 30.0


def make_leader(manager, node_id: int) -> None:
    """Node node_id leads the cluster (a leader transfer if another does), and every node knows it."""
    deadline = time.monotonic() + LEADER_TIMEOUT_S
    while time.monotonic() < deadline:
        states = manager.status_all()
        leaders = {s.leader_id for s in states if s.up}
        if leaders == {node_id} and all(s.up for s in states):
            return
        if any(s.role == "leader" for s in states) and leaders != {node_id}:
            try:
                manager.transfer_leader(node_id)
            except Exception:       # mid-election: the next round asks again
                pass
        time.sleep(0.1)
    raise AssertionError(f"node {node_id} did not become the leader within {LEADER_TIMEOUT_S:g} s")


def test_every_page_is_listed():
    """A page with replay markers that this test does not replay would drift unseen."""
    marked = {str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
              if parse(p.read_text())}
    assert marked <= set(PAGES), f"pages with replay markers missing from PAGES: {sorted(marked - set(PAGES))}"


@pytest.mark.parametrize("page", PAGES)
def test_transcripts_replay(page, tmp_path, local_cluster):
    text = (ROOT / page).read_text()
    assert parse(text), f"{page} has no replayable block"
    servers: list[ServerProcess] = []
    clusters = []

    def start_server() -> str:
        servers.append(ServerProcess(tmp_path / "server" / "data", *SERVER_ARGS).start())
        return servers[-1].address

    def start_cluster(n: int):
        clusters.append(local_cluster(n, server_args=SERVER_ARGS))
        return clusters[-1].addresses, clusters[-1].directory

    home = tmp_path / "home"
    home.mkdir()
    try:
        targets = Targets(start_server, start_cluster, lambda k: make_leader(clusters[-1].manager, k))
        results = list(replay(text, targets, home))
    finally:
        for s in servers:
            s.kill()
    bad = [r for r in results if isinstance(r, Mismatch)]
    assert not bad, "\n\n".join(m.report(page) for m in bad)
