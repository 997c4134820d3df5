"""TLS on the client port, end to end with real processes and certificates from the local CA:
the right CA connects (every client: coordination, broker, key-value); no CA, another CA, an
expired certificate and a plaintext client each get a clear one-line error; with
--client-cert-auth a client must present a certificate the server's CA signed."""
from __future__ import annotations

import pytest

from dcli.cluster.certs import LocalCA
from tests.conftest import ServerProcess, run_cli


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    ca = LocalCA.create(base / "ca")
    other = LocalCA.create(base / "other")
    return {
        "ca": ca.cert_path, "other": other.cert_path,
        "node": ca.issue("node", server=True, client=True), "client": ca.issue("client", client=True),
        "stranger": other.issue("stranger", client=True),
        "expired": ca.issue("expired", server=True, days=-1, not_before_days=-30),
    }


def _server(tmp_path, pki, *extra, cert="node", ca=True):
    issued = pki[cert]
    trust = ["--trusted-ca-file", str(pki["ca"])] if ca else []
    return ServerProcess(tmp_path / f"data-{cert}", "--cert-file", str(issued.cert), "--key-file", str(issued.key),
                         *trust, "--group-initial-rebalance-delay-ms", "0", *extra).start()


def dcli(srv, *args, env=None):
    return run_cli(*args, server=srv, env=env)


def test_clients_with_the_ca_connect_and_clients_without_it_are_told_why(tmp_path, pki):
    srv = _server(tmp_path, pki)
    try:
        tls = {"DCLI_CACERT": str(pki["ca"])}
        assert dcli(srv, "zk", "create", "/tls", "over tls", env=tls).returncode == 0
        got = dcli(srv, "zk", "get", "/tls", env=tls)
        assert got.returncode == 0 and got.stdout.decode().strip() == "over tls"
        assert dcli(srv, "--cacert", str(pki["ca"]), "kafka", "topics", "--create", "--topic", "t",
                    "--partitions", "1").returncode == 0
        sent = run_cli("kafka", "console-producer", "--topic", "t", server=srv, input=b"hello\n", env=tls)
        assert sent.returncode == 0, sent.stderr
        read = dcli(srv, "kafka", "console-consumer", "--topic", "t", "--from-beginning", "--max-messages", "1",
                    env=tls)
        assert read.stdout.decode().splitlines()[0] == "hello", read.stderr
        assert dcli(srv, "kv", "put", "k", "v", env=tls).returncode == 0
        assert dcli(srv, "kv", "get", "k", env=tls).stdout.decode().startswith("v")
        plain = dcli(srv, "--dial-timeout", "1", "zk", "get", "/tls")
        assert plain.returncode != 0
        err = plain.stderr.decode()
        assert "speaks TLS: give its CA with --cacert" in err and err.count("\n") == 1, err
        wrong = dcli(srv, "--dial-timeout", "1", "zk", "get", "/tls", env={"DCLI_CACERT": str(pki["other"])})
        assert wrong.returncode != 0 and wrong.stderr.decode().count("\n") == 1
        missing = dcli(srv, "--cacert", str(tmp_path / "nope.pem"), "zk", "get", "/tls")
        assert missing.returncode == 2 and "cannot read --cacert" in missing.stderr.decode()
    finally:
        srv.kill()
    assert "Traceback" not in srv.log()


def test_a_tls_client_of_a_plaintext_server_is_told_so(server, pki):
    out = dcli(server, "--dial-timeout", "1", "--cacert", str(pki["ca"]), "zk", "ls", "/")
    assert out.returncode != 0
    assert "does not speak TLS: leave out --cacert" in out.stderr.decode(), out.stderr


def test_an_expired_server_certificate_is_refused(tmp_path, pki):
    srv = _server(tmp_path, pki, cert="expired")
    try:
        out = dcli(srv, "--dial-timeout", "1", "--cacert", str(pki["ca"]), "zk", "ls", "/")
        assert out.returncode != 0 and out.stderr.decode().count("\n") == 1
    finally:
        srv.kill()


def test_client_cert_auth_lets_in_only_clients_the_ca_signed(tmp_path, pki):
    srv = _server(tmp_path, pki, "--client-cert-auth")
    try:
        ca = ["--cacert", str(pki["ca"]), "--dial-timeout", "1"]
        client, stranger = pki["client"], pki["stranger"]
        ok = dcli(srv, *ca, "--cert", str(client.cert), "--key", str(client.key), "zk", "ls", "/")
        assert ok.returncode == 0, ok.stderr
        assert dcli(srv, *ca, "zk", "ls", "/").returncode != 0                     # no certificate
        refused = dcli(srv, *ca, "--cert", str(stranger.cert), "--key", str(stranger.key), "zk", "ls", "/")
        assert refused.returncode != 0 and refused.stderr.decode().count("\n") == 1
        half = dcli(srv, *ca, "--cert", str(client.cert), "zk", "ls", "/")
        assert half.returncode == 2 and "--cert and --key go together" in half.stderr.decode()
    finally:
        srv.kill()


def test_the_server_refuses_tls_settings_that_do_not_fit(tmp_path, pki):
    import subprocess
    import sys

    def start(*args):
        return subprocess.run([sys.executable, "-m", "dcli_server", "--listen", "127.0.0.1:0", "--data-dir",
                               str(tmp_path / "x"), *args], capture_output=True, timeout=60)
    alone = start("--cert-file", str(pki["node"].cert))
    assert alone.returncode == 2 and "--cert-file and --key-file go together" in alone.stderr.decode()
    auth = start("--cert-file", str(pki["node"].cert), "--key-file", str(pki["node"].key), "--client-cert-auth")
    assert auth.returncode == 2 and "--client-cert-auth needs" in auth.stderr.decode()
    # a node of a cluster checks its peers' certificates: with the client port's files it needs their CA
    peers = start("--cert-file", str(pki["node"].cert), "--key-file", str(pki["node"].key), "--node-id", "1",
                  "--peers", "1=127.0.0.1:7181,2=127.0.0.1:7182,3=127.0.0.1:7183")
    assert peers.returncode == 2, peers.stderr
    assert peers.stderr.decode().strip() == (
        "--cert-file on a node with a peer port needs --trusted-ca-file (or --peer-trusted-ca-file): "
        "the CA its peers' certificates are checked against")


def test_a_node_without_a_trusted_ca_serves_its_broker(tmp_path, pki):
    """The node's broker reaches the tree in process, not through the TLS client port: the node
    needs no CA to trust its own certificate. Topic creation, produce and a group's consume all
    go through the broker's registration, controller and committed offsets in the tree."""
    srv = _server(tmp_path, pki, ca=False)
    try:
        tls = {"DCLI_CACERT": str(pki["ca"])}
        made = dcli(srv, "kafka", "topics", "--create", "--topic", "t", "--partitions", "2", env=tls)
        assert made.returncode == 0, made.stderr
        sent = run_cli("kafka", "console-producer", "--topic", "t", server=srv, input=b"one\ntwo\n", env=tls)
        assert sent.returncode == 0, sent.stderr
        read = dcli(srv, "kafka", "console-consumer", "--topic", "t", "--group", "g", "--from-beginning",
                    "--max-messages", "2", env=tls)
        assert sorted(read.stdout.decode().split()) == ["one", "two"], read.stderr
        lag = dcli(srv, "kafka", "consumer-groups", "--describe", "--group", "g", env=tls)
        assert lag.returncode == 0 and "t" in lag.stdout.decode(), lag.stderr
    finally:
        srv.kill()
    assert "Traceback" not in srv.log()
