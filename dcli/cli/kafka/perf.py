"""`dcli kafka perf-test producer|consumer`: Kafka's kafka-producer-perf-test and
kafka-consumer-perf-test (tools' ProducerPerformance and ConsumerPerformance), with their options
and their progress and final lines, through dcli's Producer and Consumer.

    dcli kafka perf-test producer --topic chat --num-records 1000000 --record-size 100 \\
        --throughput -1 --producer-props bootstrap.servers=127.0.0.1:7181 acks=1
    dcli kafka perf-test consumer --bootstrap-server 127.0.0.1:7181 --topic chat --messages 1000000

`producer_perf` and `consumer_perf` do the work from parsed options and report through
dcli.output.perf; `app` is the `perf-test` group the `kafka` app joins.
"""
from __future__ import annotations

import random
import sys
import time
from typing import Optional, TextIO

import typer

from dcli.cli.kafka import options
from dcli.output.perf import PerfPrinter
from dcli.wire import errors

REPORTING_INTERVAL_MS = 5000
MAX_LATENCY_SAMPLES = 500_000          # ProducerPerformance's sampling bound
# --producer-props names -> Producer keyword arguments (and how to read the value)
PRODUCER_PROPS = {"acks": ("acks", str), "retries": ("retries", int), "linger.ms": ("linger_ms", int),
                  "batch.size": ("batch_size", int), "enable.idempotence": ("enable_idempotence", "bool"),
                  "max.in.flight.requests.per.connection": ("max_in_flight", int),
                  "request.timeout.ms": ("request_timeout_ms", int), "retry.backoff.ms": ("retry_backoff_ms", int),
                  "delivery.timeout.ms": ("delivery_timeout_ms", int), "client.id": ("client_id", str)}
IGNORED_PROPS = {"key.serializer", "value.serializer", "buffer.memory", "compression.type",
                 "max.request.size", "send.buffer.bytes", "receive.buffer.bytes"}


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


# ---- producer ----

