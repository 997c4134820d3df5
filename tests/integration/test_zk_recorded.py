"""dcli's ZooKeeper listener against what a real ZooKeeper 3.8 answered: every recorded conformance
scenario (tests/conformance/recording.py; files in tests/conformance/recorded/, written by
`make record-zk`) runs against one dcli server, and its normalised transcript must equal the
recording, step by step. No java and no ZooKeeper needed; `make conformance` runs the same
scenarios against both servers live.

The known differences are xfail(strict=True) with the same reasons as in `make conformance`: each
fails the day dcli matches ZooKeeper, and then its mark goes.
"""
from __future__ import annotations

import pytest

from tests.conformance import recording
from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def dcli(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("zk-recorded") / "data", *recording.DCLI_FLAGS).start()
    assert srv.zk_address, "the dcli server does not serve ZooKeeper's protocol"
    yield srv
    srv.kill()


def _scenarios():
    for name in sorted(recording.RECORDED):
        reason = recording.KNOWN_DIFFERENCES.get(name)
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
        yield pytest.param(name, id=name, marks=marks)


def test_every_scenario_has_a_recording_from_zookeeper_3_8():
    files = {p.stem for p in recording.DIR.glob("*.json")}
    assert files == set(recording.RECORDED), ("recordings missing: " + ", ".join(sorted(set(recording.RECORDED) - files))
                                              + "; not recorded any more: " + ", ".join(sorted(files - set(recording.RECORDED)))
                                              + " (make record-zk writes them again)")
    for name in recording.RECORDED:
        r = recording.load(name)
        assert (r["scenario"], r["root"]) == (name, recording.root_of(name))
        assert r["zookeeper"].startswith("3.8."), f"{name} was recorded from ZooKeeper {r['zookeeper']}"
        assert r["steps"], f"{name}: an empty recording"


@pytest.mark.parametrize("name", list(_scenarios()))
def test_dcli_answers_as_zookeeper_did(dcli, name):
    recorded = recording.load(name)["steps"]
    got = recording.run(name, dcli.zk_address)
    assert recording.canonical(got) == recording.canonical(recorded), \
        "\n" + recording.differences(recorded, got)
