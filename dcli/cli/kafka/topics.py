"""`dcli kafka ...` and the console scripts named as Kafka's tools (`kafka-topics`,
`kafka-console-producer`): their options, their output and their error lines, character for
character where kafka.md records them.

Kafka's tools print an execution error as `Error while executing topic command : <message>` on
stdout; dcli does the same and exits with the error's exit code (DESIGN.md's table).
"""
from __future__ import annotations

import os
import re
import sys
from typing import Optional

import typer

from dcli.cli.common import settings
from dcli.wire import errors

app = typer.Typer(name="kafka", help="The broker, as Kafka's command-line tools.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})

BootstrapOption = typer.Option(None, "--bootstrap-server", metavar="HOST:PORT",
                               help="The server to connect to (default: --server / DCLI_SERVER).")
ACTIONS = "--list, --describe, --create, --alter or --delete"


def bootstrap(ctx: typer.Context, given: Optional[str]) -> str:
    return given or settings(ctx).resolved_server()


def parse_configs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise errors.UsageError('requirement failed: Invalid topic config: all configs to be '
                                    'added must be in the format "key=val".')
        out[key.strip()] = value.strip()
    return out


class TopicCommandError(Exception):
    """An execution error, printed in kafka-topics' words."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@app.command("topics")
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

    out = []
    if settings(ctx).resolved_write_out() == "json" and (list_ or describe):
        with Admin(bootstrap(ctx, bootstrap_server)) as admin:
            return topics_json(admin, topic, list_, exclude_internal, if_exists)
    try:
        with Admin(bootstrap(ctx, bootstrap_server)) as admin:
            if create:
                out = create_topic(admin, topic, partitions, replication_factor, configs, if_not_exists)
            elif list_:
                out = ["\n".join(n for n in admin.list_topics() if not (exclude_internal and n.startswith("__")))]
            elif describe:
                out = describe_topics(admin, topic, if_exists, exclude_internal, under_replicated,
                                      unavailable, with_overrides)
            elif delete:
                for name in matching(admin, topic, if_exists):
                    admin.delete_topic(name)
            elif alter:
                if partitions is None:
                    raise TopicCommandError("requirement failed: --partitions is required with --alter")
                for name in matching(admin, topic, if_exists):
                    admin.create_partitions(name, partitions)
    except (errors.BrokerError, TopicCommandError) as e:
        sys.stdout.write("".join(line + "\n" for line in out))
        sys.stdout.write(f"Error while executing topic command : {e}\n")
        raise typer.Exit(getattr(e, "exit_code", 1) or 1) from None
    sys.stdout.write("".join(line + "\n" for line in out))


def topics_json(admin, pattern, list_only: bool, exclude_internal: bool, if_exists: bool) -> None:
    """`-w json`: one object per topic (and its partitions with --describe)."""
    import json

    try:
        names = matching(admin, pattern, if_exists) if pattern else admin.list_topics()
    except TopicCommandError as e:
        raise errors.NoNodeError("", str(e)) from None
    names = [n for n in names if not (exclude_internal and n.startswith("__"))]
    if list_only:
        rows = [{"topic": n} for n in names]
    else:
        rows = [{"topic": t.name, "topic_id": t.topic_id, "configs": dict(t.configs), "partitions": [
                    {"partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
                     "replicas": list(p.replicas), "isr": list(p.isr)}
                    for p in sorted(t.partitions, key=lambda p: p.partition)]}
                for t in (admin.describe_topics(names) if names else [])]
    sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))


def create_topic(admin, name: str, partitions, replication_factor, configs, if_not_exists) -> list[str]:
    from dcli.wire.topics import COLLISION_WARNING, has_collision_chars

    lines = [COLLISION_WARNING] if has_collision_chars(name) else []
    try:
        admin.create_topic(name, partitions if partitions is not None else -1,
                           replication_factor if replication_factor is not None else -1, configs)
    except errors.BrokerError as e:
        if if_not_exists and getattr(e, "kafka_code", 0) == 36:     # TOPIC_ALREADY_EXISTS
            return lines
        sys.stdout.write("".join(line + "\n" for line in lines))
        raise
    return lines + [f"Created topic {name}."]


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


def describe_topics(admin, pattern, if_exists, exclude_internal, under_replicated, unavailable,
                    with_overrides) -> list[str]:
    names = matching(admin, pattern, if_exists) if pattern else admin.list_topics()
    if exclude_internal:
        names = [n for n in names if not n.startswith("__")]
    lines = []
    partition_filter = under_replicated or unavailable
    for t in admin.describe_topics(names) if names else []:
        if with_overrides and not t.configs:
            continue
        parts = sorted(t.partitions, key=lambda p: p.partition)
        if not partition_filter:
            rf = len(parts[0].replicas) if parts else 0
            configs = ",".join(f"{k}={v}" for k, v in sorted(t.configs.items()))
            lines.append(f"Topic: {t.name}\tTopicId: {t.topic_id}\tPartitionCount: {len(parts)}\t"
                         f"ReplicationFactor: {rf}\tConfigs: {configs}")
        if with_overrides:
            continue
        for p in parts:
            if under_replicated and not len(p.isr) < len(p.replicas):
                continue
            if unavailable and p.leader >= 0:
                continue
            leader = str(p.leader) if p.leader >= 0 else "none"
            lines.append(f"\tTopic: {t.name}\tPartition: {p.partition}\tLeader: {leader}\t"
                         f"Replicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isr))}")
    return lines


# ---- console scripts with the Kafka tools' names ----

def _script(command: str):
    def main(argv: list[str] | None = None) -> None:
        from dcli.cli.main import exit_now, run

        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        args = sys.argv[1:] if argv is None else argv
        exit_now(run(app, [command, *args], f"kafka-{command}"))
    return main


topics_main = _script("topics")


# ---- kafka-console-producer ----

DELIVERY = {   # the seed's delivery semantics, as producer settings
    "at-most-once": {"acks": 0, "retries": 0, "enable_idempotence": False},
    "at-least-once": {"acks": "all", "retries": 2147483647, "enable_idempotence": False},
    "exactly-once": {"acks": "all", "retries": 2147483647, "enable_idempotence": True},
}
READER_DEFAULTS = {"parse.key": "false", "key.separator": "\t", "parse.headers": "false",
                   "headers.delimiter": "\t", "headers.separator": ",", "headers.key.separator": ":",
                   "ignore.error": "false", "null.marker": None}


class LineReader:
    """Kafka's LineMessageReader: one record per line, with the key and headers split off as
    the reader properties say."""

    def __init__(self, props: dict):
        unknown = set(props) - set(READER_DEFAULTS)
        if unknown:
            raise errors.UsageError(f"Unknown reader property: {sorted(unknown)[0]}")
        p = {**READER_DEFAULTS, **props}
        self.parse_key = p["parse.key"].lower() == "true"
        self.parse_headers = p["parse.headers"].lower() == "true"
        self.ignore_error = p["ignore.error"].lower() == "true"
        self.key_sep, self.headers_delim = p["key.separator"], p["headers.delimiter"]
        self.headers_sep, self.header_key_sep = p["headers.separator"], p["headers.key.separator"]
        self.null_marker = p["null.marker"]

    def parse(self, line: str, number: int):
        """(key, value, headers) of one line, bytes or None."""
        headers = []
        rest = line
        if self.parse_headers:
            head, rest = self._split(rest, self.headers_delim, "headers delimiter", line, number)
            if head is not None:
                for item in head.split(self.headers_sep) if head else []:
                    k, sep, v = item.partition(self.header_key_sep)
                    headers.append((k, None if not sep or v == self.null_marker else v.encode()))
        key = None
        if self.parse_key:
            k, rest = self._split(rest, self.key_sep, "key separator", line, number)
            key = None if k is None or k == self.null_marker else k.encode()
        value = None if rest == self.null_marker else rest.encode()
        return key, value, headers

    def _split(self, text: str, sep: str, name: str, line: str, number: int):
        head, found, tail = text.partition(sep)
        if not found:
            if self.ignore_error:
                return None, text
            raise errors.UsageError(f"No {name} found on line number {number}: '{line}'")
        return head, tail


@app.command("console-producer")
def console_producer(ctx: typer.Context, bootstrap_server: Optional[str] = BootstrapOption,
                     topic: str = typer.Option(..., "--topic", metavar="topic"),
                     acks: str = typer.Option("-1", "--request-required-acks", metavar="acks",
                                              help="-1/all, 1 or 0 (default -1)."),
                     sync: bool = typer.Option(False, "--sync", help="Wait for each record's acknowledgement."),
                     batch_size: int = typer.Option(16384, "--batch-size", metavar="size"),
                     linger_ms: int = typer.Option(1000, "--timeout", metavar="ms", help="linger.ms (default 1000)."),
                     retries: int = typer.Option(3, "--message-send-max-retries", metavar="n"),
                     retry_backoff_ms: int = typer.Option(100, "--retry-backoff-ms", metavar="ms"),
                     request_timeout_ms: int = typer.Option(1500, "--request-timeout-ms", metavar="ms"),
                     partitioner: str = typer.Option("round-robin", "--partitioner", metavar="round-robin|sticky",
                                                     help="For records without a key."),
                     delivery: Optional[str] = typer.Option(None, "--delivery",
                                                            metavar="at-most-once|at-least-once|exactly-once",
                                                            help="Sets acks, retries and idempotence together."),
                     prop: Optional[list[str]] = typer.Option(None, "--property", metavar="prop=value",
                                                              help="Reader property: parse.key, key.separator, ..."),
                     producer_prop: Optional[list[str]] = typer.Option(None, "--producer-property",
                                                                       metavar="prop=value")) -> None:
    """Read lines from stdin and send each as a record: kafka-console-producer."""
    from dcli.client.producer import Producer

    reader = LineReader(dict(item.partition("=")[::2] for item in (prop or [])))
    settings_ = {"acks": acks if acks != "-1" else "all", "retries": retries,
                 "enable_idempotence": acks in ("-1", "all") and retries > 0}
    if delivery is not None:
        if delivery not in DELIVERY:
            raise errors.UsageError(f"--delivery must be one of {', '.join(DELIVERY)}")
        settings_ = dict(DELIVERY[delivery])
    extra = parse_producer_properties(producer_prop or [])
    settings_.update(extra)
    producer = Producer(bootstrap(ctx, bootstrap_server), linger_ms=linger_ms, batch_size=batch_size,
                        retry_backoff_ms=retry_backoff_ms, request_timeout_ms=request_timeout_ms,
                        partitioner=partitioner, client_id="console-producer", **settings_)
    failures = []
    acked: list = []
    json_out = settings(ctx).resolved_write_out() == "json"
    interactive = sys.stdin.isatty()
    try:
        number = 0
        while True:
            if interactive:
                sys.stdout.write(">")
                sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            number += 1
            key, value, headers = reader.parse(line.rstrip("\n"), number)
            fut = producer.send(topic, value, key=key, headers=headers)
            if json_out:
                acked.append(fut)
            fut.add_done_callback(lambda f, k=key, v=value: f.exception() and failures.append(
                error_line(topic, k, v, f.exception())))
            if sync:
                try:
                    fut.result()
                except errors.DcliError:
                    pass
        producer.flush()
        for fut in acked:
            if fut.exception() is None:
                m = fut.result()
                sys.stdout.write(f'{{"topic": "{m.topic}", "partition": {m.partition}, "offset": {m.offset}}}\n')
    finally:
        producer.close()
        for line in failures:
            sys.stderr.write(line + "\n")
    if failures:
        raise typer.Exit(1)


def parse_producer_properties(items: list[str]) -> dict:
    names = {"acks": "acks", "retries": "retries", "enable.idempotence": "enable_idempotence",
             "linger.ms": "linger_ms", "batch.size": "batch_size"}
    out: dict = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or k not in names:
            raise errors.UsageError(f"Unsupported producer property: {item}")
        if k == "enable.idempotence":
            out[names[k]] = v.lower() == "true"
        elif k == "acks":
            out[names[k]] = v
        else:
            try:
                out[names[k]] = int(v)
            except ValueError:
                raise errors.UsageError(f"Invalid value {v} for configuration {k}: Not a number of type INT") from None
    return out


def error_line(topic: str, key, value, err) -> str:
    """Kafka's ErrorLoggingCallback line for a record that could not be sent."""
    def show(b):
        return "null" if b is None else f"{len(b)} bytes"
    return f"Error when sending message to topic {topic} with key: {show(key)}, value: {show(value)} with error: {err}"


console_producer_main = _script("console-producer")


# ---- kafka-console-consumer ----

FORMATTER_DEFAULTS = {"print.timestamp": "false", "print.key": "false", "print.value": "true",
                      "print.partition": "false", "print.offset": "false", "print.headers": "false",
                      "print.epoch": "false", "key.separator": "\t", "line.separator": "\n",
                      "headers.separator": ",", "null.literal": "null"}


class MessageFormatter:
    """Kafka's DefaultMessageFormatter: the enabled fields in Kafka's order."""

    def __init__(self, props: dict):
        unknown = set(props) - set(FORMATTER_DEFAULTS)
        if unknown:
            raise errors.UsageError(f"Unknown formatter property: {sorted(unknown)[0]}")
        p = {**FORMATTER_DEFAULTS, **props}
        self.flags = {k: p[k].lower() == "true" for k in FORMATTER_DEFAULTS if k.startswith("print.")}
        self.sep, self.line_sep = p["key.separator"], p["line.separator"]
        self.headers_sep, self.null = p["headers.separator"], p["null.literal"]

    def _text(self, b: bytes | None) -> str:
        return self.null if b is None else b.decode("utf-8", errors="replace")

    def format(self, r) -> str:
        fields = []
        f = self.flags
        if f["print.timestamp"]:
            kind = "LogAppendTime" if r.timestamp_type == 1 else "CreateTime"
            fields.append(f"{kind}:{r.timestamp}" if r.timestamp >= 0 else "NO_TIMESTAMP")
        if f["print.partition"]:
            fields.append(f"Partition:{r.partition}")
        if f["print.offset"]:
            fields.append(f"Offset:{r.offset}")
        if f["print.epoch"]:
            fields.append(f"Epoch:{r.leader_epoch}" if r.leader_epoch >= 0 else "Epoch:NOT_PRESENT")
        if f["print.headers"]:
            fields.append(self.headers_sep.join(f"{k}:{self._text(v)}" for k, v in r.headers) or "NO_HEADERS")
        if f["print.key"]:
            fields.append(self._text(r.key))
        if f["print.value"]:
            return self.sep.join(fields + [self._text(r.value)]) + self.line_sep
        return self.sep.join(fields)         # Kafka's quirk: no line separator without the value


@app.command("console-consumer")
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
    start = None
    if offset is not None:
        if offset in ("earliest", "latest"):
            start = offset
        elif offset.isdigit():
            start = int(offset)
        else:
            raise errors.UsageError(f"The provided offset value '{offset}' is incorrect. Valid values are "
                                    "'earliest', 'latest', or a non-negative long.")
    formatter = MessageFormatter(dict(item.partition("=")[::2] for item in (prop or [])))
    extra = dict(item.partition("=")[::2] for item in (consumer_prop or []))
    reset = extra.pop("auto.offset.reset", None)
    if from_beginning and reset not in (None, "earliest"):
        raise errors.UsageError(f"Can't simultaneously specify --from-beginning and 'auto.offset.reset={reset}', "
                                "please remove one option")
    if extra:
        raise errors.UsageError(f"Unsupported consumer property: {sorted(extra)[0]}")
    from dcli.client.consumer import Consumer, random_group

    consumer = Consumer(bootstrap(ctx, bootstrap_server), group_id=group or (None if partition is not None else random_group()),
                        client_id="console-consumer", enable_auto_commit=group is not None,
                        auto_offset_reset="earliest" if from_beginning else (reset or "latest"))
    json_out = settings(ctx).resolved_write_out() == "json"
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
        idle_deadline = None if timeout_ms is None else time_now() + timeout_ms / 1000
        while max_messages is None or count < max_messages:
            wait = 1000 if idle_deadline is None else max(0, int((idle_deadline - time_now()) * 1000))
            records = consumer.poll(wait, max_records=None if max_messages is None else max_messages - count)
            if not records:
                if idle_deadline is not None and time_now() >= idle_deadline:
                    sys.stderr.write("ERROR Error processing message, terminating consumer process: "
                                     "org.apache.kafka.common.errors.TimeoutException\n")
                    break
                continue
            for r in records:
                sys.stdout.write(record_json(r) + "\n" if json_out else formatter.format(r))
                count += 1
            sys.stdout.flush()
            if timeout_ms is not None:
                idle_deadline = time_now() + timeout_ms / 1000
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        sys.stderr.write(f"Processed a total of {count} messages\n")


def time_now() -> float:
    import time
    return time.monotonic()


def record_json(r) -> str:
    import base64
    import json

    def text(b):
        if b is None:
            return None
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(b).decode()}
    return json.dumps({"topic": r.topic, "partition": r.partition, "offset": r.offset,
                       "timestamp": r.timestamp, "key": text(r.key), "value": text(r.value),
                       "headers": {k: text(v) for k, v in r.headers}}, ensure_ascii=False)