class ProducerStats:
    """ProducerPerformance's Stats: totals, a 5 s window reported as it closes, and sampled
    latencies (ms, from just before send() to the acknowledgement) for the percentiles."""

    def __init__(self, num_records: int, report: PerfPrinter):
        self.report = report
        self.start = self.window_start = now_ms()
        self.sampling = max(1, num_records // min(num_records, MAX_LATENCY_SAMPLES))
        self.latencies: list[int] = []
        self.iteration = self.count = self.bytes = self.total_latency = self.max_latency = 0
        self.window_count = self.window_bytes = self.window_total = self.window_max = 0

    def record(self, latency: int, nbytes: int, now: int) -> None:
        self.count += 1
        self.bytes += nbytes
        self.total_latency += latency
        self.max_latency = max(self.max_latency, latency)
        self.window_count += 1
        self.window_bytes += nbytes
        self.window_total += latency
        self.window_max = max(self.window_max, latency)
        if self.iteration % self.sampling == 0:
            self.latencies.append(latency)
        if now - self.window_start >= REPORTING_INTERVAL_MS:
            self.report.producer_window(self.window_count, self.window_bytes, self.window_total, self.window_max,
                                        now - self.window_start)
            self.window_start = now
            self.window_count = self.window_bytes = self.window_total = self.window_max = 0
        self.iteration += 1

    def report_total(self) -> None:
        self.report.producer_total(self.count, self.bytes, self.total_latency, self.max_latency,
                                   now_ms() - self.start, self.latencies)


def read_properties(items: list[str], config_file: Optional[str]) -> dict[str, str]:
    """--producer.config's file, then --producer-props k=v on top (Kafka's precedence)."""
    props: dict[str, str] = {}
    if config_file:
        try:
            lines = open(config_file, encoding="utf-8").read().splitlines()
        except OSError as e:
            raise errors.UsageError(f"Cannot read {config_file}: {e.strerror}") from None
        for line in lines:
            line = line.strip()
            if line and not line.startswith(("#", "!")):
                k, _, v = line.replace(":", "=", 1).partition("=") if "=" not in line else line.partition("=")
                props[k.strip()] = v.strip()
    for item in items:
        pieces = item.split("=")
        if len(pieces) != 2:
            raise errors.UsageError(f"Invalid property: {item}")
        props[pieces[0]] = pieces[1]
    return props


def producer_settings(props: dict[str, str]) -> tuple[Optional[str], dict]:
    """(bootstrap.servers, Producer keyword arguments) from producer properties."""
    kwargs: dict = {"client_id": "perf-producer-client"}
    for name, value in props.items():
        if name == "bootstrap.servers" or name in IGNORED_PROPS:
            continue
        if name not in PRODUCER_PROPS:
            raise errors.UsageError(f"Unsupported producer property: {name}")
        arg, kind = PRODUCER_PROPS[name]
        if kind == "bool":
            kwargs[arg] = value.lower() == "true"
        elif kind is int:
            try:
                kwargs[arg] = int(value)
            except ValueError:
                raise errors.UsageError(f"Invalid value {value} for configuration {name}: "
                                        "Not a number of type INT") from None
        else:
            kwargs[arg] = value
    return props.get("bootstrap.servers"), kwargs


def payloads(record_size: Optional[int], payload_file: Optional[str], delimiter: str,
             monotonic: bool, report: PerfPrinter) -> Optional[list[bytes]]:
    """The payloads to pick from: None for --payload-monotonic (made per record)."""
    if sum((record_size is not None, payload_file is not None, monotonic)) != 1:
        raise errors.UsageError("Exactly one of --record-size, --payload-file or --payload-monotonic is required.")
    if record_size is not None:
        if record_size <= 0:
            raise errors.UsageError("--record-size should be greater than zero")
        # Kafka draws fresh letters for every record; one random payload is sent here, since
        # drawing 100 letters in Python would cost more than sending the record.
        return [bytes(random.Random(0).choices(range(65, 91), k=record_size))]
    if monotonic:
        return None
    try:
        text = open(payload_file, encoding="utf-8").read()
    except OSError:
        text = ""
    report.reading_payloads(payload_file)
    found = [p.encode() for p in text.split(delimiter.replace("\\n", "\n")) if p]
    if not found:
        raise errors.UsageError("File does not exist or empty file provided.")
    report.payloads_read(len(found))
    return found


def producer_perf(bootstrap: str, topic: str, num_records: int, throughput: float, settings: dict,
                  record_size: Optional[int] = None, payload_file: Optional[str] = None,
                  payload_delimiter: str = "\\n", payload_monotonic: bool = False,
                  print_metrics: bool = False, out: TextIO = sys.stdout) -> int:
    """Send `num_records` records as fast as allowed (`throughput` records/s, -1: no limit),
    printing a window line every 5 s and the total line at the end. Returns the exit status."""
    from dcli.client.producer import Producer

    if num_records <= 0:
        raise errors.UsageError("--num-records should be greater than zero")
    report = PerfPrinter(out)
    choices = payloads(record_size, payload_file, payload_delimiter, payload_monotonic, report)
    producer = Producer(bootstrap, **settings)
    failures: list[BaseException] = []
    stats = ProducerStats(num_records, report)
    pick = random.Random(0).randrange
    try:
        producer.partitions_for(topic)
        start = time.monotonic()
        send = producer.send
        for i in range(num_records):
            if choices is None:
                payload = str(i).encode()
            else:
                payload = choices[0] if len(choices) == 1 else choices[pick(len(choices))]
            sent = now_ms()

            def done(f, sent=sent, n=len(payload)) -> None:
                err = f.exception()
                if err is None:
                    t = now_ms()
                    stats.record(t - sent, n, t)
                else:
                    failures.append(err)
            send(topic, payload).add_done_callback(done)
            if throughput > 0:
                ahead = (i + 1) / throughput - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)         # ThroughputThrottler: hold to the target rate
        producer.flush()
    finally:
        producer.close()
    stats.report_total()
    if print_metrics:
        elapsed = max(1e-9, (now_ms() - stats.start) / 1000)
        client = settings.get("client_id", "perf-producer-client")
        metrics = {"record-send-total": stats.count, "record-send-rate": stats.count / elapsed,
                   "record-error-total": len(failures), "record-size-avg": stats.bytes / max(1, stats.count),
                   "request-latency-avg": stats.total_latency / max(1, stats.count),
                   "request-latency-max": stats.max_latency}
        report.metrics({f"producer-metrics:{k}:{{client-id={client}}}": float(v) for k, v in metrics.items()})
    report.send_errors(topic, failures)
    return 1 if failures else 0


