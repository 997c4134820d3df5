"""Broker benchmark with replication: produce throughput on 3 nodes (RF=3) against one node, and
a partition leader's SIGKILL, beside Kafka's published figures (kafka.md section 6.1; issue 8).

Workload: 100-byte records from one Producer of `dcli.client` in this process, as
benchmarks/broker.py sends them (`send()` every record, then `flush()`; linger.ms 5, batch.size
16384; acks=all is idempotent), into a fresh topic of 6 partitions per run.

Part 1, throughput, --repeat runs of each line, the lines alternating run by run; medians:

    1 node,  acks=1      one server (`python -m dcli_server`, as broker.py starts it), RF=1
    1 node,  acks=all
    3 nodes, acks=1      a 3-node LocalCluster, RF=3; the 6 leaders spread over the 3 brokers
    3 nodes, acks=all    acknowledged once every replica in the ISR has the records

Each line carries the ratio to Kafka's 821,557 records/s (acks=1, no replication) or 421,823
(acks=all, 3x synchronous replication); then the replication cost, 3 nodes acks=all / 1 node
acks=1, beside Kafka's 421,823 / 821,557 = 0.51.

Part 2, failover, --trials times on the same cluster: a topic of 1 partition, RF=3. A writer
thread sends one record at a time (acks=all, each awaited). After --warm-seconds the
partition's leader gets SIGKILL. Reported: the time from the kill until the metadata names
another leader, and until the first record *issued* after the kill is acknowledged. The killed
node is restarted and the next trial waits until it is back in the ISR. A broker's death is
noticed when its session with the tree expires (--broker-session-timeout-ms, default 4000,
given to every node; the tree grants 4000 to 40000 ms, ZooKeeper's bounds, so a smaller value
acts as 4000 and the script says so), so failover is about that timeout plus the election.
Each trial also says whether the killed node was the tree's Raft leader or the broker
controller as well, which changes what has to happen first. At the end the partition is read
from the start: every acknowledged record must be there, once, at the offset its
acknowledgement gave.

    .venv/bin/python benchmarks/broker_cluster.py                       # defaults: 75 s on a quiet 2-core machine
    .venv/bin/python benchmarks/broker_cluster.py --records 50000 --repeat 1 --json /tmp/bc.json
    .venv/bin/python benchmarks/broker_cluster.py --skip throughput --trials 5 --broker-session-timeout-ms 6000
    .venv/bin/python benchmarks/broker_cluster.py --logs /tmp/bc-logs          # keep the nodes' logs

Every process it starts listens on 127.0.0.1 only, keeps its data in one temporary directory
(removed at the end) and is stopped by its own pid, on Ctrl-C and SIGTERM too. Every phase, and
every wait inside a trial, is bounded by --max-seconds; one that runs over stops the benchmark
with exit status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from broker import (KAFKA_PRODUCE_ACKS1, KAFKA_PRODUCE_ACKS_ALL, PARTITIONS, RECORD_BYTES,  # noqa: E402
                    Overrun, produce)
from broker_server import start_server, stop_server  # noqa: E402
from coord import machine_busy_s, proc_cpu_s  # noqa: E402

from dcli.client.admin import Admin  # noqa: E402
from dcli.client.consumer import Consumer  # noqa: E402
from dcli.client.producer import Producer  # noqa: E402
from dcli.cluster import LocalCluster  # noqa: E402
from dcli.wire.errors import DcliError  # noqa: E402
from dcli_server.coord.limits import Limits  # noqa: E402

KAFKA_REPLICATION_COST = KAFKA_PRODUCE_ACKS_ALL / KAFKA_PRODUCE_ACKS1      # 0.51
LINES = (("1 node", "1"), ("1 node", "all"), ("3 nodes", "1"), ("3 nodes", "all"))
POLL_S = 0.05


class BenchError(Exception):
    pass


def wait_until(what: str, predicate, max_s: float):
    """predicate's first truthy value, asked every POLL_S; BenchError after max_s."""
    end = time.monotonic() + max_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise BenchError(f"not within {max_s:.0f} s: {what}")
        time.sleep(POLL_S)


def partition_states(addresses: list[str], topic: str) -> dict:
    """partition -> its metadata (leader, replicas, isr, leader_epoch), from the first of
    `addresses` that answers; {} if none does."""
    for a in addresses:
        try:
            with Admin(a, timeout=2) as admin:
                [t] = admin.describe_topics([topic])
                return {p.partition: p for p in t.partitions}
        except DcliError:
            continue
    return {}


