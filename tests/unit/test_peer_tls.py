"""Mutual TLS on the peer transport (peer_tls.py), and the cluster id a data dir remembers
(peer_identity.py): two transports in one process, certificates from a LocalCA."""
from __future__ import annotations

import asyncio
import logging
import ssl
import uuid

import pytest

from dcli.cluster.certs import LocalCA
from dcli.wire.errors import UsageError
from dcli_server.listeners import peer_identity
from dcli_server.listeners.peer_connection import PeerUnreachable, limited
from dcli_server.listeners.peer_frames import Frame, Kind
from dcli_server.listeners.peer_handshake import ClusterSecretHandshake
from dcli_server.listeners.peer_stream import open_frame_stream
from dcli_server.listeners.peer_tls import PeerTLS
from dcli_server.listeners.peer_transport import PeerTransport

DEADLINE_S = 30.0
ECHO = 1


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, DEADLINE_S)
    return asyncio.run(bounded())


async def until(predicate, what: str, deadline_s: float = DEADLINE_S / 2) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    """The cluster's CA with three node certificates, and another CA with one (a rogue's)."""
    ours = LocalCA.create(tmp_path_factory.mktemp("ca"))
    theirs = LocalCA.create(tmp_path_factory.mktemp("rogue-ca"))

    def tls(ca, name, kind=PeerTLS):
        issued = ca.issue(name, server=True, client=True)
        return kind(issued.cert, issued.key, ca.cert_path)
    return {"node-1": tls(ours, "node-1"), "node-2": tls(ours, "node-2"), "node-3": tls(ours, "node-3"),
            "rogue": tls(theirs, "rogue", RogueTLS)}


class RogueTLS(PeerTLS):
    """A node with a certificate of another CA that trusts whatever it dials, as an attacker would."""

    def dial_context(self):
        context = super().dial_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context


async def transport(node_id: int, tls, secret=None) -> PeerTransport:
    t = PeerTransport(ClusterSecretHandshake(node_id, cluster_id=9, secret=secret), tls=tls)

    async def echo(peer, payload):
        return b"%d:" % node_id + payload
    t.handle_request(ECHO, echo)
    await t.listen("127.0.0.1", 0)
    return t


def test_nodes_with_the_clusters_certificates_talk_over_tls_with_a_secret_too(cas):
    async def scenario():
        one = await transport(1, cas["node-1"], b"s3cret-s3cret-s3cret")
        two = await transport(2, cas["node-2"], b"s3cret-s3cret-s3cret")
        try:
            one.add_peer(2, f"127.0.0.1:{two.port}")
            two.add_peer(1, f"127.0.0.1:{one.port}")
            assert await one.request(2, ECHO, b"hi", timeout=10) == b"2:hi"
            assert await two.request(1, ECHO, b"ho", timeout=10) == b"1:ho"
            conn = one._links[2].connection
            assert conn.stream.get_extra_info("ssl_object") is not None         # encrypted, not plain
            peer_cert = two._links[1].connection.stream.get_extra_info("peercert")
            assert dict(x[0] for x in peer_cert["subject"])["commonName"] == "node-1"   # it proved itself
        finally:
            await one.close()
            await two.close()
    run(scenario())


@pytest.mark.parametrize("dialler", ["rogue", "plaintext"])
def test_a_dialler_without_a_certificate_of_the_cluster_is_refused_with_one_line(cas, dialler, caplog):
    async def scenario():
        limited.clear()
        three = await transport(3, cas["node-3"])
        bad = await transport(1, cas["rogue"] if dialler == "rogue" else None)
        try:
            with caplog.at_level(logging.WARNING, logger="dcli.server.peer"):
                bad.add_peer(3, f"127.0.0.1:{three.port}")
                with pytest.raises(PeerUnreachable):
                    await bad.request(3, ECHO, b"", timeout=1.0)
                await until(lambda: three.refused >= 2, "two refusals")
            assert not three.reachable(1)
            refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert len(refusals) == 1, refusals                 # rate-limited: one line for many tries
            assert "TLS" in refusals[0], refusals
        finally:
            await bad.close()
            await three.close()
    run(scenario())


