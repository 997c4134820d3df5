"""Broker benchmark through the client library: Producer and Consumer end to end, beside Kafka's
published figures (kafka.md section 6.1).

Workload: 100-byte records, one server node, a topic of 6 partitions, one Producer and one
Consumer in this process. Four measurements:

- produce, acks=1 (no idempotence): `send()` every record, then `flush()`; records/s over that.
- produce, acks=all (idempotent, Kafka's default since 3.0), the same way, into another topic.
- consume: a Consumer assigned all partitions of the acks=1 topic reads every record from the
  beginning with `poll()` (max.poll.records 500, Kafka's default); records/s from the first
  poll to the last record.
- end-to-end latency: a separate run at a modest rate (default 2,000 records/s for 10,000 records,
  linger.ms=0); a consumer thread polls, and each record's latency is the time from just before
  its `send()` (carried in its value) to its arrival in `poll()`. p50 and p99 by nearest rank.

    .venv/bin/python benchmarks/broker.py                         # starts a server in a temp dir
    .venv/bin/python benchmarks/broker.py --records 200000 --latency-records 2000
    .venv/bin/python benchmarks/broker.py --server 127.0.0.1:7181
    .venv/bin/python benchmarks/broker.py --tls --repeat 3        # TLS beside plaintext

The server it starts listens on 127.0.0.1 only, keeps its data in a temporary directory (fsync
always), and is stopped by its pid at the end. Every phase is bounded by --max-seconds: a phase
that runs over stops the benchmark with exit status 1. With --tls two servers are started, one
plaintext and one with TLS (benchmarks/tls_setup.py); the runs alternate between them and the
medians are printed side by side with the ratio TLS / plaintext, instead of Kafka's figures.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tls_setup  # noqa: E402  (this directory's module)
from broker_server import start_server, stop_server  # noqa: E402  (this directory's module)

from dcli.client.admin import Admin  # noqa: E402
from dcli.client.consumer import Consumer  # noqa: E402
from dcli.client.producer import Producer  # noqa: E402

KAFKA_PRODUCE_ACKS1 = 821_557   # 1 producer thread, no replication (acks=1 on one broker)
KAFKA_PRODUCE_ACKS_ALL = 421_823  # 1 producer thread, 3x synchronous replication (acks=all)
KAFKA_CONSUME = 940_521         # single consumer
KAFKA_E2E_P50_MS, KAFKA_E2E_P99_MS = 2.0, 3.0
TARGET_PRODUCE, TARGET_CONSUME = 250_000, 500_000
RECORD_BYTES = 100
PARTITIONS = 6
STAMP = struct.Struct(">q")


class Overrun(Exception):
    pass


def produce(address: str, topic: str, records: int, acks, max_seconds: float) -> float:
    """Seconds to send `records` records and have every one acknowledged."""
    value = b"x" * RECORD_BYTES
    with Producer(address, acks=acks, enable_idempotence=acks == "all", linger_ms=5,
                  batch_size=16384) as p:
        p.partitions_for(topic)                    # metadata before the clock starts
        start = time.perf_counter()
        send = p.send
        for i in range(records):
            send(topic, value)
            if not i & 0xFFFF and time.perf_counter() - start > max_seconds:
                raise Overrun(f"producing {records} records took over {max_seconds} s")
        p.flush(timeout=max_seconds)
        return time.perf_counter() - start


def consume(address: str, topic: str, records: int, max_seconds: float) -> float:
    """Seconds to read `records` records from the beginning of every partition, polling with
    the consumer's defaults (max.poll.records 500), as kafka-consumer-perf-test does."""
    with Consumer(address, fetch_max_wait_ms=100) as c:
        tps = [(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(tps)
        got = 0
        start = time.perf_counter()
        while got < records:
            got += len(c.poll(timeout_ms=1000))
            if time.perf_counter() - start > max_seconds:
                raise Overrun(f"consuming {records} records took over {max_seconds} s (read {got})")
        return time.perf_counter() - start


def end_to_end(address: str, topic: str, records: int, rate: int, max_seconds: float) -> list[float]:
    """Milliseconds from just before each send() to the record's arrival at the consumer."""
    latencies: list[float] = []
    ready = threading.Event()
    failed: list[BaseException] = []

    def read() -> None:
        try:
            with Consumer(address, auto_offset_reset="latest", fetch_max_wait_ms=100) as c:
                tps = [(topic, p) for p in range(PARTITIONS)]
                c.assign(tps)
                for tp in tps:
                    c.position(tp)              # pinned at the end before the producer starts
                ready.set()
                deadline = time.perf_counter() + max_seconds
                while len(latencies) < records and time.perf_counter() < deadline:
                    for r in c.poll(timeout_ms=200):
                        latencies.append((time.perf_counter_ns() - STAMP.unpack_from(r.value)[0]) / 1e6)
        except BaseException as e:       # reported by the main thread
            failed.append(e)
            ready.set()

    reader = threading.Thread(target=read, name="e2e-consumer", daemon=True)
    reader.start()
    ready.wait(max_seconds)
    pad = b"x" * (RECORD_BYTES - STAMP.size)
    with Producer(address, acks=1, enable_idempotence=False, linger_ms=0) as p:
        p.partitions_for(topic)
        start = time.perf_counter()
        for i in range(records):
            pause = start + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)       # the modest rate
            p.send(topic, STAMP.pack(time.perf_counter_ns()) + pad)
        p.flush(timeout=max_seconds)
    reader.join(max_seconds)
    if failed:
        raise failed[0]
    if len(latencies) < records:
        raise Overrun(f"end-to-end run: {len(latencies)} of {records} records arrived within {max_seconds} s")
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p * len(ordered) + 0.5)) - 1))]