# ---- consumer ----

def consumer_perf(bootstrap: str, topic: str, messages: int, group: Optional[str] = None,
                  timeout_ms: int = 10_000, show_detailed_stats: bool = False,
                  reporting_interval_ms: int = REPORTING_INTERVAL_MS, hide_header: bool = False,
                  from_latest: bool = False, fetch_size: int = 1 << 20,
                  date_format: str = "yyyy-MM-dd HH:mm:ss:SSS", print_metrics: bool = False,
                  out: TextIO = sys.stdout) -> int:
    """Read `messages` records of `topic` in a group, then print ConsumerPerformance's line
    (or, with show_detailed_stats, a line per reporting interval). Returns the exit status."""
    from dcli.client.consumer import Consumer

    if reporting_interval_ms <= 0:
        raise errors.UsageError("Reporting interval must be greater than 0.")
    report = PerfPrinter(out)
    if not hide_header:
        report.consumer_header(show_detailed_stats)
    consumer = Consumer(bootstrap, group_id=group or f"perf-consumer-{random.randrange(100_000)}",
                        client_id="perf-consumer-client", max_partition_fetch_bytes=fetch_size,
                        auto_offset_reset="latest" if from_latest else "earliest",
                        max_poll_records=max(500, min(messages, 100_000)))
    read = nbytes = last_read = last_bytes = 0
    join_ms = join_round_ms = 0
    try:
        start_ms = time.time() * 1000
        # The consumer joins its group inside poll(); the join counts as rebalance time until
        # the first poll that returns with partitions assigned.
        consumer.subscribe([topic])
        joining = True
        current = last_report = last_consumed = time.time() * 1000
        while read < messages and current - last_consumed <= timeout_ms:
            records = consumer.poll(timeout_ms=100, max_records=messages - read)
            current = time.time() * 1000
            if joining and consumer.assignment():
                joining = False
                join_ms = join_round_ms = int(current - start_ms)
            if not records:
                continue
            last_consumed = current
            read += len(records)
            nbytes += sum(len(r.value) for r in records if r.value is not None)
            nbytes += sum(len(r.key) for r in records if r.key is not None)
            if current - last_report >= reporting_interval_ms:
                if show_detailed_stats:
                    report.consumer_progress(nbytes, last_bytes, read, last_read, last_report, current,
                                             date_format, join_round_ms)
                join_round_ms = 0
                last_report, last_read, last_bytes = current, read, nbytes
        if read < messages:
            report.consumer_timed_out(timeout_ms)
        end_ms = time.time() * 1000
    finally:
        consumer.close()
    fetch_ms = int(end_ms - start_ms) - join_ms
    if not show_detailed_stats:
        report.consumer_total(start_ms, end_ms, nbytes, read, join_ms, fetch_ms, date_format)
    if print_metrics:
        report.metrics({
            "consumer-fetch-manager-metrics:records-consumed-total:{client-id=perf-consumer-client}": float(read),
            "consumer-fetch-manager-metrics:bytes-consumed-total:{client-id=perf-consumer-client}": float(nbytes)})
    return 0


# ---- the commands ----

