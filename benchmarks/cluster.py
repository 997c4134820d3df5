"""Cluster benchmark: write throughput on 3 nodes against 1, and leader failover against ZooKeeper.

Part 1, throughput. The same workload through CoordClient against one node
(`python -m dcli_server`) and against a 3-node local cluster (LocalCluster, free ports), with the
client connected to the leader and, separately, to a follower (whose writes go to the leader):

Each phase runs on the three targets back to back (the ratios compare figures taken seconds
apart: this machine's speed drifts by tens of percent over a minute):

    sync-create      --writes creates, one call at a time; ops/s, p50/p99 per call
    clients-create   --writes creates from --clients sessions at once (a thread each), each
                     one call at a time; ops/s, p50/p99
    async-create     --async-writes creates issued back to back, then awaited; ops/s, and
                     p50/p99 from issue to the answer (mostly time spent queued)

The throughput target (3 nodes >= 60 % of one node) is judged on async-create: throughput is the
rate a system sustains with requests in flight (the ZooKeeper paper's throughput figures were
taken with clients that kept at least 100 requests outstanding).
The two other phases wait for each answer before the next request, so their rate is bounded by
latency; they are printed beside ZooKeeper's figures for the same phases, without the target.

Part 2, failover (--trials times, default 5). The reference's method (shared/reference/zk/
ensemble_failover.py, §7.4 of shared/reference/zookeeper.md): two writers with 10 s sessions,
W-leader with the leader first in its server list, W-follower with a follower first, each
looping a sync create(sequence=True); after --warm-seconds the leader is SIGKILLed. Reported:

    election         kill -> a survivor says it is the leader (Cluster.Status / `srvr`, every 20 ms)
    W-leader         kill -> the first write *issued* after the kill is acknowledged
    W-follower       the same for the writer that started on a follower
    session kept     same session id afterwards, its ephemeral still there
    acked lost       acknowledged creates missing from the tree afterwards (must be 0)

then the killed node is restarted and waited for (follower again, caught up) before the next
trial. The trials run on dcli's cluster twice: "dcli", writers through CoordClient over gRPC
(target: within 2x ZooKeeper's), and "dcli-kazoo", writers through kazoo on the same nodes'
ZooKeeper ports (target: no slower than ZooKeeper's; --skip dcli-kazoo leaves it out). Where
Debian's zookeeper package and kazoo are installed, the same trials run on a 3-server ZooKeeper
ensemble; otherwise the recorded figures are printed, labelled as such. The three systems are
in cluster_systems.py.

    .venv/bin/python benchmarks/cluster.py                        # everything, defaults
    .venv/bin/python benchmarks/cluster.py --trials 5 --json /tmp/cluster.json
    .venv/bin/python benchmarks/cluster.py --skip throughput --no-zookeeper

Every process it starts listens on 127.0.0.1 only, keeps its data in one temporary directory
(removed at the end) and is signalled by its own pid; every phase is bounded by --max-seconds.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cluster_systems import (SESSION_TIMEOUT_S, DcliCluster, DcliKazoo, ZkEnsemble,  # noqa: E402,F401
                             caught_up, wait_for_leader)
from coord import (BenchError, PhaseTimeout, find_zookeeper, machine_busy_s, pct,  # noqa: E402
                   proc_cpu_s, start_dcli, start_zookeeper, zookeeper_version)

from dcli.cluster import LocalCluster  # noqa: E402
from dcli.wire.errors import DcliError  # noqa: E402

WARMUP_WRITES = 300
POLL_S = 0.02                   # the reference polled `srvr` every 20 ms
WRITE_TIMEOUT_S = 15.0          # one write's wait, as the reference's writers
THREE_NODE_TARGET = 0.60        # issue 5: 3-node write throughput >= 60% of one node's
# Throughput is the rate a cluster sustains: measured with writes kept in flight. A writer that
# waits for each answer measures latency (its rate is one over it), so the other phases are
# reported beside ZooKeeper's, without the target.
THROUGHPUT_PHASE = "async-create"
FAILOVER_TARGET = 2.0           # issue 5: median failover within 2x ZooKeeper's
KAZOO_FAILOVER_TARGET = 1.0     # issue 18: through kazoo on dcli's ZooKeeper ports, no slower than ZooKeeper's

# shared/reference/zookeeper.md §7.4: ZooKeeper 3.8.0, 3 servers on loopback, 5 trials (median, range)
ZK_RECORDED = {
    "election": dict(median=0.44, best=0.41, worst=0.67),
    "W-leader": dict(median=0.58, best=0.43, worst=0.99),
    "W-follower": dict(median=0.91, best=0.42, worst=1.48),
}
LINES = ("election", "W-leader", "W-follower")


# ---- part 1: throughput ----

def latency(name, ops, elapsed, lats_ns):
    s = sorted(lats_ns)
    return {"phase": name, "ops": ops, "seconds": round(elapsed, 3), "ops_per_s": round(ops / elapsed, 1),
            "p50_ms": round(pct(s, 50), 3), "p99_ms": round(pct(s, 99), 3), "max_ms": round(s[-1] / 1e6, 3)}


class Cpu:
    """CPU seconds used during a phase by this process and by each server process (procfs)."""

    def __init__(self, pids):
        self.pids = pids

    def __enter__(self):
        self.c0, self.p0 = time.process_time(), {k: proc_cpu_s(p) for k, p in self.pids.items()}
        self.m0 = machine_busy_s()
        return self

    def __exit__(self, *exc):
        self.client = time.process_time() - self.c0
        self.servers = {k: proc_cpu_s(p) - self.p0[k] for k, p in self.pids.items()
                        if self.p0[k] is not None and proc_cpu_s(p) is not None}
        m1 = machine_busy_s()
        # what every other process on the machine used meanwhile: large means a disturbed run
        self.others = (None if m1 is None or self.m0 is None
                       else max(m1 - self.m0 - self.client - sum(self.servers.values()), 0.0))

    def tag(self, r):
        r["cpu"] = {"client": round(self.client, 2), **{k: round(v, 2) for k, v in self.servers.items()}}
        if self.others is not None:
            r["cpu"]["everything else"] = round(self.others, 2)
        return r


def open_writer(system, address, args, tag):
    """A session on `address` with a fresh subtree, warmed up: (client, base path)."""
    zk = system.connect(address)
    try:
        base = "/bench-cluster/%s-%d-%d" % (tag, os.getpid(), time.monotonic_ns())
        zk.ensure_path(base + "/w")
        data = b"x" * args.size
        end = time.perf_counter() + args.max_seconds
        for i in range(WARMUP_WRITES):
            zk.create("%s/w/n%d" % (base, i), data)
            if time.perf_counter() > end:
                raise PhaseTimeout("warm-up")
        return zk, base
    except BaseException:
        system.close_client(zk)
        raise


def sync_run(system, zk, address, pids, args, base):
    """`--writes` creates, one call at a time."""
    data = b"x" * args.size
    zk.ensure_path(base + "/s")
    lats = []
    with Cpu(pids) as cpu:
        end_ns = time.perf_counter_ns() + int(args.max_seconds * 1e9)
        t0 = time.perf_counter()
        for i in range(args.writes):
            a = time.perf_counter_ns()
            system.wait(zk.create_async("%s/s/n%06d" % (base, i), data), WRITE_TIMEOUT_S)
            b = time.perf_counter_ns()
            lats.append(b - a)
            if b > end_ns:
                raise PhaseTimeout("sync-create")
        elapsed = time.perf_counter() - t0
    return cpu.tag(latency("sync-create", args.writes, elapsed, lats))


def async_run(system, zk, address, pids, args, base):
    """`--async-writes` creates issued back to back, then awaited."""
    data = b"x" * args.size
    zk.ensure_path(base + "/a")
    done_ns = [0] * args.async_writes
    issued_ns = [0] * args.async_writes

    def stamp(i):
        def cb(_f):
            done_ns[i] = time.perf_counter_ns()
        return cb
    with Cpu(pids) as cpu:
        t0 = time.perf_counter()
        end = t0 + args.max_seconds
        futures = []
        for i in range(args.async_writes):
            issued_ns[i] = time.perf_counter_ns()
            f = zk.create_async("%s/a/n%06d" % (base, i), data)
            system.on_done(f, stamp(i))
            futures.append(f)
            if i % 1000 == 999 and time.perf_counter() > end:
                raise PhaseTimeout("async-create")
        for f in futures:
            try:
                system.wait(f, max(end - time.perf_counter(), 0.001))
            except Exception as e:
                if time.perf_counter() < end:
                    raise
                raise PhaseTimeout("async-create") from e
        elapsed = time.perf_counter() - t0
    return cpu.tag(latency("async-create", args.async_writes, elapsed,
                           [d - s for d, s in zip(done_ns, issued_ns)]))


def clients_run(system, zk, address, pids, args, base):
    """`--writes` sync creates shared by `--clients` sessions, each in its own thread."""
    data = b"x" * args.size
    clients = []
    try:
        for _ in range(args.clients):
            clients.append(system.connect(address))
        zk.ensure_path(base + "/c")
        per = args.writes // args.clients
        lats = [[] for _ in clients]
        errors = []
        deadline = time.perf_counter_ns() + int(args.max_seconds * 1e9)

        def loop(k):
            zk, mine = clients[k], lats[k]
            try:
                for i in range(per):
                    a = time.perf_counter_ns()
                    system.wait(zk.create_async("%s/c/k%d-%06d" % (base, k, i), data), WRITE_TIMEOUT_S)
                    b = time.perf_counter_ns()
                    mine.append(b - a)
                    if b > deadline:
                        raise PhaseTimeout("clients-create")
            except BaseException as e:      # reported by the main thread
                errors.append(e)
        threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(args.clients)]
        with Cpu(pids) as cpu:
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.max_seconds + WRITE_TIMEOUT_S)
            elapsed = time.perf_counter() - t0
        if errors:
            raise errors[0]
        if any(t.is_alive() for t in threads):
            raise PhaseTimeout("clients-create")
        return cpu.tag(latency("clients-create", per * args.clients, elapsed, [x for m in lats for x in m]))
    finally:
        for c in clients:
            system.close_client(c)


PHASES = {"sync-create": sync_run, "clients-create": clients_run, "async-create": async_run}


def print_run(label, res):
    for x in res:
        cpu = ", ".join("%s %.2f s" % kv for kv in x["cpu"].items())
        print("  %-22s %-13s %6d ops %7.3f s %9.1f ops/s  p50 %7.3f ms  p99 %8.3f ms  [cpu %s]" % (
            label, x["phase"], x["ops"], x["seconds"], x["ops_per_s"], x["p50_ms"], x["p99_ms"], cpu))
    sys.stdout.flush()


def throughput(args, workdir, cluster, cpath):
    """Single node, the cluster's leader and a follower (see measure_runs)."""
    single = start_dcli(workdir)
    try:
        print("single node: pid %d on %s (fsync always)" % (single.pid, single.address))
        leader_id, targets = cluster_targets(cluster, args, cpath)
        targets = {"1 node": (single.address, {"server": single.pid}), **targets}

        def check_leader(r):
            nonlocal leader_id
            if wait_for_leader(cluster, args.max_seconds) != leader_id:
                print("  note: the leader changed during run %d; its 3-node figures mix leader and follower" % r)
                print_leader_changes(cluster)
                leader_id, new = cluster_targets(cluster, args, cpath)
                targets.update(new)
        return measure_runs(DcliCluster(cluster, args.max_seconds), targets, args, check_leader,
                            lambda: print_leader_changes(cluster))
    finally:
        single.stop()


