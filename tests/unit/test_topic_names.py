"""Kafka's topic-name rules, the collision check, and partition directory names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcli.wire.errors import ExitCode, InvalidTopicError
from dcli.wire.topics import (
    collides,
    has_collision_chars,
    is_internal,
    parse_partition_dir,
    partition_dir_name,
    topic_problem,
    validate_topic,
)


@pytest.mark.parametrize("name,message", [
    ("", "Topic name is invalid: the empty string is not allowed"),
    (".", "Topic name is invalid: '.' is not allowed"),
    ("..", "Topic name is invalid: '..' is not allowed"),
    ("a" * 250, f"Topic name is invalid: the length of '{'a' * 250}' is longer than the max "
                "allowed length 249"),
    ("bad topic!", "Topic name is invalid: 'bad topic!' contains one or more characters other "
                   "than ASCII alphanumerics, '.', '_' and '-'"),
    ("a/b", "Topic name is invalid: 'a/b' contains one or more characters other than ASCII "
            "alphanumerics, '.', '_' and '-'"),
    ("caf\u00e9", "Topic name is invalid: 'caf\u00e9' contains one or more characters other "
                  "than ASCII alphanumerics, '.', '_' and '-'"),
])
def test_kafkas_messages(name, message):
    with pytest.raises(InvalidTopicError) as info:
        validate_topic(name)
    assert str(info.value) == message
    assert info.value.exit_code == ExitCode.USAGE and info.value.kafka_code == 17


@pytest.mark.parametrize("name", ["a", "a" * 249, "chat", "my.topic_v-2", "...", "__consumer_offsets"])
def test_legal_names(name):
    assert validate_topic(name) == name


def test_length_is_checked_before_characters():
    assert "longer than the max" in topic_problem("!" * 250)


def test_collisions_unify_dot_and_underscore():
    assert collides("a.b", "a_b") and collides("a_b", "a_b")
    assert not collides("a.b", "a-b")
    assert has_collision_chars("a.b") and has_collision_chars("a_b") and not has_collision_chars("ab")


def test_internal_topics():
    assert is_internal("__consumer_offsets") and not is_internal("chat")


def test_partition_dir_round_trip():
    assert partition_dir_name("chat", 0) == "chat-0"
    assert partition_dir_name("my-topic-2", 17) == "my-topic-2-17"
    assert parse_partition_dir("my-topic-2-17") == ("my-topic-2", 17)


@pytest.mark.parametrize("name", [
    "../etc-0", "a/b-0", "..-0", ".-0", "-0", "chat-", "chat", "chat-01", "chat-+1",
    "chat-0/x", "chat-2147483648", "chat-0 ", "/chat-0",
])
def test_partition_dir_parser_refuses_anything_else(name):
    with pytest.raises(InvalidTopicError):
        parse_partition_dir(name)


@pytest.mark.parametrize("topic,partition", [("..", 0), ("a/b", 0), ("chat", -1), ("chat", 2**31)])
def test_partition_dir_name_refuses_escapes_and_bad_partitions(topic, partition):
    with pytest.raises(InvalidTopicError):
        partition_dir_name(topic, partition)


@given(st.text(min_size=1, max_size=30), st.integers(0, 2**31 - 1))
def test_a_dir_name_never_leaves_its_parent(topic, partition):
    try:
        name = partition_dir_name(topic, partition)
    except InvalidTopicError:
        return
    assert "/" not in name and name not in (".", "..") and not name.startswith(".-")
    assert parse_partition_dir(name) == (topic, partition)
