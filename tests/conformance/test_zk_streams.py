"""Back to back on whole streams (stream_scenarios.py): the order of replies and notifications on
one connection (a bare socket, so nothing between the wire and the test reorders them), and a
seeded random request stream through kazoo compared op by op. Normalisation as in transcript.py;
children lists sorted.
"""
from __future__ import annotations

import pytest

from tests.conformance.recording import KNOWN_DIFFERENCES
from tests.conformance.stream_scenarios import (abandoned_session, failed_writes, one_connection, random_stream,
                                                session_timeouts)
from tests.conformance.test_zk_back_to_back import back_to_back


def test_replies_and_notifications_in_order_on_one_connection(addresses, connect, root):
    back_to_back(addresses, connect, root, one_connection)


@pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES["failed_writes"])
def test_a_failed_write_gets_a_zxid_of_its_own(addresses, connect, root):
    back_to_back(addresses, connect, root, failed_writes)


def test_a_random_request_stream_op_by_op(addresses, connect, root):
    back_to_back(addresses, connect, root, random_stream)


def test_session_timeout_negotiation(addresses, connect, root):
    """tickTime 2000 on the reference: ZooKeeper's defaults are 2 and 20 ticks (4 s .. 40 s)."""
    back_to_back(addresses, connect, root, session_timeouts)


def test_an_abandoned_session_expires_and_its_ephemeral_goes(addresses, connect, root):
    back_to_back(addresses, connect, root, abandoned_session)
