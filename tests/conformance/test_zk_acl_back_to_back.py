"""ACLs back to back: the same kazoo session (acl_scenarios.py) against a real ZooKeeper 3.8 and
against dcli, with digest, ip, world and auth ids; each permission where ZooKeeper asks for it;
getACL with and without ADMIN (a digest's hash hidden); setACL's version; malformed lists."""
from __future__ import annotations

import pytest

from tests.conformance.acl_scenarios import acl_session, exists_without_read
from tests.conformance.recording import KNOWN_DIFFERENCES
from tests.conformance.test_zk_back_to_back import back_to_back


def test_acls_back_to_back(addresses, connect, root):
    back_to_back(addresses, connect, root, acl_session)


@pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES["exists_without_read"])
def test_exists_needs_read(addresses, connect, root):
    back_to_back(addresses, connect, root, exists_without_read)