def zk_throughput(args, workdir, found, ensemble, leader):
    """The same runs through kazoo: one standalone ZooKeeper against the 3-server ensemble."""
    single = start_zookeeper(found, workdir)
    try:
        follower = min(i for i in ensemble.ids if i != leader)
        pids = {"leader": ensemble.servers[leader].pid,
                **{"follower-%d" % i: ensemble.servers[i].pid for i in ensemble.ids if i != leader}}
        print("zookeeper: standalone pid %d on %s; ensemble leader %d, follower used %d" % (
            single.pid, single.address, leader, follower))
        targets = {"1 node": (single.address, {"server": single.pid}),
                   "3 nodes, on leader": (ensemble.address(leader), pids),
                   "3 nodes, on follower": (ensemble.address(follower), pids)}

        def check_leader(r):
            if ensemble.leader(args.max_seconds) != leader:
                print("  note: the ZooKeeper leader changed during run %d" % r)
        return measure_runs(ensemble, targets, args, check_leader, lambda: None)
    finally:
        single.stop()


def measure_runs(system, targets, args, check_leader, on_failure):
    """--repeat runs of every phase on every target. Each phase runs on the targets back to
    back, so that a ratio compares figures taken within seconds of each other (this machine's
    speed drifts by tens of percent over a minute). Returns {label: [run results or None]}."""
    runs = {k: [] for k in targets}
    for r in range(args.repeat):
        print("run %d" % r)
        run = [Measured(system, label, address, p) for label, (address, p) in targets.items()]
        try:
            for phase in PHASES:
                for m in run:
                    m.measure(phase, args, on_failure)
        finally:
            for m in run:
                m.close()
        for m in run:
            runs[m.label].append(m.results)
            if m.results is not None:
                print_run(m.label, m.results)
        check_leader(r)
    return runs