def fully_replicated(addresses: list[str], topic: str, partitions: int, rf: int) -> dict | None:
    """The partitions' metadata once each has a leader and `rf` replicas in its ISR, else None."""
    ps = partition_states(addresses, topic)
    ok = len(ps) == partitions and all(p.leader > 0 and len(p.isr) == rf for p in ps.values())
    return ps if ok else None


# ---- part 1: throughput ----

class Cpu:
    """CPU seconds of this process, of each server process and of everything else on the
    machine during one run (procfs); 'other' large means a disturbed run."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def __enter__(self):
        self.c0, self.m0 = time.process_time(), machine_busy_s()
        self.s0 = {k: proc_cpu_s(p) for k, p in self.pids.items()}
        return self

    def __exit__(self, *exc):
        self.figures = {"client": time.process_time() - self.c0}
        for k, p in self.pids.items():
            now = proc_cpu_s(p)
            if now is not None and self.s0[k] is not None:
                self.figures[k] = now - self.s0[k]
        m1 = machine_busy_s()
        if m1 is not None and self.m0 is not None:
            self.figures["other"] = max(m1 - self.m0 - sum(self.figures.values()), 0.0)


def throughput_run(target: dict, acks: str, args, run_no: int) -> dict:
    topic = f"bench-rf{target['rf']}-acks{acks}-{run_no}-{uuid.uuid4().hex[:6]}"
    with Admin(target["servers"]) as admin:
        admin.create_topic(topic, PARTITIONS, target["rf"])
    # every partition led and fully replicated before the clock starts
    parts = wait_until(f"{topic}: a leader and {target['rf']} replicas in sync for every partition",
                       lambda: fully_replicated(target["addresses"], topic, PARTITIONS, target["rf"]),
                       args.max_seconds)
    with Cpu(target["pids"]) as cpu:
        seconds = produce(target["servers"], topic, args.records, 1 if acks == "1" else "all", args.max_seconds)
    after = partition_states(target["addresses"], topic)
    return {"records": args.records, "seconds": round(seconds, 3), "records_per_s": round(args.records / seconds),
            "cpu_s": {k: round(v, 2) for k, v in cpu.figures.items()},
            "leaders": sorted(p.leader for p in parts.values()),
            "isr_shrank": sorted(i for i, p in after.items() if len(p.isr) < target["rf"])}


def throughput(args, single: dict, cluster: dict) -> dict:
    runs: dict[str, list[dict]] = {label(*k): [] for k in LINES}
    for r in range(1, args.repeat + 1):
        for where, acks in LINES:
            res = throughput_run(single if where == "1 node" else cluster, acks, args, r)
            runs[label(where, acks)].append(res)
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in res["cpu_s"].items())
            note = f"  ISR shrank on partitions {res['isr_shrank']}" if res["isr_shrank"] else ""
            print(f"  run {r}  {label(where, acks):<18} {res['records']:>8} records in {res['seconds']:6.2f} s "
                  f"{res['records_per_s']:>9,} records/s   [cpu s: {cpu}]{note}", flush=True)
    return runs


def label(where: str, acks: str) -> str:
    return f"{where}, acks={acks}"


def throughput_summary(runs: dict[str, list[dict]]) -> dict:
    med = {k: statistics.median(r["records_per_s"] for r in rs) for k, rs in runs.items()}
    n = len(next(iter(runs.values())))
    print()
    print(f"produce throughput, {RECORD_BYTES}-byte records, median of {n} run(s) (range)")
    for where, acks in LINES:
        k = label(where, acks)
        ref, what = ((KAFKA_PRODUCE_ACKS1, "acks=1, no replication") if acks == "1"
                     else (KAFKA_PRODUCE_ACKS_ALL, "acks=all, 3x replication"))
        lo, hi = (f(r["records_per_s"] for r in runs[k]) for f in (min, max))
        print(f"  {k:<18} {med[k]:>9,.0f} records/s ({lo:,}-{hi:,}, {med[k] * RECORD_BYTES / 2**20:5.1f} MB/s)   "
              f"Kafka {ref:,} ({what}), ratio {med[k] / ref:.2f}")
    one1, one_all = med[label("1 node", "1")], med[label("1 node", "all")]
    three1, three_all = med[label("3 nodes", "1")], med[label("3 nodes", "all")]
    ratios = {"replication cost (3 nodes acks=all / 1 node acks=1)": (three_all / one1, KAFKA_REPLICATION_COST),
              "3 nodes acks=all / 3 nodes acks=1": (three_all / three1, None),
              "3 nodes acks=1 / 1 node acks=1": (three1 / one1, None),
              "1 node acks=all / 1 node acks=1": (one_all / one1, None)}
    for name, (ours, kafka) in ratios.items():
        beside = f"   Kafka {KAFKA_PRODUCE_ACKS_ALL:,} / {KAFKA_PRODUCE_ACKS1:,} = {kafka:.2f}" if kafka else ""
        print(f"  {name:<53} {ours:5.2f}{beside}")
    return {"medians": med, "ratios": {k: {"dcli": round(v[0], 3), "kafka": v[1] and round(v[1], 3)}
                                       for k, v in ratios.items()}}


# ---- part 2: failover ----

class Writer(threading.Thread):
    """Sends one record at a time to partition 0 (acks=all, idempotent) and waits for each;
    keeps (issued, acknowledged, value, offset) of every acknowledged record."""

    def __init__(self, servers: str, topic: str, tag: str, max_s: float):
        super().__init__(daemon=True, name=f"writer-{tag}")
        self.topic, self.tag, self.max_s = topic, tag, max_s
        self.producer = Producer(servers, acks="all", linger_ms=0, delivery_timeout_ms=int(max_s * 1000))
        self.producer.partitions_for(topic)
        self.acked: list[tuple[float, float, bytes, int]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            value = f"{self.tag}-{i:07d}-".encode().ljust(RECORD_BYTES, b"x")
            issued = time.monotonic()
            try:
                md = self.producer.send(self.topic, value, partition=0).result(self.max_s)
                self.acked.append((issued, time.monotonic(), value, md.offset))
            except Exception as e:        # counted and shown; the record may still land later
                self.errors.append(f"{type(e).__name__}: {e}")
                time.sleep(0.01)
            i += 1

    def first_after(self, t0: float) -> float | None:
        return next((a - t0 for i, a, _, _ in self.acked if i >= t0), None)

    def close(self) -> None:
        self.stopping.set()
        self.join(self.max_s)
        self.producer.close(self.max_s)


def roles(cluster: LocalCluster) -> dict[int, str]:
    """node -> what else it is: the tree's Raft leader, the broker controller."""
    states = [s for s in cluster.status_all(timeout=1.0) if s.up]
    controller = next((s.controller_id for s in states if s.controller_id), None)
    return {s.id: "+".join(x for x in (s.role == "leader" and "tree leader", s.id == controller and "controller")
                           if x) for s in states}


