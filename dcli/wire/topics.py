"""Kafka's topic-name rules (clients `common/internals/Topic.java`) with its exact messages,
and the partition directory names that the broker derives from them.

    >>> topic_problem("bad topic!")
    "'bad topic!' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
    >>> partition_dir_name("chat", 0), parse_partition_dir("chat-0")
    ('chat-0', ('chat', 0))
"""
from __future__ import annotations

import re

from dcli.wire.errors import InvalidTopicError

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
# What kafka-topics.sh --create prints for a name with '.' or '_'.
COLLISION_WARNING = (
    "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') "
    "could collide. To avoid issues it is best to use either, but not both."
)
_MAX_PARTITION = 2**31 - 1  # partition ids are Java ints


def topic_problem(name: str) -> str | None:
    """Why Kafka refuses `name` as a topic name (the text after "Topic name is invalid: "),
    or None when it is legal."""
    if not name:
        return "the empty string is not allowed"
    if name == ".":
        return "'.' is not allowed"
    if name == "..":
        return "'..' is not allowed"
    # Java counts UTF-16 units; a name that long is refused before its characters are looked at.
    if len(name.encode("utf-16-le")) // 2 > MAX_NAME_LENGTH:
        return f"the length of '{name}' is longer than the max allowed length {MAX_NAME_LENGTH}"
    if not _LEGAL.fullmatch(name):
        return (f"'{name}' contains one or more characters other than ASCII alphanumerics, "
                "'.', '_' and '-'")
    return None


def validate_topic(name: str) -> str:
    """Return `name` if Kafka would accept it, else raise InvalidTopicError with its message."""
    problem = topic_problem(name)
    if problem is not None:
        raise InvalidTopicError(message=f"Topic name is invalid: {problem}")
    return name


def is_internal(name: str) -> bool:
    return name in INTERNAL_TOPICS


def has_collision_chars(name: str) -> bool:
    """True when the name has '.' or '_', the characters metric names cannot tell apart."""
    return "." in name or "_" in name


def unify_collision_chars(name: str) -> str:
    return name.replace(".", "_")


def collides(a: str, b: str) -> bool:
    """True when two topic names clash in metric names ("a.b" and "a_b"); Kafka refuses to
    create the second one ("Topic 'a_b' collides with existing topics: a.b")."""
    return unify_collision_chars(a) == unify_collision_chars(b)


def partition_dir_name(topic: str, partition: int) -> str:
    """The directory of one partition's log, `<topic>-<partition>` as Kafka names it. A valid
    topic name has no '/' and is not '.' or '..', so the result stays inside its parent."""
    validate_topic(topic)
    if not 0 <= partition <= _MAX_PARTITION:
        raise InvalidTopicError(message=f"Invalid partition {partition} for topic {topic}")
    return f"{topic}-{partition}"


_DIR = re.compile(r"(.+)-(0|[1-9][0-9]*)")


def parse_partition_dir(name: str) -> tuple[str, int]:
    """(topic, partition) from a directory name made by `partition_dir_name`; refuses anything
    else (a path separator, '..', a bad topic name, a partition that is not a plain number)."""
    m = _DIR.fullmatch(name)
    if m is None or topic_problem(m.group(1)) is not None or int(m.group(2)) > _MAX_PARTITION:
        raise InvalidTopicError(message=f"'{name}' is not a partition directory name "
                                        "(<topic>-<partition>)")
    return m.group(1), int(m.group(2))
