"""The key-value store on one real server (N=1): client, CLI, errors, durability."""
from __future__ import annotations

import json
import uuid

import grpc
import pytest

from dcli.client.kv import KVClient
from dcli.v1 import kv_pb2 as pb
from dcli.v1 import kv_pb2_grpc as pb_grpc
from dcli.wire import errors
from dcli.wire.kv_keys import MAX_VALUE_BYTES
from tests.conftest import run_cli as _run_cli


def run_cli(*args, **kw):
    result = _run_cli(*args, **kw)
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


@pytest.fixture
def prefix():
    return f"t{uuid.uuid4().hex[:8]}/"


def test_put_get_delete_report_the_quorum_of_one_node(server, prefix):
    with KVClient(server.address) as kv:
        written = kv.put(prefix + "a", "alpha")
        assert (written.quorum.n, written.quorum.w, written.quorum.acks) == (1, 1, 1)
        assert [(o.node, o.outcome) for o in written.quorum.replicas] == [("1", "stored")]
        got = kv.get(prefix + "a")
        assert got.found and got.value == b"alpha" and got.versions[0].dot == written.version.dot
        assert (got.quorum.r, got.quorum.n) == (1, 1)
        kv.put(prefix + "a", "beta")
        assert kv.get(prefix + "a").values == [b"beta"]        # no context: supersedes what it holds
        kv.delete(prefix + "a")
        gone = kv.get(prefix + "a")
        assert not gone.found and gone.versions and gone.versions[0].tombstone


def test_concurrent_writes_become_siblings_until_a_write_with_their_context(server, prefix):
    key = prefix + "cart"
    with KVClient(server.address) as kv:
        kv.put(key, "apples")
        kv.put(key, "pears", context=b"")        # saw nothing: concurrent with the first
        both = kv.get(key)
        assert both.conflict and sorted(both.values) == [b"apples", b"pears"]
        kv.put(key, "apples+pears", context=both.context)
        assert kv.get(key).values == [b"apples+pears"]


def test_scan_by_prefix_and_range_in_byte_order_with_a_limit(server, prefix):
    with KVClient(server.address) as kv:
        for name in ("c", "a", "b", "d"):
            kv.put(prefix + name, name.upper())
        kv.delete(prefix + "d")
        listed = kv.scan(prefix)
        assert [k for k, _ in listed.entries] == [(prefix + x).encode() for x in "abc"]
        ranged = kv.scan(start=prefix + "b", end=prefix + "d")
        assert [v[0].value for _, v in ranged.entries] == [b"B", b"C"]
        first = kv.scan(prefix, limit=2)
        assert len(first.entries) == 2 and first.truncated