class Measured:
    """One target's share of a run: its session and subtree, and each phase's figures
    (`results` is None once a phase failed)."""

    def __init__(self, system, label, address, pids):
        self.system, self.label, self.address, self.pids = system, label, address, pids
        self.zk, self.base = None, None
        self.results = []

    def measure(self, phase, args, on_failure):
        if self.results is None:
            return
        try:
            if self.zk is None:
                self.zk, self.base = open_writer(self.system, self.address, args,
                                                 self.label.replace(" ", "").replace(",", "-"))
            self.results.append(PHASES[phase](self.system, self.zk, self.address, self.pids, args, self.base))
        except (PhaseTimeout, BenchError):
            raise
        except Exception as e:      # DcliError, or kazoo's own
            # left out of the medians, and said so: on a starved machine a follower can miss
            # heartbeats long enough to start an election
            print("  %-22s %s failed: %s: %s" % (self.label, phase, type(e).__name__, e))
            self.results = None
            if self.label != "1 node":
                on_failure()

    def close(self):
        if self.zk is None:
            return
        try:
            if self.results is not None:
                self.zk.delete(self.base, recursive=True)
        finally:
            self.system.close_client(self.zk)


def cluster_targets(cluster, args, cpath):
    """(leader id, {label: (address, server pids)}) for a client on the leader and on a follower."""
    leader_id = wait_for_leader(cluster, args.max_seconds)
    nodes = {n.id: n for n in cluster.nodes}
    follower_id = min(i for i in nodes if i != leader_id)
    pids = {"leader": nodes[leader_id].pid,
            **{"follower-%d" % i: n.pid for i, n in nodes.items() if i != leader_id}}
    print("3 nodes: leader is node %d (%s); follower used: node %d (%s); data in %s" % (
        leader_id, nodes[leader_id].address, follower_id, nodes[follower_id].address, cpath))
    return leader_id, {"3 nodes, on leader": (nodes[leader_id].address, pids),
                       "3 nodes, on follower": (nodes[follower_id].address, pids)}


