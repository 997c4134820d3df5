"""Users, tokens and administrators against real node processes: auth off by default, `auth
enable` refused before root exists, calls without a token refused, wrong passwords (exit 6, one
line, rate limited), non-admins kept from administrative calls, tokens that expire and are
renewed by the clients, tokens accepted by every node of a cluster, credentials that survive a
SIGKILL and are nowhere on disk in clear."""
from __future__ import annotations

import grpc
import pytest

from dcli.client import Admin, CoordClient, KVClient, Producer
from dcli.client import auth as client_auth
from dcli.client.users import AuthClient
from dcli.v1 import kv_pb2 as kpb
from dcli.v1 import kv_pb2_grpc as kpb_grpc
from dcli.wire import errors
from tests.conftest import ServerProcess, run_cli
from tests.waiting import eventually

ROOT_PASSWORD = "r00t-Pa55word-7f3c"
FAST = ("--container-check-interval-ms", "200", "--group-initial-rebalance-delay-ms", "0")


@pytest.fixture(autouse=True)
def no_credentials():
    """Each test starts, and leaves this process, without credentials."""
    client_auth.configure(None, None)
    yield
    client_auth.configure(None, None)


def start(tmp_path, *extra: str) -> ServerProcess:
    return ServerProcess(tmp_path / "data", *FAST, *extra).start()


@pytest.fixture
def node(tmp_path):
    srv = start(tmp_path)
    yield srv
    srv.kill()


def dcli(srv: ServerProcess, *args: str, user: str | None = None):
    env = {"DCLI_USER": user or "", "DCLI_PASSWORD": ""}
    return run_cli(*args, server=srv, env=env)


def enable(address: str, *users: tuple[str, str, tuple]) -> None:
    """root, the users given, and auth on (as the CLI would, through AuthClient)."""
    with AuthClient(address) as a:
        a.user_add("root", ROOT_PASSWORD)
        for name, password, roles in users:
            a.user_add(name, password, roles=roles)
        a.enable()


def kv_get(address: str, token: str | None):
    """One raw KV Get, with the token as metadata (or none)."""
    with grpc.insecure_channel(address) as channel:
        metadata = (("token", token),) if token else ()
        return kpb_grpc.KVStub(channel).Get(kpb.GetRequest(key=b"k"), metadata=metadata, timeout=10)


def refusal(call) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def test_auth_is_off_by_default_and_enable_waits_for_root(node):
    out = dcli(node, "auth", "status")
    assert out.returncode == 0 and out.stdout.decode().startswith("Authentication Status: false")
    refused = dcli(node, "auth", "enable")
    assert refused.returncode == 4
    assert refused.stderr.decode().strip() == "root user does not exist: add it first (dcli user add root)"
    added = dcli(node, "user", "add", "root", "--new-user-password", ROOT_PASSWORD)
    assert (added.returncode, added.stdout.decode()) == (0, "User root created\n")
    on = dcli(node, "auth", "enable")
    assert (on.returncode, on.stdout.decode()) == (0, "Authentication Enabled\n")
    # now every call needs a token: the raw API and the CLI say so
    code, details = refusal(lambda: kv_get(node.address, None))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "authentication required" in details
    code, _ = refusal(lambda: kv_get(node.address, "v1.forged.token"))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    anonymous = dcli(node, "zk", "ls", "/")
    assert anonymous.returncode == 6
    assert anonymous.stderr.decode().strip() == "authentication required: give --user NAME (DCLI_USER)"
    as_root = dcli(node, "user", "list", user=f"root:{ROOT_PASSWORD}")
    assert (as_root.returncode, as_root.stdout.decode()) == (0, "root\n")
    status = dcli(node, "auth", "status")        # open, as etcd's
    assert status.stdout.decode().startswith("Authentication Status: true")
    off = dcli(node, "--password", ROOT_PASSWORD, "auth", "disable", user="root")
    assert (off.returncode, off.stdout.decode()) == (0, "Authentication Disabled\n")
    assert dcli(node, "zk", "ls", "/").returncode == 0