console_consumer_main = _script("console-consumer")


# ---- kafka-consumer-groups ----

GROUP_ACTIONS = "--list, --describe, --delete, --reset-offsets, --delete-offsets"
RESET_WARNING = ("WARN: No action will be performed as the --execute option is missing.In a future major "
                 "release, the default behavior of this command will be to prompt the user before executing "
                 "the reset rather than doing a dry run. You should add the --dry-run option explicitly if you "
                 "are scripting this command and want to keep the current default behavior without prompting.")


@app.command("consumer-groups")
def consumer_groups(ctx: typer.Context, bootstrap_server: Optional[str] = BootstrapOption,
                    list_: bool = typer.Option(False, "--list", help="List all consumer groups."),
                    describe: bool = typer.Option(False, "--describe", help="Describe groups: offsets and lag."),
                    delete: bool = typer.Option(False, "--delete", help="Delete inactive groups."),
                    reset_offsets: bool = typer.Option(False, "--reset-offsets", help="Reset a group's offsets."),
                    group: Optional[list[str]] = typer.Option(None, "--group", metavar="consumer group"),
                    all_groups: bool = typer.Option(False, "--all-groups"),
                    topic: Optional[str] = typer.Option(None, "--topic", metavar="topic[:p,p]"),
                    all_topics: bool = typer.Option(False, "--all-topics"),
                    members: bool = typer.Option(False, "--members"),
                    state: bool = typer.Option(False, "--state"),
                    offsets_view: bool = typer.Option(False, "--offsets"),
                    verbose: bool = typer.Option(False, "--verbose"),
                    to_earliest: bool = typer.Option(False, "--to-earliest"),
                    to_latest: bool = typer.Option(False, "--to-latest"),
                    to_current: bool = typer.Option(False, "--to-current"),
                    to_offset: Optional[int] = typer.Option(None, "--to-offset", metavar="offset"),
                    shift_by: Optional[int] = typer.Option(None, "--shift-by", metavar="n"),
                    dry_run: bool = typer.Option(False, "--dry-run"),
                    execute: bool = typer.Option(False, "--execute")) -> None:
    """List, describe, delete consumer groups and reset their offsets: kafka-consumer-groups."""
    if sum((list_, describe, delete, reset_offsets)) != 1:
        raise errors.UsageError(f"Command must include exactly one action: {GROUP_ACTIONS}")
    from dcli.client.admin import Admin

    json_out = settings(ctx).resolved_write_out() == "json"
    with Admin(bootstrap(ctx, bootstrap_server)) as admin:
        if list_ and json_out:
            import json
            sys.stdout.write("".join(json.dumps({"group": g.group_id, "state": g.state,
                                                 "protocol_type": g.protocol_type}) + "\n"
                                     for g in admin.list_groups()))
            return
        if list_:
            listed = admin.list_groups()
            if state:
                width = max([15] + [len(g.group_id) for g in listed]) + 10
                lines = [f"{'GROUP':<{width}}{'STATE':<20}"] + [f"{g.group_id:<{width}}{g.state:<20}" for g in listed]
                sys.stdout.write("".join(line.rstrip() + "\n" for line in lines))
            else:
                sys.stdout.write("".join(g.group_id + "\n" for g in listed))
            return
        groups = [g.group_id for g in admin.list_groups()] if all_groups else list(group or [])
        if not groups:
            raise errors.UsageError("Option [describe|delete|reset-offsets] takes one of these options: --all-groups, --group")
        if describe:
            view = "members" if members else "state" if state else "offsets"
            raise typer.Exit(describe_groups(admin, groups, view, verbose, json_out))
        if delete:
            raise typer.Exit(delete_groups(admin, groups))
        scenarios = sum((to_earliest, to_latest, to_current, to_offset is not None, shift_by is not None))
        if scenarios != 1:
            raise errors.UsageError("Option [reset-offsets] takes exactly one of these options: --to-datetime, "
                                    "--by-duration, --to-earliest, --to-latest, --shift-by, --from-file, "
                                    "--to-current, --to-offset")
        if not topic and not all_topics:
            raise errors.UsageError("Option [reset-offsets] takes one of these options: --all-topics, --topic")
        if dry_run and execute:
            raise errors.UsageError("Option [reset-offsets] takes only one of these options: --dry-run, --execute")
        if not execute and not dry_run:
            sys.stderr.write(RESET_WARNING + "\n")
        target = ("earliest" if to_earliest else "latest" if to_latest else "current" if to_current
                  else ("offset", to_offset) if to_offset is not None else ("shift", shift_by))
        raise typer.Exit(reset_group_offsets(admin, groups, topic, all_topics, target, execute))


