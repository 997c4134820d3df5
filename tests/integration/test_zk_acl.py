"""Znode ACLs, as ZooKeeper 3.8 checks them, through kazoo on a real node: digest, ip, world,
auth and super ids; READ, WRITE, CREATE, DELETE, ADMIN where ZooKeeper asks for them; the
ACL's version; a digest hidden from those without ADMIN; and the ACLs after a SIGKILL."""
from __future__ import annotations

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, make_acl, make_digest_acl, make_digest_acl_credential

from dcli.client import CoordClient
from dcli.wire import errors
from tests.conftest import ServerProcess

SUPER_PASSWORD = "super-secret"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    digest = make_digest_acl_credential("super", SUPER_PASSWORD)
    srv = ServerProcess(tmp_path_factory.mktemp("acl") / "data", "--zk-super-digest", digest).start()
    yield srv
    srv.kill()


def _client(srv, *auth: tuple[str, str]) -> KazooClient:
    client = KazooClient(hosts=srv.zk_address, timeout=15, auth_data=list(auth))
    client.start(timeout=15)
    return client


@pytest.fixture
def clients(node):
    made = []

    def make(*auth):
        made.append(_client(node, *auth))
        return made[-1]
    yield make
    for client in made:
        client.stop()
        client.close()


def test_a_digest_acl_lets_its_owner_in_and_keeps_others_out(clients):
    bob = clients(("digest", "bob:pw"))
    nobody = clients()
    bob.create("/acl-bob", b"bob's", acl=[make_digest_acl("bob", "pw", all=True)])
    assert bob.get("/acl-bob")[0] == b"bob's"
    with pytest.raises(NoAuthError):
        nobody.get("/acl-bob")
    with pytest.raises(NoAuthError):
        nobody.set("/acl-bob", b"mine now")
    with pytest.raises(NoAuthError):
        nobody.get_children("/acl-bob")
    with pytest.raises(NoAuthError):
        nobody.create("/acl-bob/child")
    with pytest.raises(NoAuthError):
        nobody.get_acls("/acl-bob")                  # needs READ or ADMIN
    with pytest.raises(NoAuthError):
        nobody.set_acls("/acl-bob", [make_acl("world", "anyone", all=True)])
    acl, stat = bob.get_acls("/acl-bob")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [
        (31, "digest", make_digest_acl_credential("bob", "pw"))]
    assert stat.aversion == 0
    wrong = clients(("digest", "bob:wrong"))         # any digest is accepted; it just matches nothing
    with pytest.raises(NoAuthError):
        wrong.get("/acl-bob")
    bob.delete("/acl-bob")                          # DELETE is the parent's: / is open


def test_each_permission_is_asked_where_zookeeper_asks_it(clients):
    owner = clients(("digest", "owner:pw"))
    other = clients(("digest", "other:pw"))
    mine = make_digest_acl("owner", "pw", all=True)
    owner.create("/acl-perms", b"", acl=[mine, make_acl("world", "anyone", read=True)])
    assert other.get("/acl-perms")[0] == b""         # READ
    with pytest.raises(NoAuthError):
        other.set("/acl-perms", b"x")                # WRITE
    with pytest.raises(NoAuthError):
        other.create("/acl-perms/kid")               # the parent's CREATE
    owner.create("/acl-perms/kid", b"", acl=[make_acl("world", "anyone", all=True)])
    with pytest.raises(NoAuthError):
        other.delete("/acl-perms/kid")               # the parent's DELETE, though the kid is open
    other.set("/acl-perms/kid", b"open")             # the kid's own WRITE
    # READ without ADMIN reads the list with the digest's hash hidden (ZooKeeper 3.8)
    acl, _ = other.get_acls("/acl-perms")
    assert sorted((a.perms, a.id.scheme, a.id.id) for a in acl) == [(1, "world", "anyone"), (31, "digest", "owner:x")]
    t = other.transaction()
    t.check("/acl-perms", 0)
    assert t.commit() == [True]                       # check needs READ
    owner.delete("/acl-perms", recursive=True)


def test_set_acl_needs_admin_and_the_acl_version(clients):
    owner = clients(("digest", "owner:pw"))
    owner.create("/acl-version", b"", acl=[make_digest_acl("owner", "pw", all=True)])
    with pytest.raises(BadVersionError):
        owner.set_acls("/acl-version", [make_acl("world", "anyone", all=True)], version=3)
    stat = owner.set_acls("/acl-version", [make_acl("world", "anyone", read=True, admin=True)], version=0)
    assert (stat.aversion, stat.version) == (1, 0)
    nobody = clients()
    assert nobody.get("/acl-version")[0] == b""
    nobody.set_acls("/acl-version", [make_acl("world", "anyone", all=True)])     # ADMIN
    nobody.delete("/acl-version")


