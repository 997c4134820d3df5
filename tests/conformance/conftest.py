"""Fixtures for the conformance suite: one real ZooKeeper 3.8 and one dcli server for the whole
run (each test works under its own root path on both), and kazoo clients of each.

The suite runs with `make conformance`, not `make test`: it needs Debian's zookeeper package and
java, and every test is skipped with the reason when they are missing.
"""
from __future__ import annotations

import pytest

from tests.conformance import reference_zk
from tests.conformance.recording import DCLI_FLAGS
from tests.conformance.transcript import Clients
from tests.conftest import ServerProcess


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory):
    why = reference_zk.missing()
    if why:
        pytest.skip(why)
    srv = reference_zk.start(tmp_path_factory.mktemp("zookeeper"))
    version = reference_zk.version(srv)
    if not version.startswith("3.8."):
        srv.stop()
        pytest.skip(f"the reference is ZooKeeper 3.8; this one is {version!r}")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def dcli(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("dcli") / "data", *DCLI_FLAGS).start()
    assert srv.zk_address, "the dcli server does not serve ZooKeeper's protocol"
    yield srv
    srv.kill()


@pytest.fixture(scope="session")
def addresses(zookeeper, dcli) -> dict[str, str]:
    """The two servers' ZooKeeper addresses, the reference first."""
    return {"zookeeper": zookeeper.address, "dcli": dcli.zk_address}


@pytest.fixture
def connect():
    clients = Clients()
    yield clients
    clients.close_all()


@pytest.fixture
def root(request) -> str:
    """The test's own root path, the same on both servers."""
    return "/" + request.node.name.replace("[", "-").replace("]", "").replace("test_", "", 1)[:60]