def line(name: str, seconds: float, records: int, reference: int, target: int | None) -> str:
    rate = records / seconds
    verdict = "" if target is None else f"  target {target:,}: {'met' if rate >= target else 'NOT MET'}"
    return (f"{name:<24} {records:>9} records in {seconds:6.2f} s  {rate:>9,.0f} records/s "
            f"({records * RECORD_BYTES / seconds / 2**20:5.1f} MB/s)   Kafka {reference:,} records/s, "
            f"ratio {rate / reference:.2f}{verdict}")


def run_phases(address: str, args, emit) -> None:
    """Every phase once against `address`, on fresh topics; emit(name, value) gets each figure:
    seconds for a throughput phase, the list of latencies (ms) for the end-to-end run."""
    run = uuid.uuid4().hex[:8]
    names = {kind: f"bench-{kind}-{run}" for kind in ("acks1", "acksall", "e2e")}
    with Admin(address) as admin:
        for name in names.values():
            admin.create_topic(name, PARTITIONS, 1)
    n = args.records
    emit("produce, acks=1", produce(address, names["acks1"], n, 1, args.max_seconds))
    if "acks-all" not in args.skip:
        emit("produce, acks=all", produce(address, names["acksall"], n, "all", args.max_seconds))
    emit("consume", consume(address, names["acks1"], n, args.max_seconds))
    if "latency" not in args.skip:
        emit("end-to-end latency",
             end_to_end(address, names["e2e"], args.latency_records, args.latency_rate, args.max_seconds))


def print_against_kafka(name: str, value, args) -> None:
    n = args.records
    if name == "produce, acks=1":
        print(line(name, value, n, KAFKA_PRODUCE_ACKS1, TARGET_PRODUCE), flush=True)
    elif name == "produce, acks=all":
        print(line(name, value, n, KAFKA_PRODUCE_ACKS_ALL, None), flush=True)
    elif name == "consume":
        print(line(name, value, n, KAFKA_CONSUME, TARGET_CONSUME), flush=True)
    else:
        p50, p99 = percentile(value, 0.50), percentile(value, 0.99)
        print(f"{'end-to-end latency':<24} {len(value):>9} records at {args.latency_rate:,}/s: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms   Kafka p50 {KAFKA_E2E_P50_MS:.0f} ms, "
              f"p99 {KAFKA_E2E_P99_MS:.0f} ms, ratio p50 {p50 / KAFKA_E2E_P50_MS:.2f}, "
              f"p99 {p99 / KAFKA_E2E_P99_MS:.2f}", flush=True)