def _row(fmt_widths: list[int], cells: list[str]) -> str:
    return " ".join(f"{c:<{w}}" for c, w in zip(cells[:-1], fmt_widths)) + " " + cells[-1]


def describe_groups(admin, groups: list[str], view: str, verbose: bool, json_out: bool = False) -> int:
    import json

    from dcli.wire.consumer_protocol import decode_assignment

    code = 0
    for d in admin.describe_groups(groups):
        committed = admin.committed_offsets(d.group_id)
        if d.state == "Dead" and not committed:
            sys.stdout.write(f"\nError: Consumer group '{d.group_id}' does not exist.\n")
            code = 3
            continue
        if d.state == "Empty":
            sys.stderr.write(f"\nConsumer group '{d.group_id}' has no active members.\n")
        elif d.state in ("PreparingRebalance", "CompletingRebalance"):
            sys.stderr.write(f"\nWarning: Consumer group '{d.group_id}' is rebalancing.\n")
        owned = []      # (member, [(topic, partition)])
        for m in d.members:
            parts = decode_assignment(m.assignment).partitions if m.assignment else {}
            owned.append((m, sorted((t, p) for t, ps in parts.items() for p in ps)))
        if view == "state":
            node_id, address = admin.find_coordinator(d.group_id)
            coordinator = f"{address}  ({node_id})"
            width = max(25, len(d.group_id))
            sys.stdout.write(f"\n{'GROUP':<{width}} {'COORDINATOR (ID)':<25} {'ASSIGNMENT-STRATEGY':<20} "
                             f"{'STATE':<15} #MEMBERS\n")
            sys.stdout.write(f"{d.group_id:<{width}} {coordinator:<25} {d.protocol:<20} {d.state:<15} "
                             f"{len(d.members)}\n\n")
            continue
        if view == "members":
            c = max([15] + [len(m.member_id) for m in d.members])
            h = max([15] + [len(m.client_host) for m in d.members])
            cl = max([15] + [len(m.client_id) for m in d.members])
            g = max(15, len(d.group_id))
            header = f"\n{'GROUP':<{g}} {'CONSUMER-ID':<{c}} {'HOST':<{h}} {'CLIENT-ID':<{cl}} {'#PARTITIONS':<15} "
            sys.stdout.write(header + ("ASSIGNMENT" if verbose else "") + "\n")
            for m, parts in owned:
                line = f"{d.group_id:<{g}} {m.member_id:<{c}} {m.client_host:<{h}} {m.client_id:<{cl}} {len(parts):<15} "
                if verbose:
                    by_topic: dict[str, list[int]] = {}
                    for t, p in parts:
                        by_topic.setdefault(t, []).append(p)
                    line += ", ".join(f"{t}({','.join(map(str, ps))})" for t, ps in by_topic.items()) or "-"
                sys.stdout.write(line + "\n")
            sys.stdout.write("\n")
            continue
        rows = []     # (topic, partition, member or None)
        owned.sort(key=lambda mp: -len(mp[1]))
        seen = set()
        for m, parts in owned:
            for tp in sorted(parts, key=lambda tp: tp[1]):
                rows.append((tp, m))
                seen.add(tp)
        for tp in sorted(committed):
            if tp not in seen:
                rows.append((tp, None))
        ends = admin.list_offsets([tp for tp, _ in rows], -1) if rows else {}
        if json_out:        # one object per partition row
            for tp, m in rows:
                cur, end = committed.get(tp), ends.get(tp)
                sys.stdout.write(json.dumps({
                    "group": d.group_id, "state": d.state, "topic": tp[0], "partition": tp[1],
                    "current_offset": cur, "log_end_offset": end,
                    "lag": end - cur if cur is not None and end is not None else None,
                    "consumer_id": m.member_id if m else None, "host": m.client_host if m else None,
                    "client_id": m.client_id if m else None}) + "\n")
            continue
        gw = max(15, len(d.group_id))
        tw = max([15] + [len(tp[0]) for tp, _ in rows])
        cw = max([15] + [len(m.member_id) for _, m in rows if m])
        hw = max([15] + [len(m.client_host) for _, m in rows if m])
        widths = [gw, tw, 10, 15, 15, 15, cw, hw]
        out = ["\n" + _row(widths, ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                    "CONSUMER-ID", "HOST", "CLIENT-ID"])]
        for tp, m in rows:
            cur = committed.get(tp)
            end = ends.get(tp)
            lag = str(end - cur) if cur is not None and end is not None else "-"
            out.append("\n" + _row(widths, [d.group_id, tp[0], str(tp[1]), "-" if cur is None else str(cur),
                                            "-" if end is None else str(end), lag,
                                            m.member_id if m else "-", m.client_host if m else "-",
                                            m.client_id if m else "-"]))
        sys.stdout.write("".join(out) + "\n\n")
    return code


