"""`dcli kafka console-producer` and `kafka-console-producer`: one record per line of stdin, with
the key and headers split off as Kafka's LineMessageReader does (`--property parse.key=true`).

    $ printf 'k1\\tv1\\n' | kafka-console-producer --topic chat --property parse.key=true

A record that cannot be sent is reported on stderr in Kafka's ErrorLoggingCallback words and
the tool exits 1 at the end; with `-w json` each acknowledgement is printed as it arrives.
"""
from __future__ import annotations

import sys
from typing import Optional

import typer

from dcli.cli.kafka.options import BootstrapOption, bootstrap, json_out, printer
from dcli.wire import errors

DELIVERY = {   # the seed's delivery semantics, as producer settings
    "at-most-once": {"acks": 0, "retries": 0, "enable_idempotence": False},
    "at-least-once": {"acks": "all", "retries": 2147483647, "enable_idempotence": False},
    "exactly-once": {"acks": "all", "retries": 2147483647, "enable_idempotence": True},
}
READER_DEFAULTS = {"parse.key": "false", "key.separator": "\t", "parse.headers": "false",
                   "headers.delimiter": "\t", "headers.separator": ",", "headers.key.separator": ":",
                   "ignore.error": "false", "null.marker": None}
# --producer-property names -> Producer keyword arguments
PRODUCER_PROPERTIES = {"acks": "acks", "retries": "retries", "enable.idempotence": "enable_idempotence",
                       "linger.ms": "linger_ms", "batch.size": "batch_size"}


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


def parse_producer_properties(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or k not in PRODUCER_PROPERTIES:
            raise errors.UsageError(f"Unsupported producer property: {item}")
        if k == "enable.idempotence":
            out[PRODUCER_PROPERTIES[k]] = v.lower() == "true"
        elif k == "acks":
            out[PRODUCER_PROPERTIES[k]] = v
        else:
            try:
                out[PRODUCER_PROPERTIES[k]] = int(v)
            except ValueError:
                raise errors.UsageError(f"Invalid value {v} for configuration {k}: Not a number of type INT") from None
    return out


def producer_settings(acks: str, retries: int, delivery: Optional[str], producer_props: list[str]) -> dict:
    """The Producer's acks, retries and idempotence: from the options, or --delivery's row, and
    --producer-property on top."""
    chosen = {"acks": acks if acks != "-1" else "all", "retries": retries,
              "enable_idempotence": acks in ("-1", "all") and retries > 0}
    if delivery is not None:
        if delivery not in DELIVERY:
            raise errors.UsageError(f"--delivery must be one of {', '.join(DELIVERY)}")
        chosen = dict(DELIVERY[delivery])
    chosen.update(parse_producer_properties(producer_props))
    return chosen


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
    chosen = producer_settings(acks, retries, delivery, producer_prop or [])
    p = printer(ctx)
    producer = Producer(bootstrap(ctx, bootstrap_server), linger_ms=linger_ms, batch_size=batch_size,
                        retry_backoff_ms=retry_backoff_ms, request_timeout_ms=request_timeout_ms,
                        partitioner=partitioner, client_id="console-producer", **chosen)
    failures = []       # (key, value, error) of each record not sent
    acked: list = []
    keep_acks = json_out(ctx)
    interactive = sys.stdin.isatty()
    try:
        number = 0
        while True:
            if interactive:
                p.producer_prompt()
            line = sys.stdin.readline()
            if not line:
                break
            number += 1
            key, value, headers = reader.parse(line.rstrip("\n"), number)
            fut = producer.send(topic, value, key=key, headers=headers)
            if keep_acks:
                acked.append(fut)
            fut.add_done_callback(lambda f, k=key, v=value: f.exception() and failures.append(
                (k, v, f.exception())))
            if sync:
                try:
                    fut.result()
                except errors.DcliError:
                    pass
        producer.flush()
        for fut in acked:
            if fut.exception() is None:
                p.acknowledged(fut.result())
    finally:
        producer.close()
        for key, value, error in failures:
            p.send_failed(topic, key, value, error)
    if failures:
        raise typer.Exit(1)
