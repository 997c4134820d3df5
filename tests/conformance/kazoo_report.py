"""The outcome of one run of kazoo's own test suite: read from pytest's JUnit XML, each test classified
(passed, failed, skipped, out of scope) with a one-line reason, counted and printed.

"Out of scope" is a test that needs what one dcli node does not offer and is not meant to:
three servers, read-only mode, dynamic reconfiguration of an ensemble, SASL or Kerberos, or the
gevent and eventlet handlers (the suite runs kazoo's threading handler only). Whatever such a test
did, it is counted apart and does not fail the run; every other failure does.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

# test id prefix -> why one dcli node is not expected to pass it
OUT_OF_SCOPE = {
    "kazoo/tests/test_connection.py::TestReadOnlyMode::":
        "three servers and read-only mode: stops two of them and expects the third to serve reads",
    "kazoo/tests/test_client.py::TestClient::test_update_host_list":
        "three servers: stops cluster[0] and expects the client to stay connected through the others",
    "kazoo/tests/test_client.py::TestReconfig::":
        "dynamic reconfiguration: ZooKeeper serves reconfig on a quorum's leader only (a standalone "
        "ZooKeeper answers UNIMPLEMENTED, -6); dcli answers RECONFIGDISABLED (-123), as ZooKeeper does "
        "with reconfigEnabled=false",
    "kazoo/tests/test_sasl.py::":
        "SASL (DIGEST-MD5, GSSAPI/Kerberos): needs pure-sasl, a JAAS config and a KDC",
    "kazoo/tests/test_gevent_handler.py::":
        "the gevent handler: the suite runs the threading handler only",
    "kazoo/tests/test_eventlet_handler.py::":
        "the eventlet handler: the suite runs the threading handler only",
    "kazoo/tests/test_utils.py::TestCreateTCPConnection::test_timeout_arg_eventlet":
        "the eventlet handler: the suite runs the threading handler only",
}


@dataclass
class Result:
    nodeid: str
    outcome: str            # passed, failed, error, skipped
    reason: str = ""
    seconds: float = 0.0
    out_of_scope: str = ""  # why, when the test is out of scope

    @property
    def status(self) -> str:
        """What the summary counts it as."""
        if self.out_of_scope:
            return "out of scope"
        return "failed" if self.outcome in ("failed", "error") else self.outcome


def _nodeid(case: ET.Element) -> str:
    parts = case.get("classname", "").split(".")
    # kazoo.tests.test_client.TestClient -> kazoo/tests/test_client.py::TestClient
    for i in range(len(parts), 0, -1):
        if parts[i - 1].startswith("test_"):
            path = "/".join(parts[:i]) + ".py"
            return "::".join([path, *parts[i:], case.get("name", "")])
    return "::".join([*parts, case.get("name", "")])


def first_line(text: str | None, limit: int = 200) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[:limit - 3] + "..."
    return ""


def _reason(el: ET.Element) -> str:
    message = first_line(el.get("message"))
    if el.tag == "skipped":
        return message.removeprefix("[") if message else "skipped"
    body = el.text or ""
    # the exception line of the traceback (pytest's "E   " lines) says more than the message
    # when the message is only the exception's repr
    e_lines = [ln[1:].strip() for ln in body.splitlines() if ln.startswith("E ")]
    if e_lines and (not message or len(message) < 12):
        message = first_line(e_lines[0])
    return message or first_line(body) or el.tag


def out_of_scope(nodeid: str) -> str:
    for prefix, why in OUT_OF_SCOPE.items():
        if nodeid.startswith(prefix):
            return why
    return ""


def read_junit(path: str) -> list[Result]:
    results: dict[str, Result] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = _nodeid(case)
        r = results.get(nodeid) or Result(nodeid, "passed", seconds=float(case.get("time") or 0))
        for el in case:
            if el.tag in ("failure", "error") and r.outcome not in ("failed", "error"):
                r.outcome, r.reason = ("failed" if el.tag == "failure" else "error"), _reason(el)
                if el.tag == "error" and "teardown" in (el.get("message") or ""):
                    r.reason = "in teardown: " + r.reason
            elif el.tag == "skipped" and r.outcome == "passed":
                r.outcome, r.reason = "skipped", _reason(el)
        r.out_of_scope = out_of_scope(nodeid)
        results[nodeid] = r
    return list(results.values())


def counts(results: list[Result]) -> dict[str, int]:
    c = {"passed": 0, "failed": 0, "skipped": 0, "out of scope": 0}
    for r in results:
        c[r.status] += 1
    return c


def closing_line(results: list[Result]) -> str:
    c = counts(results)
    return (f"kazoo: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped, "
            f"{c['out of scope']} out of scope")


def text_report(results: list[Result]) -> str:
    """Every failure and skip with its reason, the out-of-scope tests by reason, then the counts."""
    lines = []
    failed = [r for r in results if r.status == "failed"]
    skipped = [r for r in results if r.status == "skipped"]
    if failed:
        lines.append(f"FAILED ({len(failed)}):")
        lines += [f"  {r.nodeid}\n      {r.outcome}: {r.reason}" for r in failed]
    if skipped:
        lines.append(f"SKIPPED ({len(skipped)}):")
        lines += [f"  {r.nodeid}: {r.reason}" for r in skipped]
    scope: dict[str, list[Result]] = {}
    for r in results:
        if r.out_of_scope:
            scope.setdefault(r.out_of_scope, []).append(r)
    if scope:
        lines.append(f"OUT OF SCOPE ({sum(len(v) for v in scope.values())}):")
        for why, rs in scope.items():
            outcomes = ", ".join(f"{n} {o}" for o, n in _tally(rs).items())
            lines.append(f"  {len(rs)} ({outcomes}): {why}")
            lines += [f"    {r.nodeid}\n        {r.outcome}: {r.reason}" for r in rs
                      if r.outcome in ("failed", "error")]
    lines.append(closing_line(results))
    return "\n".join(lines)


def _tally(rs: list[Result]) -> dict[str, int]:
    t: dict[str, int] = {}
    for r in rs:
        t[r.outcome] = t.get(r.outcome, 0) + 1
    return t


def markdown_table(results: list[Result]) -> str:
    """Every failed test, in scope or not, as a Markdown table (docs/conformance.md)."""
    rows = ["| test | outcome | counted as | first line of the failure |", "|---|---|---|---|"]
    for r in results:
        if r.outcome in ("failed", "error"):
            reason = r.reason.replace("|", "\\|")
            rows.append(f"| `{r.nodeid.removeprefix('kazoo/tests/')}` | {r.outcome} | {r.status} | {reason} |")
    return "\n".join(rows)