def test_auth_ip_and_malformed_acls(clients):
    bob = clients(("digest", "bob:pw"))
    nobody = clients()
    bob.create("/acl-auth", b"", acl=[make_acl("auth", "", all=True)])
    acl, _ = bob.get_acls("/acl-auth")
    assert [(a.id.scheme, a.id.id) for a in acl] == [("digest", make_digest_acl_credential("bob", "pw"))]
    with pytest.raises(InvalidACLError):
        nobody.create("/acl-auth-none", b"", acl=[make_acl("auth", "", all=True)])   # no digest to expand
    nobody.create("/acl-ip", b"", acl=[make_acl("ip", "127.0.0.1", all=True)])
    assert nobody.get("/acl-ip")[0] == b""
    nobody.create("/acl-ip-far", b"", acl=[make_acl("ip", "10.0.0.0/8", all=True)])
    with pytest.raises(NoAuthError):
        nobody.get("/acl-ip-far")
    for bad in (ACL(31, Id("digest", "no-colon")), ACL(31, Id("nosuch", "x")), ACL(31, Id("ip", "300.1.1.1")),
                ACL(31, Id("world", "someone"))):
        with pytest.raises(InvalidACLError):
            nobody.create("/acl-bad", b"", acl=[bad])
    assert nobody.exists("/acl-bad") is None
    bob.delete("/acl-auth")
    nobody.delete("/acl-ip")
    nobody.delete("/acl-ip-far")                      # the parent's DELETE: / is open


def test_the_super_digest_passes_every_acl_and_grpc_clients_see_the_same_checks(node, clients):
    bob = clients(("digest", "bob:pw"))
    bob.create("/acl-super", b"locked", acl=[make_digest_acl("bob", "pw", read=True)])
    root = clients(("digest", f"super:{SUPER_PASSWORD}"))
    assert root.get("/acl-super")[0] == b"locked"
    root.set("/acl-super", b"super wrote")
    with CoordClient(node.address) as grpc_client:   # no digest: only its address
        with pytest.raises(errors.NoAuthError):
            grpc_client.get("/acl-super")
        with pytest.raises(errors.NoAuthError):
            grpc_client.set("/acl-super", b"x")
    root.delete("/acl-super")


def test_acls_survive_a_sigkill(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    try:
        bob = _client(srv, ("digest", "bob:pw"))
        try:
            bob.create("/kept", b"", acl=[make_digest_acl("bob", "pw", all=True)])
            bob.set_acls("/kept", [make_digest_acl("bob", "pw", read=True, write=True, admin=True)])
        finally:
            bob.stop()
            bob.close()
        srv.kill()
        srv.start()
        nobody = _client(srv)
        bob = _client(srv, ("digest", "bob:pw"))
        try:
            with pytest.raises(NoAuthError):
                nobody.get("/kept")
            acl, stat = bob.get_acls("/kept")
            assert [a.perms for a in acl] == [1 | 2 | 16] and stat.aversion == 1
        finally:
            for client in (nobody, bob):
                client.stop()
                client.close()
    finally:
        srv.kill()


def test_a_client_certificate_is_an_x509_id_on_both_protocols(tmp_path):
    """On the TLS ports a client certificate the CA signed is ZooKeeper's x509 id (its subject,
    most specific first): an ACL naming it lets that client in, on the ZooKeeper port and
    over gRPC alike, and keeps a client without it out."""
    import socket

    from dcli.client import ACL, CoordClient
    from dcli.client.tls import TlsFiles, use_for
    from dcli.cluster.certs import LocalCA

    ca = LocalCA.create(tmp_path / "ca")
    node_cert = ca.issue("node", server=True, client=True)
    client_cert = ca.issue("client", client=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = ServerProcess(tmp_path / "data", "--cert-file", str(node_cert.cert), "--key-file", str(node_cert.key),
                        "--trusted-ca-file", str(ca.cert_path), "--zk-secure-listen", f"127.0.0.1:{port}").start()
    made = []

    def tls_client(with_cert: bool) -> KazooClient:
        kw = dict(certfile=str(client_cert.cert), keyfile=str(client_cert.key)) if with_cert else {}
        client = KazooClient(hosts=f"127.0.0.1:{port}", timeout=15, use_ssl=True, ca=str(ca.cert_path),
                             verify_certs=True, **kw)
        client.start(timeout=15)
        made.append(client)
        return client
    try:
        holder = tls_client(True)
        stranger = tls_client(False)
        from cryptography import x509
        subject = x509.load_pem_x509_certificate(client_cert.cert.read_bytes()).subject.rfc4514_string()
        assert subject == "CN=client,O=dcli local CA"
        holder.create("/by-cert", b"mine", acl=[make_acl("x509", subject, all=True)])
        assert holder.get("/by-cert")[0] == b"mine"
        with pytest.raises(NoAuthError):
            stranger.get("/by-cert")
        # gRPC: a node that asks its clients for certificates (--client-cert-auth) on the same data
        srv.kill()
        srv = ServerProcess(tmp_path / "data", "--cert-file", str(node_cert.cert), "--key-file", str(node_cert.key),
                            "--trusted-ca-file", str(ca.cert_path), "--client-cert-auth", port=srv.port).start()
        use_for([srv.address], TlsFiles(cacert=str(ca.cert_path), cert=str(client_cert.cert),
                                        key=str(client_cert.key)))
        with CoordClient(srv.address) as over_grpc:
            assert ("x509", subject) in over_grpc.whoami()
            assert over_grpc.get("/by-cert")[0] == b"mine"
    finally:
        for client in made:
            client.stop()
            client.close()
        srv.kill()