def trial(cluster: LocalCluster, topic: str, n: int, args) -> tuple[dict, Writer]:
    """One SIGKILL of the partition's leader under the writer, then its restart; the figures,
    and the writer (stopped) with what it had acknowledged."""
    addresses = {node.id: node.address for node in cluster.nodes}
    before = wait_until(f"{topic}: a leader with 3 replicas in sync",
                        lambda: fully_replicated(list(addresses.values()), topic, 1, 3), args.max_seconds)[0]
    victim = before.leader
    survivors = [addresses[i] for i in addresses if i != victim]
    res = {"trial": n, "killed": victim, "pid": cluster.node(victim).pid,
           "killed_was_also": roles(cluster).get(victim) or None, "old_epoch": before.leader_epoch}
    writer = Writer(cluster.servers, topic, f"t{n}", args.max_seconds)
    try:
        writer.start()
        time.sleep(args.warm_seconds)
        t0 = time.monotonic()
        cluster.kill(victim)            # SIGKILL to the pid this LocalCluster started
        res["kill_call_s"] = round(time.monotonic() - t0, 4)
        new = None
        end = t0 + args.max_seconds
        while time.monotonic() < end and (new is None or writer.first_after(t0) is None):
            if new is None:
                p = partition_states(survivors, topic).get(0)
                if p is not None and p.leader > 0 and p.leader != victim:
                    new = p
                    res.update(election_s=round(time.monotonic() - t0, 3), new_leader=p.leader,
                               new_epoch=p.leader_epoch, isr_after=list(p.isr))
            time.sleep(POLL_S)
        first = writer.first_after(t0)
        if first is None:
            raise BenchError(f"trial {n}: no write issued after the kill acknowledged within {args.max_seconds:.0f} s")
        res["first_write_s"] = round(first, 3)
        last_before = max((a for _, a, _, _ in writer.acked if a <= t0), default=None)
        res["last_ack_before_kill_s"] = last_before and round(t0 - last_before, 3)
        time.sleep(0.5)
        t1 = time.monotonic()
        cluster.start(victim)           # the writer goes on while the node catches up
        wait_until(f"node {victim} back in the ISR of {topic}",
                   lambda: fully_replicated(survivors, topic, 1, 3), args.max_seconds)
        res["rejoin_isr_s"] = round(time.monotonic() - t1, 3)
    finally:
        writer.close()
    res.update(acked=len(writer.acked), errors=len(writer.errors), error_samples=writer.errors[:3])
    return res, writer


