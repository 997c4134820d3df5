"""kazoo back to back: each scenario (scenarios.py) runs once against a real ZooKeeper 3.8 and once
against dcli's ZooKeeper listener, with fresh clients and the same root path, and the two
transcripts (see transcript.py for what is normalised and why) must be equal.

Children lists are compared sorted: ZooKeeper keeps a node's children in a hash set and sends them
in its iteration order, which no client may rely on.
"""
from __future__ import annotations

import pytest

from tests.conformance.scenarios import (big_packets, container_through_create, crud_and_stats, ephemerals_and_counts,
                                         errors, extended_creates, multi, null_and_empty, reads_of_bad_paths,
                                         sequential_names, session_close, watches, who_am_i)
from tests.conformance.transcript import differences


def back_to_back(addresses, connect, root, scenario) -> None:
    got = {name: scenario(connect, address, root) for name, address in addresses.items()}
    assert got["dcli"] == got["zookeeper"], "\n" + differences(got["zookeeper"], got["dcli"])


def test_crud_and_stats_after_creates_and_deletes(addresses, connect, root):
    back_to_back(addresses, connect, root, crud_and_stats)


def test_sequential_names_ephemeral_and_persistent_after_deletes(addresses, connect, root):
    back_to_back(addresses, connect, root, sequential_names)


def test_null_and_empty_data_round_trip(addresses, connect, root):
    back_to_back(addresses, connect, root, null_and_empty)


def test_every_error_and_bad_paths(addresses, connect, root):
    back_to_back(addresses, connect, root, errors)


def test_reads_of_bad_paths_are_no_node(addresses, connect, root):
    back_to_back(addresses, connect, root, reads_of_bad_paths)


def test_multi_success_and_per_op_failure_results(addresses, connect, root):
    back_to_back(addresses, connect, root, multi)


def test_watch_events_and_their_order(addresses, connect, root):
    back_to_back(addresses, connect, root, watches)


def test_closing_a_session_removes_its_ephemerals_and_fires_watches(addresses, connect, root):
    back_to_back(addresses, connect, root, session_close)


def test_container_and_ttl_nodes(addresses, connect, root):
    back_to_back(addresses, connect, root, extended_creates)


def test_container_mode_through_plain_create(addresses, connect, root):
    back_to_back(addresses, connect, root, container_through_create)


def test_get_ephemerals_and_all_children_number(addresses, connect, root):
    back_to_back(addresses, connect, root, ephemerals_and_counts)


def test_who_am_i_and_digest_auth(addresses, connect, root):
    back_to_back(addresses, connect, root, who_am_i)


def test_packets_over_one_mebibyte_lose_the_connection(addresses, connect, root):
    back_to_back(addresses, connect, root, big_packets)
