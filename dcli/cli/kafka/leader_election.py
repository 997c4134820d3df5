"""`dcli kafka leader-election` and `kafka-leader-election`: move partition leadership back to the
preferred replicas (the first of each replica list), or elect any live replica of an offline
partition (unclean), as Kafka's tool does, with its output:

    $ kafka-leader-election --bootstrap-server 127.0.0.1:7181 --election-type preferred --all-topic-partitions
    Successfully completed leader election (PREFERRED) for partitions chat-0, chat-2
    Valid replica already elected for partitions chat-1
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from dcli.cli.kafka.options import BootstrapOption, bootstrap, printer
from dcli.wire import errors

TYPES = {"preferred": "PREFERRED", "unclean": "UNCLEAN"}


def partitions_from_json(path: Path) -> list[tuple[str, int]]:
    """The partitions of Kafka's election file: {"partitions": [{"topic": "t", "partition": 0}]}."""
    try:
        doc = json.loads(path.read_text())
        return [(str(p["topic"]), int(p["partition"])) for p in doc["partitions"]]
    except OSError as e:
        raise errors.UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise errors.UsageError(f"{path} is not a partition list "
                                f'{{"partitions": [{{"topic": "t", "partition": 0}}]}}: {e}') from None


def leader_election(ctx: typer.Context, bootstrap_server: Optional[str] = BootstrapOption,
                    election_type: Optional[str] = typer.Option(None, "--election-type", metavar="PREFERRED|UNCLEAN",
                                                                help="Preferred replica, or any live one when none in sync is."),
                    topic: Optional[str] = typer.Option(None, "--topic", metavar="topic"),
                    partition: Optional[int] = typer.Option(None, "--partition", metavar="partition id"),
                    all_partitions: bool = typer.Option(False, "--all-topic-partitions",
                                                        help="Every partition of every topic."),
                    json_file: Optional[Path] = typer.Option(None, "--path-to-json-file", metavar="FILE")) -> None:
    """Elect partition leaders: kafka-leader-election."""
    if election_type is None:
        raise errors.UsageError("Missing required option(s) [election-type]")
    kind = TYPES.get(election_type.strip().lower())
    if kind is None:
        raise errors.UsageError(f"Unknown election type: {election_type} (choose PREFERRED or UNCLEAN)")
    if sum((topic is not None, all_partitions, json_file is not None)) != 1:
        raise errors.UsageError("One and only one of the following options is required: "
                                "all-topic-partitions, topic, path-to-json-file")
    if partition is not None and topic is None:
        raise errors.UsageError("Missing required option(s) [topic]")
    from dcli.client.admin import Admin

    p = printer(ctx)
    with Admin(bootstrap(ctx, bootstrap_server)) as admin:
        if json_file is not None:
            wanted = partitions_from_json(json_file)
        elif topic is not None:
            [described] = admin.describe_topics([topic])
            wanted = ([(topic, partition)] if partition is not None
                      else [(topic, q.partition) for q in described.partitions])
        else:
            wanted = None
        results = admin.elect_leaders(wanted, unclean=kind == "UNCLEAN")
    done = [f"{t}-{p}" for (t, p), e in results.items() if e is None]
    noop = [f"{t}-{p}" for (t, p), e in results.items() if isinstance(e, errors.ElectionNotNeededError)]
    failed = {f"{t}-{p}": e for (t, p), e in results.items()
              if e is not None and not isinstance(e, errors.ElectionNotNeededError)}
    p.elections(kind, done, noop, failed)
    if failed:
        raise typer.Exit(1)