def test_a_wrong_password_is_exit_6_with_one_line_and_guessing_is_slowed(node):
    enable(node.address)
    wrong = dcli(node, "kv", "get", "k", user="root:guess")
    assert wrong.returncode == 6
    assert wrong.stderr.decode() == "authentication failed, invalid user ID or password\n"
    client_auth.configure("root", "guess")
    for _ in range(4):      # five wrong in all from this address for root
        with pytest.raises(errors.AuthenticationFailedError):
            KVClient(node.address).get("k")
    client_auth.configure("root", ROOT_PASSWORD)
    with pytest.raises(errors.TooManyAuthFailuresError) as refused:
        KVClient(node.address).get("k")         # the right password waits its turn too
    assert refused.value.exit_code == 6 and "try again in" in str(refused.value)
    cli = dcli(node, "kv", "get", "k", user=f"root:{ROOT_PASSWORD}")
    assert cli.returncode == 6 and cli.stderr.decode().startswith("too many failed authentication attempts")
    # the refusal ends (1 s, doubling with each further failure): then the right password works
    eventually(lambda: dcli(node, "auth", "status", user=f"root:{ROOT_PASSWORD}").returncode == 0
               and KVClient(node.address).put("k", "v"), 60, "a login after the refusal")


def test_a_user_without_admin_reads_and_writes_but_administers_nothing(node):
    enable(node.address, ("alice", "alice-pw", ()), ("bob", "bob-pw", ("admin",)))
    alice = "alice:alice-pw"
    with Admin(node.address) as admin_as_nobody:
        with pytest.raises(errors.InvalidAuthTokenError):
            admin_as_nobody.list_topics()
    client_auth.configure("alice", "alice-pw")
    with Admin(node.address) as admin:
        admin.create_topic("orders", partitions=1)
        with pytest.raises(errors.PermissionDeniedError):
            admin.delete_topic("orders")
    with KVClient(node.address) as kv:
        kv.put("k", "v")
        assert kv.get("k").versions[0].value == b"v"
        with pytest.raises(errors.PermissionDeniedError):
            kv.create_keyspace("carts")
    with CoordClient(node.address) as zk:
        zk.create("/alice", b"1")
        assert zk.get("/alice")[0] == b"1"
    with CoordClient(node.address) as zk:
        with pytest.raises(errors.NoAuthError):
            zk.get("/dcli/auth/users/root")          # the identity store is not hers to read
        with pytest.raises(errors.NoAuthError):
            zk.set("/dcli/auth/enabled", b"0")
        # one refused request fails alone: the session and its stream go on
        assert zk.get("/alice")[0] == b"1"
        zk.set("/alice", b"2")
        assert zk.get("/alice")[0] == b"2"
    member = dcli(node, "cluster", "member", "add", "--server", node.address, "2", "127.0.0.1:1", user=alice)
    assert member.returncode == 6 and member.stderr.decode().startswith("permission denied: AddMember needs root")
    delete = dcli(node, "kafka", "topics", "--delete", "--topic", "orders", user=alice)
    assert delete.returncode == 6
    users = dcli(node, "user", "list", user=alice)
    assert users.returncode == 6
    own = dcli(node, "user", "passwd", "alice", "--new-user-password", "alice-pw2", user=alice)
    assert (own.returncode, own.stdout.decode()) == (0, "Password updated\n")
    other = dcli(node, "user", "passwd", "bob", "--new-user-password", "x", user="alice:alice-pw2")
    assert other.returncode == 6
    # an administrator may
    client_auth.configure("bob", "bob-pw")
    with Admin(node.address) as admin:
        admin.delete_topic("orders")
    with KVClient(node.address) as kv:
        kv.create_keyspace("carts")
    listed = dcli(node, "-w", "json", "user", "list", user="bob:bob-pw")
    assert listed.returncode == 0
    assert {'{"user": "bob", "roles": ["admin"]}', '{"user": "alice", "roles": []}'} <= \
        set(listed.stdout.decode().splitlines())


def test_an_expired_token_is_refused_and_the_clients_log_in_again(tmp_path):
    srv = start(tmp_path, "--auth-token-ttl", "2")
    try:
        enable(srv.address)
        client_auth.configure("root", ROOT_PASSWORD)
        with grpc.insecure_channel(srv.address) as channel:
            token, ttl = client_auth.login(channel, client_auth.credentials())
        assert ttl == 2 and kv_get(srv.address, token) is not None
        with KVClient(srv.address) as kv, CoordClient(srv.address) as zk:
            kv.put("k", "before")
            zk.create("/before", b"")
            code, details = eventually(lambda: (lambda r: r[0] != grpc.StatusCode.OK and r)(
                refusal(lambda: kv_get(srv.address, token))), 30, "the token to expire")
            assert code == grpc.StatusCode.UNAUTHENTICATED and details == "auth token expired"
            kv.put("k", "after")            # the client logged in again on its own
            assert kv.get("k").versions[0].value == b"after"
            zk.create("/after", b"")        # the session stream, opened with the old token, lives on
        with KVClient(srv.address) as kv:
            assert kv.get("k").versions[0].value == b"after"
    finally:
        srv.kill()


