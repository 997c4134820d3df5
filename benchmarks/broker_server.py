"""Broker benchmark: raw produce and fetch throughput over gRPC, beside Kafka's published figures.

Workload (Jay Kreps' 2014 test, kafka.md section 6.1, as far as one process allows): 100-byte
records, a topic of 6 partitions, acks=1, one producer thread. Records go in batches of about
16 KiB (Kafka's batch.size), built before the clock starts: this measures the broker and the
wire, not the client's batch building. Produce runs twice: one request at a time, and with up to
5 requests in flight (Kafka's max.in.flight.requests.per.connection). Fetch reads everything back
in 1 MiB partition slices (max.partition.fetch.bytes), counting records from the batch headers.

    .venv/bin/python benchmarks/broker_server.py                 # starts a server in a temp dir
    .venv/bin/python benchmarks/broker_server.py --records 2000000 --acks -1
    .venv/bin/python benchmarks/broker_server.py --server 127.0.0.1:7181

The server it starts listens on 127.0.0.1 only, keeps its data in a temporary directory (fsync
always), and is stopped by its pid at the end (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import argparse
import collections
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcli.v1 import broker_pb2 as pb  # noqa: E402
from dcli.v1 import broker_pb2_grpc as pb_grpc  # noqa: E402
from dcli.wire.records import Record, build_batch, iter_batches  # noqa: E402

KAFKA_PRODUCE = 821_557     # records/s, 1 producer thread, no replication (kafka.md 6.1)
KAFKA_CONSUME = 940_521     # records/s, single consumer (kafka.md 6.1)
RECORD_BYTES = 100
BATCH_BYTES = 16 * 1024
PARTITIONS = 6


def start_server(data_dir: Path, extra=()) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "dcli_server", "--listen", "127.0.0.1:0", "--zk-listen", "none",
                             "--data-dir", str(data_dir), *extra], stdout=subprocess.PIPE, cwd=ROOT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = proc.stdout.readline().decode() if sel.select(60) else ""
    if not line.startswith("dcli server listening on "):
        stop_server(proc)
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split()[4].rstrip(",")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_batches(total: int) -> list[tuple[bytes, int]]:
    per_batch = BATCH_BYTES // (RECORD_BYTES + 10)
    value = b"x" * RECORD_BYTES
    one = build_batch([Record(None, value, (), 0)] * per_batch)
    return [(one, per_batch)] * (total // per_batch)


def produce(stub, topic: str, batches, acks: int, in_flight: int) -> tuple[float, int, int]:
    pending: collections.deque = collections.deque()
    records = nbytes = 0
    start = time.perf_counter()
    for i, (data, n) in enumerate(batches):
        request = pb.ProduceRequest(acks=acks, timeout_ms=30000, partitions=[
            pb.PartitionRecords(topic=topic, partition=i % PARTITIONS, records=data)])
        pending.append(stub.Produce.future(request, timeout=120))
        if len(pending) >= in_flight:
            check(pending.popleft().result())
        records += n
        nbytes += n * RECORD_BYTES
    while pending:
        check(pending.popleft().result())
    return time.perf_counter() - start, records, nbytes


def check(resp: pb.ProduceResponse) -> None:
    for p in resp.partitions:
        if p.error_code:
            raise SystemExit(f"produce failed: {p.error_code} {p.error_message}")


def fetch_all(stub, topic: str) -> tuple[float, int, int]:
    offsets = [0] * PARTITIONS
    ends = [r.offset for r in stub.ListOffsets(pb.ListOffsetsRequest(partitions=[
        pb.ListOffsetsPartition(topic=topic, partition=p, timestamp=-1) for p in range(PARTITIONS)])).partitions]
    records = nbytes = 0
    start = time.perf_counter()
    while any(o < e for o, e in zip(offsets, ends)):
        resp = stub.Fetch(pb.FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=32 << 20,
                                          partitions=[pb.FetchPartition(topic=topic, partition=p,
                                                                        fetch_offset=offsets[p],
                                                                        partition_max_bytes=1 << 20,
                                                                        current_leader_epoch=-1)
                                                      for p in range(PARTITIONS) if offsets[p] < ends[p]]),
                          timeout=120)
        for part in resp.partitions:
            if part.error_code:
                raise SystemExit(f"fetch failed: {part.error_code} {part.error_message}")
            for h, _ in iter_batches(memoryview(part.records)):
                records += h.records_count
                nbytes += h.records_count * RECORD_BYTES
                offsets[part.partition] = h.next_offset
    return time.perf_counter() - start, records, nbytes


def line(name: str, seconds: float, records: int, nbytes: int, reference: int) -> str:
    rate = records / seconds
    return (f"{name:<28} {records:>9} records in {seconds:6.2f} s  {rate:>11,.0f} records/s "
            f"({nbytes / seconds / 2**20:6.1f} MB/s)   Kafka {reference:,} records/s, ratio {rate / reference:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--acks", type=int, default=1, choices=(-1, 0, 1))
    ap.add_argument("--server", help="HOST:PORT of a running server (else one is started)")
    args = ap.parse_args()
    tmp = proc = None
    address = args.server
    if address is None:
        tmp = Path(tempfile.mkdtemp(prefix="dcli-broker-bench-"))
        proc, address = start_server(tmp / "data")
    try:
        opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        with grpc.insecure_channel(address, options=opts) as ch:
            stub = pb_grpc.BrokerStub(ch)
            batches = make_batches(args.records)
            print(f"dcli broker at {address}: {len(batches)} batches of {batches[0][1]} records of "
                  f"{RECORD_BYTES} bytes ({len(batches[0][0])} bytes each), {PARTITIONS} partitions, "
                  f"acks={args.acks}")
            for in_flight in (1, 5):
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                stub.CreateTopics(pb.CreateTopicsRequest(topics=[pb.CreatableTopic(
                    name=topic, num_partitions=PARTITIONS, replication_factor=1)]))
                produce(stub, topic, batches[: max(1, len(batches) // 20)], args.acks, in_flight)  # warm-up
                print(line(f"produce, {in_flight} in flight", *produce(stub, topic, batches, args.acks, in_flight),
                           KAFKA_PRODUCE))
            print(line("fetch (last topic)", *fetch_all(stub, topic), KAFKA_CONSUME))
            print("Kafka's figures: 3 brokers on 2014 hardware, a Java client; these: one Python server "
                  "process and one Python client on this machine.")
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
