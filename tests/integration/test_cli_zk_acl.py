"""zkCli's ACL commands through `dcli zk` and the Python client on a real node: create with an
ACL, getAcl in zkCli's format, setAcl with its version and -R, addauth kept across a reconnect,
whoami, and zkCli's errors for malformed lists."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest

from dcli.client import ACL, CoordClient
from dcli.wire import errors
from tests.conftest import run_cli
from tests.waiting import eventually


def digest(user: str, password: str) -> str:
    return f"{user}:{base64.b64encode(hashlib.sha1(f'{user}:{password}'.encode()).digest()).decode()}"


def zk(server, *args: str):
    return run_cli("zk", *args, server=server)


def test_create_with_an_acl_then_get_acl_and_set_refused_as_zkcli_prints_them(server, root_path):
    made = zk(server, "create", root_path, "x y", "world:anyone:r")
    assert (made.returncode, made.stdout) == (0, f"Created {root_path}\n".encode())
    refused = zk(server, "set", root_path, "no")
    assert (refused.returncode, refused.stderr) == (6, f"Insufficient permission : {root_path}\n".encode())
    shown = zk(server, "getAcl", root_path)
    assert (shown.returncode, shown.stdout) == (0, b"'world,'anyone\n: r\n")
    with_stat = zk(server, "getAcl", "-s", root_path).stdout.decode().splitlines()
    assert with_stat[:2] == ["'world,'anyone", ": r"] and "aclVersion = 0" in with_stat
    as_json = json.loads(zk(server, "-w", "json", "getAcl", root_path).stdout)
    assert as_json == {"path": root_path, "acl": [{"scheme": "world", "id": "anyone", "perms": "r"}]}


def test_set_acl_with_its_version_and_below(server, root_path):
    assert zk(server, "create", root_path, "").returncode == 0
    assert zk(server, "create", f"{root_path}/kid", "").returncode == 0
    wrong = zk(server, "setAcl", "-v", "3", root_path, "world:anyone:cdrwa")
    assert (wrong.returncode, wrong.stderr) == (4, f"version No is not valid : {root_path}\n".encode())
    done = zk(server, "setAcl", "-s", "-v", "0", "-R", root_path, "world:anyone:cdra")
    assert done.returncode == 0 and "aclVersion = 1" in done.stdout.decode()
    assert zk(server, "getAcl", f"{root_path}/kid").stdout == b"'world,'anyone\n: cdra\n"
    assert zk(server, "set", f"{root_path}/kid", "x").returncode == 6          # no w any more


@pytest.mark.parametrize("acl, message", [
    ("bad", "bad does not have the form scheme:id:perm"),
    ("world:anyone:z", "Unknown perm type: z"),
    ("digest:bob", "digest:bob does not have the form scheme:id:perm"),
])
def test_a_malformed_acl_is_refused_before_anything_is_sent(server, root_path, acl, message):
    refused = zk(server, "create", root_path, "x", acl)
    assert (refused.returncode, refused.stderr.decode()) == (2, message + "\n")
    assert zk(server, "stat", root_path).returncode == 3


def test_a_digest_the_server_refuses_and_whoami(server, root_path):
    refused = zk(server, "create", root_path, "x", "digest:nohash:cdrwa")
    assert refused.returncode == 2 and refused.stderr == f"KeeperErrorCode = InvalidACL for {root_path}\n".encode()
    me = zk(server, "whoami")
    assert (me.returncode, me.stdout) == (0, b"Auth scheme: User\nip: 127.0.0.1\n")


def test_addauth_holds_for_the_session_and_comes_back_after_a_reconnect(fresh_server):
    with CoordClient(fresh_server.address) as bob:
        bob.add_auth("digest", "bob:pw")
        assert bob.whoami() == [("ip", "127.0.0.1"), ("digest", "bob")]
        bob.create("/bobs", b"mine", acl=[ACL(31, "digest", digest("bob", "pw"))])
        with CoordClient(fresh_server.address) as other:
            with pytest.raises(errors.NoAuthError):
                other.get("/bobs")
        fresh_server.restart()          # the stream breaks; the session resumes on the same node
        eventually(lambda: bob.get("/bobs")[0] == b"mine", 60, "bob reading his node after the restart",
                   errors=(errors.DcliError,))
        assert ("digest", "bob") in bob.whoami()