def test_a_listener_without_a_certificate_of_the_cluster_is_not_trusted_by_the_dialler(cas):
    async def scenario():
        rogue = await transport(2, cas["rogue"])
        one = await transport(1, cas["node-1"])
        try:
            one.add_peer(2, f"127.0.0.1:{rogue.port}")
            with pytest.raises(PeerUnreachable):
                await one.request(2, ECHO, b"", timeout=1.0)
            assert not one.reachable(2)
        finally:
            await one.close()
            await rogue.close()
    run(scenario())


def test_a_tls_listener_reads_no_frame_from_a_plaintext_connection(cas):
    async def scenario():
        three = await transport(3, cas["node-3"])
        try:
            stream = await open_frame_stream("127.0.0.1", three.port)
            stream.write(Frame(Kind.HELLO, 0, 0, b"\x01" + b"\x00" * 28))
            await stream.drain()
            await until(lambda: three.refused == 1, "the refusal")
            await stream.close()
        finally:
            await three.close()
    run(scenario())


def test_a_data_dir_remembers_its_cluster_and_refuses_another(tmp_path):
    d = tmp_path / "node"
    first = peer_identity.resolve(d, "alpha", {1: "a", 2: "b"})
    assert first == "alpha" and (d / "cluster-id").read_text().strip() == "alpha"
    assert peer_identity.resolve(d, None, {}) == "alpha"                # not told: the remembered one
    with pytest.raises(UsageError, match="belongs to cluster alpha, not --cluster-id beta"):
        peer_identity.resolve(d, "beta", {})
    # untold nodes started alike agree; a joining node must be told
    peers = {1: "127.0.0.1:8181", 2: "127.0.0.1:8182"}
    assert peer_identity.resolve(tmp_path / "a", None, peers) == peer_identity.resolve(tmp_path / "b", None, peers)
    with pytest.raises(UsageError, match="--join needs --cluster-id"):
        peer_identity.resolve(tmp_path / "c", None, peers, join=True)
    with pytest.raises(UsageError, match="invalid --cluster-id"):
        peer_identity.check("no/slashes")
    with pytest.raises(UsageError, match="invalid --cluster-id"):
        peer_identity.check("-looks-like-an-option")
    assert peer_identity.wire_id("alpha") != peer_identity.wire_id("beta")


def test_a_new_cluster_id_never_reads_as_an_option(monkeypatch):
    # base64 of a random UUID starts with '-' once in 64 draws: such an id given as
    # `--cluster-id ID` would be taken for an option. Draws made to start with '-' are redrawn.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(peer_identity.uuid, "uuid4", lambda: next(draws))
    made = peer_identity.new_cluster_id()
    assert made == "AQEBAQEBAQEBAQEBAQEBAQ" and peer_identity.check(made) == made     # the second draw


def test_the_peer_port_takes_the_client_ports_certificates_unless_given_its_own(cas, tmp_path):
    from dcli_server.config import load

    node = cas["node-1"]
    client_side = ["--cert-file", str(node.cert_file), "--key-file", str(node.key_file),
                   "--trusted-ca-file", str(node.trusted_ca_file), "--data-dir", str(tmp_path / "d")]
    tls = load(client_side, {})[0].peer_tls()
    assert (tls.cert_file, tls.key_file, tls.trusted_ca_file, tls.client_cert_auth) == \
        (node.cert_file, node.key_file, node.trusted_ca_file, True)
    other = cas["node-2"]
    own = load([*client_side, "--peer-cert-file", str(other.cert_file), "--peer-key-file", str(other.key_file),
                "--no-peer-client-cert-auth"], {})[0].peer_tls()
    assert (own.cert_file, own.trusted_ca_file, own.client_cert_auth) == (other.cert_file, node.trusted_ca_file, False)
    assert load(["--data-dir", str(tmp_path / "d")], {})[0].peer_tls() is None
    with pytest.raises(UsageError, match="--peer-cert-file and --peer-key-file go together"):
        load(["--peer-cert-file", str(other.cert_file)], {})
    with pytest.raises(UsageError, match="cannot use the peer TLS files"):
        load(["--peer-cert-file", str(other.key_file), "--peer-key-file", str(other.key_file),
              "--peer-trusted-ca-file", str(node.trusted_ca_file)], {})[0].peer_tls()
