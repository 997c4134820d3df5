"""The error table: every lookup is built from the classes' own declarations, and every error a
server raises comes back to the client as the same class with the same message."""
from __future__ import annotations

import logging

import pytest

from dcli.wire import errors
from dcli_server.listeners.ratelimit import RateLimitedLog

DECLARED = sorted(errors._BY_NAME.values(), key=lambda c: c.__name__)


def test_each_code_finds_the_class_that_declares_it():
    assert errors.for_code(errors.Code.NO_NODE) is errors.NoNodeError
    assert errors.for_code(errors.Code.SYSTEM_ERROR) is errors.SystemError_
    assert errors.for_code(errors.Code.BAD_ARGUMENTS) is errors.BadArgumentsError   # not a broker error
    assert errors.for_code(errors.Code.CONNECTION_LOSS) is errors.ConnectionLossError  # not UnavailableError
    assert errors.for_code(999) is errors.DcliError
    assert errors.for_kafka_code(6) is errors.NotLeaderOrFollowerError
    assert errors.for_kafka_code(13) is errors.NetworkError                      # not its subclass
    assert errors.for_kafka_code(-1) is None and errors.for_kafka_code(9999) is None
    assert errors.for_kv_code(1) is errors.QuorumNotReachedError and errors.for_kv_code(99) is errors.KVError


@pytest.mark.parametrize("attr,lookup", [("code", errors.for_code), ("kafka_code", errors.for_kafka_code),
                                         ("kv_code", errors.for_kv_code)])
def test_no_two_classes_declare_one_code_unless_the_first_is_meant(attr, lookup):
    """A second class declaring a code is reached only through the first; list them to notice."""
    shadowed = {cls.__name__ for cls in DECLARED
                if cls.__dict__.get(attr) is not None and cls.__dict__[attr] > 0 and lookup(cls.__dict__[attr]) is not cls}
    assert shadowed == ({"UnavailableError", "NotConnectedError", "BrokerError", "KVError"} if attr == "code" else set())


@pytest.mark.parametrize("cls", DECLARED, ids=lambda c: c.__name__)
def test_every_error_survives_the_trip_through_its_tag(cls):
    sent = cls("", "the server's own words")
    got = errors.from_tag(errors.error_tag(sent), str(sent))
    assert str(got) == "the server's own words"
    # the class itself, or the one its code belongs to (a client-side subclass of it)
    assert isinstance(sent, type(got)) and got.exit_code == sent.exit_code


def test_tags_say_which_table_the_code_is_in():
    assert errors.error_tag(errors.NoNodeError("/a")) == "code:8"
    assert errors.error_tag(errors.NotLeaderOrFollowerError()) == "kafka:6"
    assert errors.error_tag(errors.QuorumNotReachedError()) == "kv:1"
    assert errors.error_tag(errors.ClusterStateError("", "x")) == "name:ClusterStateError"
    assert type(errors.from_tag("name:NoSuchThing", "m")) is errors.DcliError
    assert type(errors.from_tag("code:nonsense", "m")) is errors.SystemError_


def test_kafka_error_keeps_an_unknown_code():
    err = errors.kafka_error(4242, "odd")
    assert (type(err), err.kafka_code, str(err)) == (errors.BrokerError, 4242, "odd")
    assert type(errors.kafka_error(3, "")) is errors.UnknownTopicOrPartitionError


def test_retry_decisions_are_the_errors_own():
    assert errors.NotLeaderOrFollowerError.retriable and errors.NotLeaderOrFollowerError.invalid_metadata
    assert errors.QuorumNotReachedError.retriable and not errors.NoNodeError.retriable
    assert errors.TopicExistsError.exit_code == errors.ExitCode.CONFLICT
    moved = {code for code, cls in errors._BY_KAFKA_CODE.items() if cls.coordinator_moved}
    assert moved == {14, 15, 16}       # Kafka's consumer looks for the coordinator again after these


def test_rate_limited_log_says_how_many_it_held_back(caplog):
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("t"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        assert limited.warning("k", "bad %s", "one")
        assert not limited.warning("k", "bad %s", "two")
        assert not limited.warning("k", "bad %s", "three")
        assert limited.warning("other", "bad %s", "four")           # another kind is its own
        now[0] = 10.0
        assert limited.warning("k", "bad %s", "five")
    assert [r.getMessage() for r in caplog.records] == [
        "bad one", "bad four", "bad five (2 more like it not logged)"]
