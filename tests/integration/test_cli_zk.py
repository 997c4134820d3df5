"""Every zk command through the real CLI in a subprocess, against a real server:
zkCli's output to the character (reference §4), our deliberate differences, errors and exit codes."""
from __future__ import annotations

import json
import re

from tests.conftest import run_cli

STAT_RE = re.compile(
    r"cZxid = 0x[0-9a-f]+\n"
    r"ctime = \w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}\n"
    r"mZxid = 0x[0-9a-f]+\n"
    r"mtime = \w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}\n"
    r"pZxid = 0x[0-9a-f]+\n"
    r"cversion = (?P<cversion>\d+)\n"
    r"dataVersion = (?P<version>\d+)\n"
    r"aclVersion = 0\n"
    r"ephemeralOwner = (?P<owner>0x[0-9a-f]+)\n"
    r"dataLength = (?P<length>\d+)\n"
    r"numChildren = (?P<children>\d+)\n$")


def zk(server, *args, **kw):
    return run_cli("zk", *args, server=server, **kw)


def ok(result) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout.decode()


def err(result, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert b"Traceback" not in result.stderr
    return result.stderr.decode()


def test_seed_walkthrough(server, root_path):
    p = root_path
    assert ok(zk(server, "create", p, "parent znode")) == f"Created {p}\n"
    assert ok(zk(server, "create", f"{p}/child", "child znode")) == f"Created {p}/child\n"
    assert ok(zk(server, "get", p)) == "parent znode\n"
    out = ok(zk(server, "get", "-s", p))
    assert out.startswith("parent znode\n")
    m = STAT_RE.match(out[len("parent znode\n"):])
    assert m and m["cversion"] == "1" and m["version"] == "0" and m["length"] == "12" and m["children"] == "1"
    assert m["owner"] == "0x0"
    assert ok(zk(server, "ls", p)) == "[child]\n"
    assert ok(zk(server, "set", p, "some data")) == ""
    m = STAT_RE.match(ok(zk(server, "set", "-s", p, "more data")))
    assert m and m["version"] == "2" and m["length"] == "9"
    assert err(zk(server, "set", "-v", "99", p, "x"), 4) == f"version No is not valid : {p}\n"
    assert ok(zk(server, "set", "-v", "2", p, "versioned")) == ""
    assert err(zk(server, "delete", p), 4) == f"Node not empty: {p}\n"
    assert err(zk(server, "create", p, "again"), 4) == f"Node already exists: {p}\n"
    assert ok(zk(server, "delete", f"{p}/child")) == ""
    assert ok(zk(server, "delete", p)) == ""
    assert err(zk(server, "get", p), 3) == f"Node does not exist: {p}\n"


def test_ls_forms(server, root_path):
    p = root_path
    for path in (p, f"{p}/b", f"{p}/a", f"{p}/a/x"):
        ok(zk(server, "create", path, "v"))
    assert ok(zk(server, "ls", p)) == "[a, b]\n"
    assert ok(zk(server, "ls", "-R", p)) == f"{p}\n{p}/a\n{p}/b\n{p}/a/x\n"
    out = ok(zk(server, "ls", "-s", p))
    assert out.startswith("[a, b]\n") and STAT_RE.match(out[len("[a, b]\n"):])
    assert ok(zk(server, "getAllChildrenNumber", p)) == "3\n"
    assert "zookeeper" in ok(zk(server, "ls", "/"))
    ok(zk(server, "deleteall", p))
    assert err(zk(server, "ls", p), 3) == f"Node does not exist: {p}\n"
    assert err(zk(server, "deleteall", p), 3) == f"Node does not exist: {p}\n"


def test_sequential_and_ephemeral(server, root_path):
    p = root_path
    ok(zk(server, "create", p, ""))
    assert ok(zk(server, "create", "-s", f"{p}/job-", "a")) == f"Created {p}/job-0000000000\n"
    assert ok(zk(server, "create", "-s", f"{p}/job-", "b")) == f"Created {p}/job-0000000001\n"
    assert ok(zk(server, "create", "-s", f"{p}/", "x")) == f"Created {p}/0000000002\n"
    # a one-shot command closes its session: its ephemeral is gone when it exits
    assert ok(zk(server, "create", "-e", f"{p}/eph", "e")) == f"Created {p}/eph\n"
    assert err(zk(server, "stat", f"{p}/eph"), 3) == f"Node does not exist: {p}/eph\n"
    assert ok(zk(server, "create", "-e", "-s", f"{p}/lock-", "c")) == f"Created {p}/lock-0000000004\n"
    # the result is on stdout, so scripts can capture the name
    made = ok(zk(server, "create", "-s", f"{p}/q-", "x")).split()[1]
    assert made == f"{p}/q-0000000005"
    assert ok(zk(server, "getEphemerals", p)) == "[]\n"


def test_null_and_empty_and_binary_data(server, root_path, tmp_path):
    p = root_path
    ok(zk(server, "create", p))
    assert ok(zk(server, "get", p)) == "null\n"
    m = STAT_RE.match(ok(zk(server, "stat", p)))
    assert m and m["length"] == "0"
    ok(zk(server, "create", f"{p}/empty", ""))
    assert ok(zk(server, "get", f"{p}/empty")) == "\n"
    ok(zk(server, "create", f"{p}/u", "héllo wörld"))
    out = ok(zk(server, "get", "-s", f"{p}/u"))
    assert out.startswith("héllo wörld\n") and STAT_RE.match(out.split("\n", 1)[1])["length"] == "13"
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\x00ab")
    ok(zk(server, "create", f"{p}/bin", "--data-file", str(blob)))
    assert ok(zk(server, "get", f"{p}/bin")) == "\\xff\x00ab\n"
    got = json.loads(ok(zk(server, "-w", "json", "get", f"{p}/bin")))
    assert got["encoding"] == "base64" and got["data"] == "/wBhYg=="
    ok(zk(server, "set", f"{p}/empty", "--data-file", "-", input=b"from stdin"))
    assert ok(zk(server, "get", f"{p}/empty")) == "from stdin\n"


def test_json_output(server, root_path):
    p = root_path
    got = json.loads(ok(zk(server, "-w", "json", "create", p, "v")))
    assert got["path"] == p and got["stat"]["dataLength"] == 1
    got = json.loads(ok(zk(server, "-w", "json", "get", "-s", p)))
    assert got == {"path": p, "data": "v", "encoding": "utf-8", "stat": got["stat"]}
    got = json.loads(ok(run_cli("-w", "json", "zk", "ls", p, server=server)))
    assert got == {"path": p, "children": []}
    got = json.loads(ok(zk(server, "-w", "json", "stat", p)))
    assert got["stat"]["numChildren"] == 0
    assert err(zk(server, "-w", "yaml", "get", p), 2).startswith("invalid output format")


def test_invalid_paths(server):
    cases = {
        "noslash": "Path must start with / character",
        "/trailing/": "Path must not end with / character",
        "//double": 'Invalid path string "//double" caused by empty node name specified @1',
        "/parent/../x": 'Invalid path string "/parent/../x" caused by relative paths not allowed @9',
    }
    for path, message in cases.items():
        assert err(zk(server, "create", path, "x"), 2) == message + "\n"
        assert err(zk(server, "get", path), 2) == message + "\n"
    assert err(zk(server, "delete", "/"), 2) == "Arguments are not valid : /\n"
    assert err(zk(server, "create", "/", "x"), 4) == "Node already exists: /\n"
    assert err(zk(server, "create", "/nope/child", "x"), 3) == "Node does not exist: /nope/child\n"


def test_usage_errors(server):
    assert err(zk(server, "get"), 2) == "get [-s] [-w] path\n"
    assert err(zk(server, "create"), 2) == "create [-s] [-e] [-c] [-t ttl] path [data] [acl]\n"
    assert err(zk(server, "get", "-x", "/p"), 2) == "Unrecognized option: -x\n"
    assert err(zk(server, "foo"), 2) == "Command not found: foo\n"
    assert err(zk(server, "create", "-t", "abc", "/x"), 2) == "-t argument must be a long value\n"
    assert err(zk(server, "create", "-t", "0", "/x"), 2) == \
        "ttl must be positive and cannot be larger than: 1099511627775\n"
    assert err(zk(server, "create", "-t", "10", "-e", "/x"), 2) == "TTLs cannot be used with Ephemeral znodes\n"
    assert err(zk(server, "create", "-t", "10", "-c", "/x"), 2) == "TTLs cannot be used with Container znodes\n"
    assert err(zk(server, "set", "-v", "abc", "/x", "y"), 2) == "version must be an integer: abc\n"
    assert err(zk(server, "create", "/x", "--data-file", "/no/such/file"), 2).startswith("cannot read /no/such/file")
    help_text = ok(zk(server, "help"))
    assert "\tget [-s] [-w] path\n" in help_text


def test_ttl_and_container(server, root_path):
    p = root_path
    ok(zk(server, "create", p, ""))
    assert ok(zk(server, "create", "-t", "3000", f"{p}/ttl", "x")) == f"Created {p}/ttl\n"
    m = STAT_RE.match(ok(zk(server, "stat", f"{p}/ttl")))
    assert m and m["owner"] == "0x0"
    assert ok(zk(server, "create", "-c", f"{p}/cont", "x")) == f"Created {p}/cont\n"
    assert ok(zk(server, "sync", p)) == "Sync is OK\n"


def test_unreachable_server_fails_fast_with_exit_5():
    result = run_cli("zk", "--server", "127.0.0.1:1", "--dial-timeout", "1", "get", "/x")
    assert result.returncode == 5, result
    assert result.stderr.decode().startswith("Cannot connect to 127.0.0.1:1")
    assert b"Traceback" not in result.stderr


def test_zkcli_entry_point_takes_pasted_command_lines(server, root_path):
    result = run_cli("-server", server.address, "create", root_path, "parent znode", entry="zkCli")
    assert ok(result) == f"Created {root_path}\n"
    assert ok(run_cli("-server", server.address, "get", root_path, entry="zkCli")) == "parent znode\n"


def test_limits_from_the_cli(server, root_path, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    message = err(zk(server, "create", root_path, "--data-file", str(big)), 2)
    assert message.startswith(f"Data too large for {root_path}: 1048577 bytes")
    assert err(zk(server, "deleteall", "/"), 2) == "Arguments are not valid : /\n"
    assert err(zk(server, "create", root_path, "x", "--data-file", str(big)), 2).startswith(
        "give the data as an argument or with --data-file")
    assert ok(zk(server, "stat", "/")).startswith("cZxid = 0x0")     # still serving