def print_leader_changes(cluster):
    """The nodes' own lines about leadership and lost streams (their logs are at info level)."""
    for n in cluster.nodes:
        lines = [ln for ln in cluster.tail(n.id).splitlines()
                 if "leads term" in ln or "no longer the leader" in ln or "lost" in ln]
        for ln in lines[-6:]:
            print("    node %d log: %s" % (n.id, ln.strip()))


def throughput_summary(runs, title="dcli", target=True):
    """Medians per configuration and phase, and the 3-node/1-node ratio (against the target):
    the median of each run's own ratio (the two taken seconds apart), with their range."""
    meds = {}
    for label, rs in runs.items():
        rs = [r for r in rs if r is not None]
        if not rs:
            raise BenchError("every run of %r failed" % label)
        for i, x in enumerate(rs[0]):
            col = [r[i] for r in rs]
            meds[(label, x["phase"])] = {k: statistics.median(c[k] for c in col)
                                         for k in ("ops_per_s", "p50_ms", "p99_ms")}
    print()
    print("%s write throughput, median over %d runs (ratio: 3 nodes / 1 node in the same run, median "
          "and range%s)" % (title, min(sum(r is not None for r in rs) for rs in runs.values()),
                            "; target >= %.0f%% for %s, the sustained rate" % (
                                THREE_NODE_TARGET * 100, THROUGHPUT_PHASE) if target else ""))
    rows = []
    for i, phase in enumerate(PHASES):
        for label in runs:
            m = meds[(label, phase)]
            line = "  %-14s %-22s %9.1f ops/s  p50 %7.3f ms  p99 %8.3f ms" % (
                phase, label, m["ops_per_s"], m["p50_ms"], m["p99_ms"])
            if label != "1 node":
                ratios = sorted(r[i]["ops_per_s"] / one[i]["ops_per_s"]
                                for r, one in zip(runs[label], runs["1 node"]) if r and one)
                if not ratios:
                    raise BenchError("no run of %r has both figures" % label)
                ratio = statistics.median(ratios)
                met = ratio >= THREE_NODE_TARGET
                verdict = ""
                if target:
                    verdict = ((": met" if met else ": NOT MET") if phase == THROUGHPUT_PHASE
                               else " (latency-bound)")
                line += "   %5.1f%% (%.0f-%.0f%%) of 1 node%s" % (
                    ratio * 100, ratios[0] * 100, ratios[-1] * 100, verdict)
                rows.append({"line": "%s, %s" % (phase, label), "phase": phase, "ratio": round(ratio, 3),
                             "range": [round(ratios[0], 3), round(ratios[-1], 3)], "met": met})
            print(line)
    verdicts = [r for r in rows if r["phase"] == THROUGHPUT_PHASE] if target else []
    return {"medians": {"%s / %s" % k: v for k, v in meds.items()}, "verdicts": verdicts,
            "ratios": {r["line"]: r["ratio"] for r in rows}}