def test_a_token_refused_before_it_expires_is_renewed_once(node):
    enable(node.address)
    client_auth.configure("root", ROOT_PASSWORD)
    with KVClient(node.address) as kv:
        kv.put("k", "1")                    # logged in: the token is good for 5 minutes
        with AuthClient(node.address) as a:
            a.disable()
            a.enable()                      # a new signing key: every token issued before is void
        kv.put("k", "2")                    # refused once, logged in again, sent again
        assert kv.get("k").versions[0].value == b"2"


def test_credentials_survive_a_kill_and_no_password_is_on_disk(tmp_path):
    srv = start(tmp_path)
    try:
        enable(srv.address, ("alice", "alice-SeCrEt-91", ()))
        srv.kill()
        srv.start()
        assert dcli(srv, "auth", "status").stdout.decode().startswith("Authentication Status: true")
        ok = dcli(srv, "kv", "put", "k", "v", user="alice:alice-SeCrEt-91")
        assert ok.returncode == 0, ok.stderr
        assert dcli(srv, "kv", "get", "k", user="alice:wrong").returncode == 6
        # the node's broker registered itself again, auth on: it reaches its tree in process
        client_auth.configure("alice", "alice-SeCrEt-91")
        with Admin(srv.address) as admin:
            admin.create_topic("after-restart", partitions=1)
        producer = Producer(srv.address)
        try:
            assert producer.send("after-restart", b"x").result(timeout=60).offset == 0
        finally:
            producer.close()
        blobs = [p.read_bytes() for p in srv.data_dir.rglob("*") if p.is_file()]
        assert any(b"stored_key" in b for b in blobs)       # the credentials are on disk ...
        for secret in (ROOT_PASSWORD, "alice-SeCrEt-91"):   # ... and no password is
            assert not any(secret.encode() in b for b in blobs)
    finally:
        srv.kill()


def test_a_token_from_one_node_works_on_another(local_cluster):
    c = local_cluster(3)
    enable(c.address(1), ("alice", "alice-pw", ()))
    with grpc.insecure_channel(c.address(1)) as channel:
        token, _ = client_auth.login(channel, client_auth.Credentials("alice", "alice-pw"))
    for n in (2, 3):
        eventually(lambda n=n: kv_get(c.address(n), token), 30, f"node {n} to accept node 1's token",
                   errors=(grpc.RpcError,))
        code, _ = refusal(lambda n=n: kv_get(c.address(n), None))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    client_auth.configure("alice", "alice-pw")
    with KVClient(c.servers) as kv:
        kv.put("k", "v", w=2)
    with CoordClient(c.address(3)) as zk:
        zk.create("/from-3", b"")
    client_auth.configure(None, None)
    assert all(s.up for s in c.status_all(timeout=5.0))     # a node's status needs no token (etcd's)


def test_with_auth_on_a_zookeeper_client_must_addauth_as_a_dcli_user(node):
    """ZooKeeper's port is no way around auth: a connection that has not proved it is one of
    dcli's users (`addauth digest user:password`) gets NoAuth; a wrong password is AUTHFAILED
    and closes the connection, as ZooKeeper does; the user store is for administrators."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import AuthFailedError, NoAuthError

    enable(node.address, ("alice", "alice-pw", ()))
    anonymous = KazooClient(hosts=node.zk_address, timeout=15)
    anonymous.start(timeout=15)
    try:
        with pytest.raises(NoAuthError):
            anonymous.get("/")
        with pytest.raises(NoAuthError):
            anonymous.create("/from-nobody", b"")
        with pytest.raises(AuthFailedError):
            anonymous.add_auth("digest", "alice:wrong")
    finally:
        anonymous.stop()
        anonymous.close()
    alice = KazooClient(hosts=node.zk_address, timeout=15, auth_data=[("digest", "alice:alice-pw")])
    alice.start(timeout=15)
    try:
        alice.create("/from-alice", b"hers")
        assert alice.get("/from-alice")[0] == b"hers"
        with pytest.raises(NoAuthError):
            alice.get("/dcli/auth/users/root")
        assert alice.exists("/from-alice") is not None      # the connection goes on
    finally:
        alice.stop()
        alice.close()
    root = KazooClient(hosts=node.zk_address, timeout=15, auth_data=[("digest", f"root:{ROOT_PASSWORD}")])
    root.start(timeout=15)
    try:
        assert root.exists("/dcli/auth/users/alice") is not None
        assert root.exists("/from-nobody") is None          # refused before anything was written
    finally:
        root.stop()
        root.close()
