"""`dcli kafka topics` and `kafka-topics`: create, delete, describe, list or alter topics, with
kafka-topics' options and error lines.

    $ kafka-topics --bootstrap-server 127.0.0.1:7181 --create --topic chat --partitions 3
    Created topic chat.

Kafka's tools print an execution error as `Error while executing topic command : <message>` on
stdout; dcli does the same and exits with the error's exit code (DESIGN.md's table). With
`-w json`, --list and --describe print one object per topic and fail as any dcli command does.
"""
from __future__ import annotations

import re
from typing import Optional

import typer

from dcli.cli.kafka.options import BootstrapOption, bootstrap, json_out, printer
from dcli.wire import errors

ACTIONS = "--list, --describe, --create, --alter or --delete"
TOPIC_ALREADY_EXISTS = 36


class TopicCommandError(Exception):
    """An execution error, printed in kafka-topics' words."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def parse_configs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise errors.UsageError('requirement failed: Invalid topic config: all configs to be '
                                    'added must be in the format "key=val".')
        out[key.strip()] = value.strip()
    return out


def topics(ctx: typer.Context, bootstrap_server: Optional[str] = BootstrapOption,
           create: bool = typer.Option(False, "--create", help="Create a new topic."),
           list_: bool = typer.Option(False, "--list", help="List all available topics."),
           describe: bool = typer.Option(False, "--describe", help="List details for the given topics."),
           delete: bool = typer.Option(False, "--delete", help="Delete a topic."),
           alter: bool = typer.Option(False, "--alter", help="Alter the number of partitions."),
           topic: Optional[str] = typer.Option(None, "--topic", metavar="topic",
                                               help="The topic (a regular expression except with --create)."),
           partitions: Optional[int] = typer.Option(None, "--partitions", metavar="# of partitions"),
           replication_factor: Optional[int] = typer.Option(None, "--replication-factor",
                                                            metavar="replication factor"),
           config: Optional[list[str]] = typer.Option(None, "--config", metavar="name=value",
                                                      help="A topic configuration override (repeatable)."),
           if_not_exists: bool = typer.Option(False, "--if-not-exists"),
           if_exists: bool = typer.Option(False, "--if-exists"),
           exclude_internal: bool = typer.Option(False, "--exclude-internal"),
           under_replicated: bool = typer.Option(False, "--under-replicated-partitions"),
           unavailable: bool = typer.Option(False, "--unavailable-partitions"),
           with_overrides: bool = typer.Option(False, "--topics-with-overrides")) -> None:
    """Create, delete, describe, list or alter topics: kafka-topics."""
    if sum((create, list_, describe, delete, alter)) != 1:
        raise errors.UsageError(f"Command must include exactly one action: {ACTIONS}")
    if (create or delete or alter) and not topic:
        raise errors.UsageError("Missing required argument \"[topic]\"")
    if partitions is not None and partitions < 1:
        raise errors.UsageError("The partitions must be greater than 0")
    if replication_factor is not None and not 1 <= replication_factor <= 32767:
        raise errors.UsageError("The replication factor must be between 1 and 32767 inclusive")
    configs = parse_configs(config or [])
    from dcli.client.admin import Admin

    p = printer(ctx)
    if json_out(ctx) and (list_ or describe):
        with Admin(bootstrap(ctx, bootstrap_server)) as admin:
            return topics_json(admin, p, topic, list_, exclude_internal, if_exists)
    try:
        with Admin(bootstrap(ctx, bootstrap_server)) as admin:
            if create:
                create_topic(admin, p, topic, partitions, replication_factor, configs, if_not_exists)
            elif list_:
                p.topic_names([n for n in admin.list_topics() if not (exclude_internal and n.startswith("__"))])
            elif describe:
                names = matching(admin, topic, if_exists) if topic else admin.list_topics()
                if exclude_internal:
                    names = [n for n in names if not n.startswith("__")]
                p.topics_described(admin.describe_topics(names) if names else [],
                                   under_replicated, unavailable, with_overrides)
            elif delete:
                for name in matching(admin, topic, if_exists):
                    admin.delete_topic(name)
            elif alter:
                if partitions is None:
                    raise TopicCommandError("requirement failed: --partitions is required with --alter")
                for name in matching(admin, topic, if_exists):
                    admin.create_partitions(name, partitions)
    except (errors.BrokerError, TopicCommandError) as e:
        p.topic_command_error(str(e))
        raise typer.Exit(getattr(e, "exit_code", 1) or 1) from None


def topics_json(admin, p, pattern, list_only: bool, exclude_internal: bool, if_exists: bool) -> None:
    """`-w json`: the topics `pattern` names (all without one), or their descriptions."""
    try:
        names = matching(admin, pattern, if_exists) if pattern else admin.list_topics()
    except TopicCommandError as e:
        raise errors.NoNodeError("", str(e)) from None
    names = [n for n in names if not (exclude_internal and n.startswith("__"))]
    if list_only:
        p.topic_names(names)
    else:
        p.topics_described(admin.describe_topics(names) if names else [])


def create_topic(admin, p, name: str, partitions, replication_factor, configs, if_not_exists) -> None:
    from dcli.wire.topics import COLLISION_WARNING, has_collision_chars

    if has_collision_chars(name):
        p.topic_warning(COLLISION_WARNING)
    try:
        admin.create_topic(name, partitions if partitions is not None else -1,
                           replication_factor if replication_factor is not None else -1, configs)
    except errors.BrokerError as e:
        if if_not_exists and getattr(e, "kafka_code", 0) == TOPIC_ALREADY_EXISTS:
            return
        raise
    p.topic_created(name)


def matching(admin, pattern: str, if_exists: bool) -> list[str]:
    """The topics `pattern` (a Java regex, matched whole) names; none is an error unless if_exists."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise TopicCommandError(f"Invalid regular expression {pattern!r}: {e}") from None
    found = [n for n in admin.list_topics() if rx.fullmatch(n)]
    if not found and not if_exists:
        raise TopicCommandError(f"Topic '{pattern}' does not exist as expected")
    return found