# ---- part 2: failover, the same trial for both systems ----

class Writer(threading.Thread):
    """Loops a sync create(sequence=True) under `base`; records (issued, acknowledged, path)."""

    def __init__(self, name, client, wait, base):
        super().__init__(daemon=True, name=name)
        self.client, self.wait, self.base = client, wait, base
        self.ok, self.states, self.failures = [], [], 0
        self.stop_ = False
        client.ensure_path(base)
        self.eph = client.create(base + "/eph", b"", ephemeral=True)
        self.sid0 = session_id(client)
        client.add_listener(lambda s: self.states.append((time.monotonic(), str(s).split(".")[-1])))

    def run(self):
        while not self.stop_:
            issued = time.monotonic()
            try:
                path = self.wait(self.client.create_async(self.base + "/w-", b"", sequence=True), WRITE_TIMEOUT_S)
                self.ok.append((issued, time.monotonic(), path))
            except Exception:
                self.failures += 1
                time.sleep(0.01)

    def first_after(self, t0):
        after = [c for i, c, _ in self.ok if i >= t0]
        return after[0] - t0 if after else None


def session_id(client):
    return client.session_id if hasattr(client, "session_id") else client.client_id[0]


def run_trial(system, trial_no, args):
    """One leader-SIGKILL trial on a running 3-node system; returns its figures."""
    leader = system.leader(args.max_seconds)
    others = [i for i in system.ids if i != leader]
    addr = system.address
    tag = "%s/t%d-%d" % (system.root, os.getpid(), trial_no)
    writers = []
    try:
        for name, order in (("W-leader", [leader] + others), ("W-follower", others + [leader])):
            client = system.connect(",".join(addr(i) for i in order))
            try:
                writers.append(Writer(name, client, system.wait, "%s-%s" % (tag, name[2])))
            except BaseException:
                system.close_client(client)
                raise
        for w in writers:
            w.start()
        time.sleep(args.warm_seconds)
        t0 = time.monotonic()
        pid = system.kill(leader)
        elected, new_leader = None, None
        while time.monotonic() - t0 < args.max_seconds:
            new_leader = system.poll_leader(others)
            if new_leader is not None:
                elected = time.monotonic() - t0
                break
            time.sleep(POLL_S)
        end = t0 + args.max_seconds
        while time.monotonic() < end and not all(w.first_after(t0) is not None for w in writers):
            time.sleep(0.01)
        time.sleep(0.5)
        res = {"trial": trial_no, "killed": leader, "pid": pid, "new_leader": new_leader, "election": elected}
        for w in writers:
            w.stop_ = True
        for w in writers:
            w.join(WRITE_TIMEOUT_S + 1)
        for w in writers:
            before = [c for i, c, _ in w.ok if c <= t0]
            r = {"first_write": w.first_after(t0), "writes_before": len(before),
                 "last_before_kill": round(t0 - before[-1], 3) if before else None,
                 "failed_calls": w.failures,
                 "states": ["%s@%.3f" % (s, t - t0) for t, s in w.states if t >= t0]}
            r["session_kept"], r["ephemeral_kept"], r["acked_lost"] = session_check(system, w)
            res[w.name] = r
        return res
    finally:
        for w in writers:
            w.stop_ = True
        for w in writers:
            try:
                w.client.delete(w.base, recursive=True)
            except Exception:
                pass
            system.close_client(w.client)