def read_partition(servers: str, topic: str, end: int, max_s: float) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    if end == 0:
        return out
    deadline = time.monotonic() + max_s
    with Consumer(servers, fetch_max_wait_ms=100) as c:
        c.assign([(topic, 0)])
        c.seek_to_beginning()
        while (not out or out[-1][0] < end - 1) and time.monotonic() < deadline:
            out += [(r.offset, r.value) for r in c.poll(timeout_ms=200)]
    return out


def failover(args, cluster: LocalCluster) -> dict:
    topic = f"bench-failover-{uuid.uuid4().hex[:6]}"
    with Admin(cluster.servers) as admin:
        admin.create_topic(topic, 1, 3)
    trials, acked = [], {}
    for n in range(1, args.trials + 1):
        m0 = machine_busy_s()
        res, writer = trial(cluster, topic, n, args)
        m1 = machine_busy_s()
        res["machine_busy_cpu_s"] = round(m1 - m0, 1) if m0 is not None and m1 is not None else None
        acked.update({v: o for _, _, v, o in writer.acked})
        trials.append(res)
        also = f" (also {res['killed_was_also']})" if res["killed_was_also"] else ""
        print(f"  trial {n}: SIGKILL to node {res['killed']}{also}, leader of epoch {res['old_epoch']}; "
              f"node {res.get('new_leader')} leads epoch {res.get('new_epoch')} after {secs(res.get('election_s'))}, "
              f"ISR {res.get('isr_after')}; first write issued after the kill acknowledged after "
              f"{secs(res['first_write_s'])}; node {res['killed']} back in the ISR {res['rejoin_isr_s']:.2f} s "
              f"after its restart; {res['acked']} writes acknowledged, {res['errors']} failed", flush=True)
        for e in res["error_samples"]:
            print(f"    writer error: {e}")
    with Admin(cluster.servers) as admin:
        end = admin.list_offsets([(topic, 0)], -1)[(topic, 0)]
    stored = read_partition(cluster.servers, topic, end, args.max_seconds)
    at = {v: o for o, v in stored}
    values = [v for _, v in stored]
    check = {"log_end": end, "read": len(stored), "acknowledged": len(acked),
             "lost": sum(1 for v in acked if v not in at),
             "moved": sum(1 for v, o in acked.items() if v in at and at[v] != o),
             "duplicates": len(values) - len(set(values))}
    firsts = [t["first_write_s"] for t in trials]
    elections = [t.get("election_s", float("inf")) for t in trials]
    summary = {"first_write": {"median": statistics.median(firsts), "worst": max(firsts)},
               "election": {"median": statistics.median(elections), "worst": max(elections)}}
    granted = Limits().negotiate_timeout(args.broker_session_timeout_ms)
    note = "" if granted == args.broker_session_timeout_ms else f", which the tree grants as {granted} ms (its bounds)"
    summary["session_timeout_ms"] = {"asked": args.broker_session_timeout_ms, "granted": granted}
    print()
    print(f"failover, {len(trials)} trial(s), --broker-session-timeout-ms {args.broker_session_timeout_ms}{note} "
          f"(a dead broker is noticed when its session expires; failover = that + the election)")
    print(f"  kill -> metadata names a new leader      median {summary['election']['median']:.3f} s, "
          f"worst {summary['election']['worst']:.3f} s")
    print(f"  kill -> first write issued after it acked median {summary['first_write']['median']:.3f} s, "
          f"worst {summary['first_write']['worst']:.3f} s   "
          f"({summary['first_write']['median'] * 1000 / granted:.2f}x the session timeout)")
    print(f"  partition read back: {check['read']} records (log end {end}); {check['acknowledged']} acknowledged: "
          f"lost {check['lost']}, at another offset {check['moved']}, duplicated {check['duplicates']}")
    return {"topic": topic, "trials": trials, "summary": summary, "check": check}


