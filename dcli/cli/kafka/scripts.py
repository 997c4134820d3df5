"""The console scripts named as Kafka's tools (pyproject's [project.scripts]): each runs one
command of the `kafka` app, so `kafka-topics --list` is `dcli kafka topics --list`.

    kafka-topics = "dcli.cli.kafka.scripts:topics"
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from dcli.cli.kafka import app
from dcli.cli.runner import exit_now, run


def script(command: str) -> Callable[[list[str] | None], None]:
    """The entry point `kafka-<command>`: its own program name in usage and error lines."""
    def main(argv: list[str] | None = None) -> None:
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        args = sys.argv[1:] if argv is None else argv
        exit_now(run(app, [command, *args], f"kafka-{command}"))
    return main


topics = script("topics")
console_producer = script("console-producer")
console_consumer = script("console-consumer")
consumer_groups = script("consumer-groups")
leader_election = script("leader-election")