def session_check(system, w):
    """(same session still connected, its ephemeral still there, acknowledged creates missing)."""
    if not system.connected(w.client):
        return False, None, None
    same = session_id(w.client) == w.sid0
    try:
        eph = w.client.exists(w.eph) is not None
        present = set(w.client.get_children(w.base))
    except Exception:
        return same, None, None
    lost = sum(1 for _, _, p in w.ok if p.rsplit("/", 1)[1] not in present)
    return same, eph, lost


def print_trial(label, res, warm_s):
    print("  %s trial %d: killed node %s (pid %d) -> new leader %s, election %s" % (
        label, res["trial"], res["killed"], res["pid"], res["new_leader"], secs(res["election"])))
    for name in LINES[1:]:
        r = res[name]
        print("    %-10s first write issued after the kill acknowledged %s after it; session kept %s, "
              "ephemeral kept %s, acknowledged writes lost %s; %d writes in the %.0f s before; states %s" % (
                  name, secs(r["first_write"]), r["session_kept"], r["ephemeral_kept"], r["acked_lost"],
                  r["writes_before"], warm_s, ", ".join(r["states"]) or "-"))
    sys.stdout.flush()


def secs(x):
    return "%.3f s" % x if x is not None else "NONE within --max-seconds"


def failover_summary(trials):
    """{line: {median, best, worst, values}}; a trial with no figure counts as infinitely slow."""
    out = {}
    for line in LINES:
        vals = [t["election"] if line == "election" else t[line]["first_write"] for t in trials]
        xs = [v if v is not None else float("inf") for v in vals]
        out[line] = {"median": statistics.median(xs), "best": min(xs), "worst": max(xs), "values": vals}
    return out


def print_failover_summary(label, s, trials):
    print("%s failover, %d trials: median (best-worst)" % (label, len(trials)))
    for line in LINES:
        x = s[line]
        print("  %-10s %7.3f s  (%.3f-%.3f)" % (line, x["median"], x["best"], x["worst"]))
    kept = [t[w]["session_kept"] and t[w]["ephemeral_kept"] for t in trials for w in LINES[1:]]
    lost = [t[w]["acked_lost"] for t in trials for w in LINES[1:]]
    print("  sessions and ephemerals kept in %d of %d writer-trials; acknowledged writes lost: %s" % (
        sum(bool(k) for k in kept), len(kept), sum(x or 0 for x in lost) if None not in lost else "unknown"))


def compare_throughput(dcli, zk, version):
    """Each 3-node/1-node ratio beside ZooKeeper's on the same machine."""
    print()
    print("3 nodes / 1 node, dcli beside ZooKeeper %s (both with 3 servers and the client on these cores)" % version)
    for line, ratio in dcli.items():
        theirs = zk.get(line)
        print("  %-40s dcli %5.1f%%   ZooKeeper %s" % (
            line, ratio * 100, "%5.1f%%" % (theirs * 100) if theirs is not None else "-"))