def secs(x: float | None) -> str:
    return f"{x:.3f} s" if x is not None else "(not seen)"


# ---- main ----

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=400_000,
                    help="records per throughput run (shorter runs scatter: about a second each on 3 nodes)")
    ap.add_argument("--repeat", type=int, default=3, help="throughput runs per line (medians over these)")
    ap.add_argument("--trials", type=int, default=3, help="failover trials")
    ap.add_argument("--warm-seconds", type=float, default=2.0, help="the writer runs this long before the kill")
    ap.add_argument("--broker-session-timeout-ms", type=int, default=4000,
                    help="given to every node: how long a silent broker is taken for alive (the tree grants 4000-40000)")
    ap.add_argument("--replica-lag-ms", type=int,
                    help="replica.lag.time.max.ms for every node (default: the server's, 30000)")
    ap.add_argument("--skip", choices=("throughput", "failover"), action="append", default=[],
                    help="leave out a part (repeatable)")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="bound on each phase and each wait")
    ap.add_argument("--json", metavar="FILE", help="write every figure here")
    ap.add_argument("--logs", metavar="DIR", help="copy the nodes' logs here before the temporary directory goes")
    a = ap.parse_args(argv)
    if min(a.records, a.repeat, a.trials, a.broker_session_timeout_ms) < 1 or a.max_seconds <= 0 or a.warm_seconds < 0:
        ap.error("--records, --repeat, --trials, --broker-session-timeout-ms must be positive")
    return a


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)      # so that the finally below runs
    workdir = Path(tempfile.mkdtemp(prefix="dcli-broker-cluster-bench-"))
    single = cluster = None
    report: dict = {"args": vars(args)}
    try:
        extra = ["--log-level", "info", "--broker-session-timeout-ms", str(args.broker_session_timeout_ms)]
        if args.replica_lag_ms is not None:
            extra += ["--override", f"replica.lag.time.max.ms={args.replica_lag_ms}"]
        print(f"broker cluster benchmark: {args.records} records of {RECORD_BYTES} bytes, {PARTITIONS} partitions, "
              f"repeat {args.repeat}, trials {args.trials}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
        cluster = LocalCluster(workdir / "cluster", stop_grace=5.0)
        cluster.up(nodes=3, base_port=0, extra_args=extra)
        nodes = cluster.nodes
        print(f"3 nodes: {cluster.servers} (pids {', '.join(str(n.pid) for n in nodes)}), "
              f"{' '.join(extra[2:])}, fsync always")
        if "throughput" not in args.skip:
            proc, address = start_server(workdir / "single")
            single = proc
            print(f"1 node: {address} (pid {proc.pid}), fsync always")
            targets = ({"servers": address, "addresses": [address], "rf": 1, "pids": {"server": proc.pid}},
                       {"servers": cluster.servers, "addresses": cluster.addresses, "rf": 3,
                        "pids": {f"node-{n.id}": n.pid for n in nodes}})
            runs = throughput(args, *targets)
            report["throughput"] = {"runs": runs, **throughput_summary(runs)}
            stop_server(single)
            single = None
            print()
        if "failover" not in args.skip:
            report["failover"] = failover(args, cluster)
            c = report["failover"]["check"]
            if c["lost"] or c["moved"]:
                print("acknowledged records lost or moved: see above", file=sys.stderr)
                return 1
        print("Kafka's figures: 3 brokers on 2014 hardware and a Java client; these: Python server processes "
              "and a Python client sharing this machine's cores.")
        return 0
    except (BenchError, Overrun, DcliError) as e:
        print(f"benchmark failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))
        if single is not None:
            stop_server(single)
        if cluster is not None:
            try:
                cluster.down(grace=5)
            except DcliError:           # it never came up
                pass
            finally:
                cluster.close()        # SIGKILL anything it started that still runs
            if args.logs:
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                for log in (workdir / "cluster").glob("node-*.log"):
                    shutil.copy(log, args.logs)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