app = typer.Typer(name="perf-test", help="Throughput tests: kafka-producer-perf-test, kafka-consumer-perf-test.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command("producer", context_settings={"allow_extra_args": True})
def producer(ctx: typer.Context,
             topic: str = typer.Option(..., "--topic", metavar="TOPIC", help="Produce messages to this topic."),
             num_records: int = typer.Option(..., "--num-records", metavar="NUM-RECORDS"),
             record_size: Optional[int] = typer.Option(None, "--record-size", metavar="RECORD-SIZE",
                                                       help="Message size in bytes."),
             payload_file: Optional[str] = typer.Option(None, "--payload-file", metavar="PAYLOAD-FILE"),
             payload_delimiter: str = typer.Option("\\n", "--payload-delimiter", metavar="PAYLOAD-DELIMITER"),
             payload_monotonic: bool = typer.Option(False, "--payload-monotonic"),
             throughput: float = typer.Option(..., "--throughput", metavar="THROUGHPUT",
                                              help="Records/s to hold to; -1: no limit."),
             producer_props: Optional[list[str]] = typer.Option(
                 None, "--producer-props", metavar="PROP-NAME=PROP-VALUE ...",
                 help="Producer properties (bootstrap.servers, acks, linger.ms, batch.size, ...)."),
             producer_config: Optional[str] = typer.Option(None, "--producer.config", metavar="CONFIG-FILE"),
             print_metrics: bool = typer.Option(False, "--print-metrics")) -> None:
    """Send records as fast as allowed and report throughput and latency: kafka-producer-perf-test.

    dcli kafka perf-test producer --topic chat --num-records 100000 --record-size 100
    --throughput -1 --producer-props bootstrap.servers=127.0.0.1:7181 acks=1
    """
    items = list(producer_props or [])
    if ctx.args and not producer_props:
        raise errors.UsageError(f"Unexpected argument: {ctx.args[0]}")
    items += ctx.args                # --producer-props takes every k=v that follows it
    if not items and not producer_config:
        raise errors.UsageError("Either --producer-props or --producer.config must be specified.")
    servers, kwargs = producer_settings(read_properties(items, producer_config))
    raise typer.Exit(producer_perf(options.bootstrap(ctx, servers), topic, num_records,
                                   throughput, kwargs, record_size, payload_file, payload_delimiter,
                                   payload_monotonic, print_metrics))


@app.command("consumer")
def consumer(ctx: typer.Context,
             bootstrap_server: Optional[str] = typer.Option(None, "--bootstrap-server", metavar="server to connect to"),
             topic: str = typer.Option(..., "--topic", metavar="topic"),
             messages: int = typer.Option(..., "--messages", metavar="count",
                                          help="The number of messages to consume."),
             group: Optional[str] = typer.Option(None, "--group", metavar="gid",
                                                 help="Default: perf-consumer-<random>."),
             timeout: int = typer.Option(10_000, "--timeout", metavar="milliseconds",
                                         help="The longest time allowed between returned records."),
             show_detailed_stats: bool = typer.Option(False, "--show-detailed-stats"),
             reporting_interval: int = typer.Option(REPORTING_INTERVAL_MS, "--reporting-interval",
                                                    metavar="interval_ms"),
             hide_header: bool = typer.Option(False, "--hide-header"),
             from_latest: bool = typer.Option(False, "--from-latest"),
             fetch_size: int = typer.Option(1 << 20, "--fetch-size", metavar="size"),
             date_format: str = typer.Option("yyyy-MM-dd HH:mm:ss:SSS", "--date-format", metavar="date format"),
             print_metrics: bool = typer.Option(False, "--print-metrics")) -> None:
    """Read records in a group and report throughput: kafka-consumer-perf-test.

    dcli kafka perf-test consumer --bootstrap-server 127.0.0.1:7181 --topic chat --messages 100000
    """
    raise typer.Exit(consumer_perf(options.bootstrap(ctx, bootstrap_server), topic, messages,
                                   group, timeout, show_detailed_stats, reporting_interval, hide_header,
                                   from_latest, fetch_size, date_format, print_metrics))