def tls_runs(args, tmp: Path) -> None:
    """--tls: the phases against a plaintext server and a TLS one, alternating run by run; then
    the medians side by side. Both servers are stopped here, by pid."""
    certs = tls_setup.make_certs(tmp)
    servers, addresses = [], {}
    try:
        for mode, extra in (("plaintext", ()), ("tls", certs.server_args)):
            proc, addresses[mode] = start_server(tmp / f"data-{mode}", extra)
            servers.append(proc)
            print(f"dcli broker, {mode}: pid {proc.pid} on {addresses[mode]}")
        print(f"{args.records} records of {RECORD_BYTES} bytes, {PARTITIONS} partitions, one Producer and one "
              f"Consumer (dcli.client); {args.repeat} runs on each server, alternating", flush=True)
        figures: dict[str, dict[str, list[float]]] = {m: {} for m in tls_setup.MODES}
        cacert = {"plaintext": None, "tls": certs.cacert}
        for r in range(args.repeat):
            for mode in tls_setup.MODES:
                got = figures[mode]

                def emit(name, value, got=got):
                    if isinstance(value, list):
                        got.setdefault(name + " p50", []).append(percentile(value, 0.50))
                        got.setdefault(name + " p99", []).append(percentile(value, 0.99))
                    else:
                        got.setdefault(name, []).append(args.records / value)
                with tls_setup.client_tls(cacert[mode]):
                    run_phases(addresses[mode], args, emit)
                print(f"run {r} {mode:<9} " + ", ".join(
                    f"{k} {v[-1]:,.0f}/s" if "latency" not in k else f"{k} {v[-1]:.2f} ms"
                    for k, v in got.items()), flush=True)
        rows = []
        for name, values in figures["plaintext"].items():
            pt, tls = statistics.median(values), statistics.median(figures["tls"][name])
            if "latency" in name:
                rows.append(tls_setup.Row(name, "latency", pt, tls, "ms", name.endswith("p50")))
            else:
                rows.append(tls_setup.Row(name, "throughput", pt, tls, "rec/s"))
        tls_setup.print_comparison(rows, args.repeat)
    finally:
        for proc in servers:
            stop_server(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=500_000, help="records per throughput phase")
    ap.add_argument("--latency-records", type=int, default=10_000)
    ap.add_argument("--latency-rate", type=int, default=2_000, help="records/s in the latency run")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="limit for each phase")
    ap.add_argument("--server", help="HOST:PORT of a running server (else one is started)")
    ap.add_argument("--skip", nargs="*", default=[], choices=("acks-all", "latency"),
                    help="phases to leave out")
    ap.add_argument("--tls", action="store_true", help="a plaintext server beside a TLS one, runs alternating")
    ap.add_argument("--repeat", type=int, default=1, help="runs (on each server, with --tls)")
    args = ap.parse_args()
    if args.tls and args.server:
        ap.error("--tls starts its own plaintext and TLS servers: leave out --server")
    if args.repeat < 1 or args.records < 1 or args.latency_records < 1:
        ap.error("--repeat, --records and --latency-records must be positive")
    tmp = proc = None
    address = args.server
    if args.tls or address is None:
        tmp = Path(tempfile.mkdtemp(prefix="dcli-broker-client-bench-"))
    try:
        if args.tls:
            tls_runs(args, tmp)
            return 0
        if address is None:
            proc, address = start_server(tmp / "data")
        print(f"dcli broker at {address}: {args.records} records of {RECORD_BYTES} bytes, "
              f"{PARTITIONS} partitions, one Producer and one Consumer (dcli.client)")
        for _ in range(args.repeat):
            run_phases(address, args, lambda name, value: print_against_kafka(name, value, args))
        print("Kafka's figures: 3 brokers on 2014 hardware and a Java client (acks=all there is 3x "
              "synchronous replication); these: one Python server process and a Python client on this machine.")
        return 0
    except Overrun as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