def compare_failover(dcli, zk, zk_label, name="dcli", target=FAILOVER_TARGET):
    """Each line's median beside ZooKeeper's; the writers' lines held to `target` (a ratio;
    1.0 reads "no slower")."""
    goal = "no slower" if target == 1.0 else "<= %.0fx" % target
    print()
    print("%s vs %s (ratio %s / ZooKeeper, medians; target: the writers' first write %s)" % (
        name, zk_label, name, goal))
    verdicts = []
    for line in LINES:
        d, z = dcli[line]["median"], zk[line]["median"]
        ratio = d / z
        tail = "(no target)"
        if line != "election":
            met = ratio <= target
            tail = "%s: %s" % (goal, "met" if met else "NOT MET")
            verdicts.append({"line": "failover %s%s" % ("" if name == "dcli" else name + " ", line),
                             "ratio": round(ratio, 3), "met": met})
        print("  %-10s %s %7.3f s (worst %.3f)  ZooKeeper %7.3f s (worst %.3f)  %5.2fx  %s" % (
            line, name, d, dcli[line]["worst"], z, zk[line]["worst"], ratio, tail))
    return verdicts


def failover(label, system, args):
    trials = []
    for t in range(args.trials):
        m0 = machine_busy_s()
        res = run_trial(system, t + 1, args)
        print_trial(label, res, args.warm_seconds)
        time.sleep(1.0)                          # the reference waited 1 s before restarting
        res["rejoin_s"] = round(system.restart(res["killed"]), 3)
        m1 = machine_busy_s()
        print("    node %s restarted, follower and caught up after %.2f s (machine busy %.1f CPU-s during the trial)"
              % (res["killed"], res["rejoin_s"], (m1 - m0) if m0 is not None and m1 is not None else float("nan")))
        trials.append(res)
        time.sleep(1.0)
    return trials


