"""`dcli kafka console-consumer` and `kafka-console-consumer`: print records as they arrive, in a
group (`--group`, or a fresh one) or from one partition (`--partition` with `--offset`).

    $ kafka-console-consumer --topic chat --from-beginning --max-messages 2 --property print.key=true
    k1	v1
    k2	v2
    Processed a total of 2 messages

The fields printed are set by Kafka's DefaultMessageFormatter properties (dcli.output.broker);
`-w json` prints one object per record instead.
"""
from __future__ import annotations

import time
from typing import Optional

import typer

from dcli.cli.kafka.options import BootstrapOption, bootstrap, printer
from dcli.wire import errors


def start_offset(offset: Optional[str]):
    """--offset: `earliest`, `latest` or a non-negative number (None: not given)."""
    if offset is None or offset in ("earliest", "latest"):
        return offset
    if offset.isdigit():
        return int(offset)
    raise errors.UsageError(f"The provided offset value '{offset}' is incorrect. Valid values are "
                            "'earliest', 'latest', or a non-negative long.")


def console_consumer(ctx: typer.Context, bootstrap_server: Optional[str] = BootstrapOption,
                     topic: Optional[str] = typer.Option(None, "--topic", metavar="topic"),
                     group: Optional[str] = typer.Option(None, "--group", metavar="consumer group id"),
                     from_beginning: bool = typer.Option(False, "--from-beginning"),
                     partition: Optional[int] = typer.Option(None, "--partition", metavar="partition"),
                     offset: Optional[str] = typer.Option(None, "--offset", metavar="consume offset"),
                     max_messages: Optional[int] = typer.Option(None, "--max-messages", metavar="num_messages"),
                     timeout_ms: Optional[int] = typer.Option(None, "--timeout-ms", metavar="timeout_ms"),
                     prop: Optional[list[str]] = typer.Option(None, "--property", metavar="prop",
                                                              help="Formatter property: print.key=true, ..."),
                     consumer_prop: Optional[list[str]] = typer.Option(None, "--consumer-property",
                                                                       metavar="consumer_prop")) -> None:
    """Print records as they arrive: kafka-console-consumer."""
    if not topic:
        raise errors.UsageError("Exactly one of --include/--topic is required. ")
    if offset is not None and partition is None:
        raise errors.UsageError("The partition is required when offset is specified.")
    if group is not None and partition is not None:
        raise errors.UsageError("Options group and partition cannot be specified together.")
    if from_beginning and offset is not None:
        raise errors.UsageError("Options from-beginning and offset cannot be specified together.")
    start = start_offset(offset)
    from dcli.output.broker import MessageFormatter

    formatter = MessageFormatter(dict(item.partition("=")[::2] for item in (prop or [])))
    extra = dict(item.partition("=")[::2] for item in (consumer_prop or []))
    reset = extra.pop("auto.offset.reset", None)
    check_crcs = extra.pop("check.crcs", "true").lower()
    if check_crcs not in ("true", "false"):
        raise errors.UsageError(f"Invalid value {check_crcs} for configuration check.crcs: Expected value to be "
                                "either true or false")
    if from_beginning and reset not in (None, "earliest"):
        raise errors.UsageError(f"Can't simultaneously specify --from-beginning and 'auto.offset.reset={reset}', "
                                "please remove one option")
    if extra:
        raise errors.UsageError(f"Unsupported consumer property: {sorted(extra)[0]}")
    from dcli.client.consumer import Consumer, random_group

    p = printer(ctx)
    consumer = Consumer(bootstrap(ctx, bootstrap_server),
                        group_id=group or (None if partition is not None else random_group()),
                        client_id="console-consumer", enable_auto_commit=group is not None,
                        auto_offset_reset="earliest" if from_beginning else (reset or "latest"),
                        check_crcs=check_crcs == "true")
    count = 0
    try:
        if partition is not None:
            tp = (topic, partition)
            consumer.assign([tp])
            if start == "earliest":
                consumer.seek_to_beginning([tp])
            elif isinstance(start, int):
                consumer.seek(tp, start)
            else:
                consumer.seek_to_end([tp])
        else:
            consumer.subscribe([topic])
        idle_deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while max_messages is None or count < max_messages:
            wait = 1000 if idle_deadline is None else max(0, int((idle_deadline - time.monotonic()) * 1000))
            records = consumer.poll(wait, max_records=None if max_messages is None else max_messages - count)
            if not records:
                if idle_deadline is not None and time.monotonic() >= idle_deadline:
                    p.consumer_timed_out()
                    break
                continue
            p.records(records, formatter)
            count += len(records)
            if timeout_ms is not None:
                idle_deadline = time.monotonic() + timeout_ms / 1000
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        p.consumed(count)
