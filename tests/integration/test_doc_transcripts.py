"""The documentation cannot drift: every runnable transcript in README.md and docs/ is replayed.

A block is runnable when the line above its ```` ```console ```` fence is `<!-- replay -->` (one
server) or `<!-- replay cluster=3 -->` (a local cluster; `leader=1` makes node 1 the Raft leader
first). Each `$ command` in it runs through the real CLI, in a subprocess, against a real server
or cluster started for the page, and what it prints must be what the page shows, after the
normalising described in tests/doc_replay.py (times, zxids, session and topic ids, pids, ports,
the cluster's directory, election results, kv replicas the answer did not wait for). `(exit N)`
after a printed line is the exit code the command must end with.

The pages replay side by side, each on servers of its own: most of a page's time is spent
waiting for processes to start, elections and fsyncs, not on the CPU.

When a page changes what a command prints, `python -m tests.doc_replay --update PAGE` writes the
real output into the page.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.doc_replay import ROOT, parse, replay_page

PAGES = ["README.md", "docs/coordination.md", "docs/broker.md", "docs/kv.md", "docs/cluster.md", "docs/auth.md",
         "docs/reference/server.md"]


def test_every_marked_page_is_replayed():
    """A page with replay markers that this test does not replay would drift unseen."""
    marked = {str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
              if parse(p.read_text())}
    assert marked <= set(PAGES), f"pages with replay markers missing from PAGES: {sorted(marked - set(PAGES))}"
    assert all(parse((ROOT / p).read_text()) for p in PAGES), "a page in PAGES has no replay marker"


def test_transcripts_replay(tmp_path):
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(replay_page, page, tmp_path / f"page-{i}") for i, page in enumerate(PAGES)]
        results = [f.result() for f in futures]
    assert all(r.passed for r in results), "a page replayed no command"
    bad = [r for r in results if r.mismatches]
    if bad:
        pytest.fail("\n\n".join(f"{r.report()}\n\n{r.logs[-8000:]}" for r in bad), pytrace=False)