# ---- main ----

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=2000, help="sync creates per run")
    ap.add_argument("--async-writes", type=int, default=20000, help="pipelined creates per run")
    ap.add_argument("--clients", type=int, default=8, help="sessions writing at once in clients-create")
    ap.add_argument("--size", type=int, default=16, help="bytes of data per znode")
    ap.add_argument("--repeat", type=int, default=3, help="throughput runs per configuration (medians over these)")
    ap.add_argument("--trials", type=int, default=5, help="failover trials per system")
    ap.add_argument("--warm-seconds", type=float, default=2.0, help="writers run this long before the kill")
    ap.add_argument("--skip", choices=("throughput", "failover", "dcli-kazoo"), action="append", default=[],
                    help="leave out a part (repeatable); dcli-kazoo: the failover trials through kazoo")
    ap.add_argument("--no-zookeeper", action="store_true", help="compare with the recorded ZooKeeper figures")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="bound on each phase, start-up and trial step")
    ap.add_argument("--json", metavar="FILE", help="write every figure here")
    a = ap.parse_args(argv)
    if min(a.writes, a.async_writes, a.repeat, a.trials) < 1 or a.size < 0 or a.max_seconds <= 0 or a.warm_seconds < 0:
        ap.error("--writes, --async-writes, --repeat, --trials must be positive; --size, --warm-seconds >= 0")
    if not 1 <= a.clients <= a.writes:
        ap.error("--clients must be between 1 and --writes")
    return a


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)      # so that the finally below runs
    workdir = Path(tempfile.mkdtemp(prefix="dcli-cluster-bench-"))
    cluster, zk = None, None
    report = {"args": vars(args)}
    verdicts = []
    try:
        print("cluster benchmark: writes=%d async-writes=%d size=%d repeat=%d trials=%d; %d CPUs; python %s" % (
            args.writes, args.async_writes, args.size, args.repeat, args.trials, os.cpu_count() or 0,
            sys.version.split()[0]))
        cpath = workdir / "cluster"
        cluster = LocalCluster(cpath)
        cluster.up(nodes=3, base_port=0, extra_args=["--log-level", "info"])
        print("dcli: 3 nodes %s (pids %s)" % (cluster.servers, ", ".join(str(n.pid) for n in cluster.nodes)))
        sys.stdout.flush()
        if "throughput" not in args.skip:
            runs = throughput(args, workdir, cluster, cpath)
            report["throughput"] = {"runs": runs, **throughput_summary(runs)}
            verdicts += report["throughput"]["verdicts"]
            print()
        kazoo_too = "failover" not in args.skip and "dcli-kazoo" not in args.skip
        if "failover" not in args.skip:
            dcli_trials = failover("dcli", DcliCluster(cluster, args.max_seconds), args)
            report["dcli_failover"] = {"trials": dcli_trials, "summary": failover_summary(dcli_trials)}
        if kazoo_too:
            print("dcli-kazoo: the same nodes' ZooKeeper ports %s, writers through kazoo" % (
                ",".join(n.zk_address for n in cluster.nodes)))
            kz_trials = failover("dcli-kazoo", DcliKazoo(cluster, args.max_seconds), args)
            report["dcli_kazoo_failover"] = {"trials": kz_trials, "summary": failover_summary(kz_trials)}
        cluster.down(grace=5)
        cluster = None
        if "failover" not in args.skip:
            print_failover_summary("dcli", report["dcli_failover"]["summary"], dcli_trials)
        if kazoo_too:
            print_failover_summary("dcli-kazoo", report["dcli_kazoo_failover"]["summary"], kz_trials)
        found, why = None, ""
        if not args.no_zookeeper:
            found = find_zookeeper()
            try:
                import kazoo  # noqa: F401
            except ImportError:
                why = "kazoo (pip install -e '.[bench]') is not installed"
            if not found:
                why = "ZooKeeper (Debian package `zookeeper`) is not installed"
        zk_sum = None
        if found and not why:
            print()
            zk = ZkEnsemble(found, workdir, args.max_seconds)
            leader = zk.up()
            version = zookeeper_version(zk.client_port[leader])
            print("zookeeper %s: 3 servers %s (pids %s), leader %d" % (
                version, ",".join(zk.address(i) for i in zk.ids),
                ", ".join(str(s.pid) for s in zk.servers.values()), leader))
            if "throughput" not in args.skip:
                zk_runs = zk_throughput(args, workdir, found, zk, leader)
                zk_tp = throughput_summary(zk_runs, "ZooKeeper %s (kazoo)" % version, target=False)
                report["zookeeper_throughput"] = {"runs": zk_runs, **zk_tp, "version": version}
                compare_throughput(report["throughput"]["ratios"], zk_tp["ratios"], version)
                print()
            if "failover" not in args.skip:
                zk_trials = failover("zookeeper", zk, args)
                zk_sum = failover_summary(zk_trials)
                report["zookeeper_failover"] = {"trials": zk_trials, "summary": zk_sum, "version": version}
                print_failover_summary("zookeeper", zk_sum, zk_trials)
                zk_label = "ZooKeeper %s through kazoo (measured now, same machine)" % version
        elif not args.no_zookeeper:
            print("zookeeper: not measured: %s" % why)
        if "failover" not in args.skip:
            if zk_sum is None:
                zk_sum = ZK_RECORDED
                zk_label = ("RECORDED reference figures (shared/reference/zookeeper.md §7.4: ZooKeeper 3.8.0, "
                            "median of 5 trials), NOT measured now")
            verdicts += compare_failover(report["dcli_failover"]["summary"], zk_sum, zk_label)
            if kazoo_too:
                verdicts += compare_failover(report["dcli_kazoo_failover"]["summary"], zk_sum, zk_label,
                                             "dcli-kazoo", KAZOO_FAILOVER_TARGET)
        return finish(report, verdicts, args)
    except (BenchError, PhaseTimeout, DcliError) as e:
        kind = "phase exceeded --max-seconds: " if isinstance(e, PhaseTimeout) else ""
        print("benchmark failed: %s%s" % (kind, e), file=sys.stderr)
        if cluster is not None:
            print_leader_changes(cluster)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if zk is not None:
            zk.stop_all()
        if cluster is not None:
            try:
                cluster.down(grace=5)
            finally:
                cluster.close()        # SIGKILL anything it started that still runs
        shutil.rmtree(workdir, ignore_errors=True)


def finish(report, verdicts, args):
    print()
    print("targets (issue 5; failover dcli-kazoo: issue 18): %d of %d met" % (
        sum(v["met"] for v in verdicts), len(verdicts)))
    for v in verdicts:
        print("  %-40s %6.3f  %s" % (v["line"], v["ratio"], "met" if v["met"] else "NOT MET"))
    report["verdicts"] = verdicts
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