def delete_groups(admin, groups: list[str]) -> int:
    results = admin.delete_groups(groups)
    failed = [r for r in results if r.error_code]
    if not failed:
        names = ", ".join(f"'{g}'" for g in groups)
        sys.stdout.write(f"Deletion of requested consumer groups ({names}) was successful.\n")
        return 0
    kinds = {68: "GroupNotEmptyException", 69: "GroupIdNotFoundException"}
    lines = ["", "Error: Deletion of some consumer groups failed:"]
    for r in failed:
        kind = kinds.get(r.error_code, "KafkaException")
        lines.append(f"* Group '{r.topic}' could not be deleted due to: java.util.concurrent.ExecutionException: "
                     f"org.apache.kafka.common.errors.{kind}: {r.error_message}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1


def reset_group_offsets(admin, groups: list[str], topic: Optional[str], all_topics: bool, target, execute: bool) -> int:
    code = 0
    for d in admin.describe_groups(groups):
        if d.state not in ("Empty", "Dead"):
            sys.stdout.write(f"\nError: Assignments can only be reset if the group '{d.group_id}' is inactive, "
                             f"but the current state is {d.state}.\n")
            code = 4
            continue
        committed = admin.committed_offsets(d.group_id)
        if all_topics:
            parts = sorted(committed)
        else:
            name, _, plist = topic.partition(":")
            if plist:
                parts = [(name, int(p)) for p in plist.split(",")]
            else:
                [t] = admin.describe_topics([name])
                parts = [(name, p.partition) for p in sorted(t.partitions, key=lambda p: p.partition)]
        earliest = admin.list_offsets(parts, -2) if parts else {}
        latest = admin.list_offsets(parts, -1) if parts else {}
        new = {}
        for tp in parts:
            if target == "earliest":
                offset = earliest[tp]
            elif target == "latest":
                offset = latest[tp]
            elif target == "current":
                offset = committed.get(tp, latest[tp])
            elif target[0] == "offset":
                offset = target[1]
            else:
                offset = committed.get(tp, latest[tp]) + target[1]
            new[tp] = min(max(offset, earliest[tp]), latest[tp])      # clamped, as Kafka does
        if execute:
            admin.commit_offsets(d.group_id, new)
        out = ["\n" + f"{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}".rstrip()]
        out += ["\n" + f"{d.group_id:<30} {t:<30} {p:<10} {o:<15}".rstrip() for (t, p), o in new.items()]
        sys.stdout.write("".join(out) + "\n\n")
    return code


consumer_groups_main = _script("consumer-groups")
from dcli.cli.kafka_perf import register as _register_perf  # noqa: E402
_register_perf(app)


from dcli.cli import kafka_election as _kafka_election  # noqa: E402,F401 - registers `leader-election`
