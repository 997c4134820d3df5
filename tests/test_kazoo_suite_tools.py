"""The pieces of `make kazoo-suite` that run without kazoo's sdist or a server: reading pytest's JUnit
XML into classified results, and turning the harness's `java ... QuorumPeerMain zoo.cfg` into a
dcli server's arguments."""
from __future__ import annotations

import pytest

from tests.conformance import kazoo_java, kazoo_report

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
 <testcase classname="kazoo.tests.test_client.TestClient" name="test_create" time="0.5"/>
 <testcase classname="kazoo.tests.test_client.TestClient" name="test_set" time="0.1">
  <failure message="AssertionError: assert b'x' == b'y'&#10;  second line">E   AssertionError</failure>
 </testcase>
 <testcase classname="kazoo.tests.test_lock.TestLock" name="test_gone" time="0.1">
  <error message="failed on teardown with &quot;KeyError: 1&quot;">E   KeyError: 1</error>
 </testcase>
 <testcase classname="kazoo.tests.test_client.TestClient" name="test_update_host_list" time="1">
  <failure message="AssertionError: assert 'CONNECTING' == 'CONNECTED'">tb</failure>
 </testcase>
 <testcase classname="kazoo.tests.test_sasl.TestSASL" name="test_digest" time="0">
  <skipped type="pytest.skip" message="PureSASL not available.">skip</skipped>
 </testcase>
 <testcase classname="kazoo.tests.test_build.TestBuildEnvironment" name="test_zookeeper_version" time="0">
  <skipped type="pytest.skip" message="Only run build config tests on CI.">skip</skipped>
 </testcase>
 <testcase classname="kazoo.tests.test_queue.TestQueue" name="test_empty" time="0">
  <failure message="Failed">E   kazoo.exceptions.NoNodeError: ((), {})</failure>
 </testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    return {r.nodeid: r for r in kazoo_report.read_junit(str(path))}


def test_junit_cases_become_test_ids_with_outcomes_and_first_lines(results):
    assert results["kazoo/tests/test_client.py::TestClient::test_create"].status == "passed"
    failed = results["kazoo/tests/test_client.py::TestClient::test_set"]
    assert (failed.status, failed.reason) == ("failed", "AssertionError: assert b'x' == b'y'")
    teardown = results["kazoo/tests/test_lock.py::TestLock::test_gone"]
    assert teardown.outcome == "error" and teardown.reason.startswith("in teardown: ")
    # a bare message gives way to the exception line of the traceback
    assert results["kazoo/tests/test_queue.py::TestQueue::test_empty"].reason.startswith(
        "kazoo.exceptions.NoNodeError")


def test_out_of_scope_is_counted_apart_whatever_its_outcome(results):
    hosts = results["kazoo/tests/test_client.py::TestClient::test_update_host_list"]
    assert hosts.status == "out of scope" and "three servers" in hosts.out_of_scope
    assert results["kazoo/tests/test_sasl.py::TestSASL::test_digest"].status == "out of scope"
    assert results["kazoo/tests/test_build.py::TestBuildEnvironment::test_zookeeper_version"].status == "skipped"
    assert kazoo_report.counts(list(results.values())) == {
        "passed": 1, "failed": 3, "skipped": 1, "out of scope": 2}


def test_report_names_every_failure_and_ends_with_the_counts(results):
    text = kazoo_report.text_report(list(results.values()))
    for nodeid, r in results.items():
        if r.outcome in ("failed", "error"):
            assert nodeid in text and r.reason in text
    assert text.splitlines()[-1] == "kazoo: 1 passed, 3 failed, 1 skipped, 2 out of scope"
    table = kazoo_report.markdown_table(list(results.values()))
    assert "| `test_client.py::TestClient::test_update_host_list` | failed | out of scope |" in table


def _zoo_cfg(tmp_path, extra=""):
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"\ntickTime=2000\ndataDir={tmp_path / 'data'}\nclientPort=21000\nsecureClientPort=21004\n"
                   f"maxClientCnxns=0\n4lw.commands.whitelist=*\nreconfigEnabled=true\n{extra}")
    return str(cfg)


def test_the_harness_command_line_becomes_a_dcli_server_on_its_ports(tmp_path):
    argv = ["-cp", "x", "-Dreadonlymode.enabled=true",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            kazoo_java.MAIN_CLASS, _zoo_cfg(tmp_path)]
    args = kazoo_java.server_args(argv)
    opts = dict(zip(args[::2], args[1::2]))
    assert opts["--zk-listen"] == "127.0.0.1:21000"
    assert opts["--data-dir"] == str(tmp_path / "data" / "dcli")
    assert opts["--zk-4lw-whitelist"] == "*" and opts["--max-client-cnxns"] == "0"
    assert opts["--zk-super-digest"] == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    assert "--zk-secure-listen" not in opts         # no keystore written: no TLS port


def test_an_ensemble_or_another_java_program_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="ZOOKEEPER_CLUSTER_SIZE=1"):
        kazoo_java.server_args([kazoo_java.MAIN_CLASS, _zoo_cfg(tmp_path, "server.1=localhost:1:2:participant\n")])
    with pytest.raises(SystemExit, match="not a ZooKeeper start"):
        kazoo_java.server_args(["-version"])