def test_bad_input_gets_one_line_errors_and_the_server_stays_up(server, prefix):
    with KVClient(server.address) as kv:
        with pytest.raises(errors.BadArgumentsError, match="key must not be empty"):
            kv.put(b"", "x")
        with pytest.raises(errors.DataTooLargeError):
            kv.put(prefix + "big", b"x" * (MAX_VALUE_BYTES + 1))
        with pytest.raises(errors.InvalidQuorumError, match="R=2 is impossible with N=1"):
            kv.get(prefix + "a", r=2)
        with pytest.raises(errors.KeyspaceNotFoundError):
            kv.get(prefix + "a", keyspace="missing")
    # the server enforces the limits itself: a raw request that skips the client's checks
    with grpc.insecure_channel(server.address) as ch:
        stub = pb_grpc.KVStub(ch)
        for request, status in ((pb.PutRequest(keyspace="default", key=b"k", value=b"x" * (MAX_VALUE_BYTES + 1)),
                                 grpc.StatusCode.INVALID_ARGUMENT),
                                (pb.PutRequest(keyspace="default", key=b"k" * 2000, value=b"x"),
                                 grpc.StatusCode.INVALID_ARGUMENT),
                                (pb.PutRequest(keyspace="a/b", key=b"k", value=b"x"), grpc.StatusCode.INVALID_ARGUMENT),
                                (pb.PutRequest(keyspace="default", key=b"k", value=b"x", w=5),
                                 grpc.StatusCode.INVALID_ARGUMENT),
                                (pb.PutRequest(keyspace="default", key=b"k", value=b"x", context=b"\xff"),
                                 grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Put(request, timeout=10)
            assert caught.value.code() == status
    with KVClient(server.address) as kv:
        assert kv.put(prefix + "after", "fine").quorum.acks == 1


def test_cli_prints_the_quorum_and_exits_with_design_codes(server, prefix, tmp_path):
    put = run_cli("kv", "put", prefix + "k", "hello", server=server)
    assert put.returncode == 0, put.stderr
    assert "R=1 W=1 N=1" in put.stdout and "R + W = 2 > N = 1" in put.stdout and "1 stored" in put.stdout
    got = run_cli("kv", "get", prefix + "k", server=server)
    assert got.returncode == 0 and got.stdout == "hello\n" and "R met: 1 of 1" in got.stderr
    detail = run_cli("kv", "get", prefix + "k", "-s", server=server)
    assert "versions = 1:" in detail.stdout and "replicas = 1 current" in detail.stdout
    as_json = json.loads(run_cli("-w", "json", "kv", "get", prefix + "k", server=server).stdout)
    assert as_json["value"] == "hello" and as_json["quorum"]["n"] == 1 and as_json["quorum"]["r_plus_w_gt_n"]
    missing = run_cli("kv", "get", prefix + "nope", server=server)
    assert missing.returncode == 3 and missing.stderr.startswith("Key not found")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_VALUE_BYTES + 1))
    cases = [(("kv", "put", "", "x"), 2, "Invalid key"),
             (("kv", "put", prefix + "big", "--file", str(big)), 2, "Value too large"),
             (("kv", "get", prefix + "k", "-r", "2"), 2, "Invalid quorum"),
             (("kv", "put", prefix + "k", "v", "-w", "0"), 2, "Invalid quorum"),
             (("kv", "get", prefix + "k", "-k", "no-such"), 3, "Keyspace does not exist"),
             (("kv", "rebalance", "--add", "4=127.0.0.1:7184/notaport"), 2, "invalid peer address in --add"),
             (("kv", "rebalance", "--add", "4=127.0.0.1:7184/7184"), 2, "invalid --add address"),
             (("kv", "rebalance", "--add", "4"), 2, "invalid --add '4': expected ID=HOST:PORT[/PEER]")]
    for args, code, words in cases:
        result = run_cli(*args, server=server)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith(words) and result.stderr.count("\n") == 1, result.stderr
    scan = run_cli("kv", "scan", "--prefix", prefix, server=server)
    assert scan.returncode == 0 and scan.stdout.startswith(f"{prefix}k\thello")
    plan = run_cli("kv", "rebalance", "--add", "4=127.0.0.1:7184/8999", "--dry-run", server=server)
    assert plan.returncode == 0 and "to node 4" in plan.stdout, plan.stderr
    joined = run_cli("kv", "rebalance", "--add", "4=127.0.0.1:7184/8999", server=server)
    assert joined.returncode == 4 and joined.stderr == (
        "Membership change refused: node 4 is not a member of the coordination cluster; "
        "add it first (`dcli cluster member add`)\n"), joined.stderr
    for command in ("ring", "status"):
        shown = run_cli("kv", command, server=server)
        assert shown.returncode == 0 and server.address in shown.stdout


def test_acknowledged_writes_survive_sigkill(fresh_server):
    with KVClient(fresh_server.address) as kv:
        acked = {f"d/{i}": kv.put(f"d/{i}", f"v{i}").version.dot for i in range(100)}
    fresh_server.restart()          # SIGKILL, then start on the same data dir and port
    with KVClient(fresh_server.address) as kv:
        for key, dot in acked.items():
            got = kv.get(key)
            assert got.found and got.versions[0].dot == dot
        assert kv.put("d/after", "x").version.counter > max(int(d.split(":")[1]) for d in acked.values())
