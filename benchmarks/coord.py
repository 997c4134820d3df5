"""Coordination-service benchmark: dcli against ZooKeeper, through dcli's CoordClient and kazoo.

The workload is the reference's (shared/reference/zk/kazoo_bench.py, figures in §7.3 of
shared/reference/zookeeper.md). Per run, on a fresh subtree, after 300 uncounted create+get pairs:

    sync-create / sync-get / sync-set / sync-exists   one client, one call at a time, n paths
    async-create / async-get                          m *_async calls issued, then each awaited
    threads-get-shared(T)                             T threads, sync get, one shared client
    sync-delete                                       last, over the same n paths
    connect                                           20 client starts, each to its session

Latency is perf_counter_ns around one synchronous call; p50/p99 by nearest rank.

Three systems, the runs alternating between them: `dcli` (CoordClient over gRPC), `dcli-zk` (the
same server's ZooKeeper port, --zk-listen, through kazoo: issue 18's benchmark) and `zookeeper`
(a real ZooKeeper through kazoo). kazoo drives both of the last two, so their ratio is the
servers'. dcli-zk runs when kazoo is installed (--no-zk-protocol: not at all).

    .venv/bin/python benchmarks/coord.py                      # starts dcli (and ZooKeeper if installed)
    .venv/bin/python benchmarks/coord.py --repeat 3 --n 5000 --m 20000
    .venv/bin/python benchmarks/coord.py --server 127.0.0.1:7181 --zk-server 127.0.0.1:2181 --no-zookeeper
    .venv/bin/python benchmarks/coord.py --tls                # dcli with TLS beside dcli without

Servers it starts (benchmarks/bench_servers.py) listen on 127.0.0.1 only, keep their data in a
temporary directory, and are stopped by their pid at the end (SIGTERM, then SIGKILL). Every
phase is bounded by --max-seconds. ZooKeeper is used when Debian's `zookeeper` package and
kazoo are installed; otherwise the recorded reference figures are printed, labelled as such.
Neither is a runtime dependency. With --tls there is no ZooKeeper and no kazoo: two dcli servers
are started, one plaintext and one with TLS (benchmarks/tls_setup.py), the runs alternate
between them, and the table shows TLS / plaintext.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_servers import (BenchError, Server, find_zookeeper, four_letter, start_dcli,  # noqa: F401
                           start_zookeeper, zookeeper_version)

WARMUP_PAIRS = 300
CONNECTS = 20              # client starts timed per run (the `connect` line; the TLS handshake's cost)

# Median over 3 runs, shared/reference/zookeeper.md §7.3 (ZooKeeper 3.8.0, kazoo 2.11.0, same box).
REFERENCE = {
    "sync-create": dict(ops_per_s=1033.8, p50_ms=0.935, p99_ms=1.480),
    "sync-get": dict(ops_per_s=2411.3, p50_ms=0.393, p99_ms=0.622),
    "sync-set": dict(ops_per_s=1275.4, p50_ms=0.764, p99_ms=1.074),
    "sync-exists": dict(ops_per_s=2669.5, p50_ms=0.354, p99_ms=0.552),
    "async-create": dict(ops_per_s=1723.5),
    "async-get": dict(ops_per_s=4016.9),
    "threads-get-shared": dict(ops_per_s=3265.0, p50_ms=2.478, p99_ms=3.295),
    "sync-delete": dict(ops_per_s=1257.4, p50_ms=0.761, p99_ms=1.427),
}
PIPELINED_TARGET = 2.0     # issue: pipelined throughput at least 2x ZooKeeper's
SYNC_P50_TARGET = 1.5      # issue: synchronous latency (p50) within 1.5x ZooKeeper's
PIPELINED = ("async-create", "async-get")
ZK_PROTOCOL_TARGETS = (1.0, 1.0)   # issue 18: kazoo->dcli at least kazoo->ZooKeeper, pipelined and sync p50


class PhaseTimeout(Exception):
    pass


# ---- figures ----

def pct(sorted_ns, p):
    k = max(0, math.ceil(p / 100.0 * len(sorted_ns)) - 1)
    return sorted_ns[k] / 1e6


def summarize(name, n, elapsed, lats=None):
    r = {"phase": name, "ops": n, "seconds": round(elapsed, 3), "ops_per_s": round(n / elapsed, 1)}
    if lats:
        s = sorted(lats)
        r.update(p50_ms=round(pct(s, 50), 3), p99_ms=round(pct(s, 99), 3),
                 mean_ms=round(statistics.fmean(s) / 1e6, 3), max_ms=round(s[-1] / 1e6, 3))
    return r


def proc_cpu_s(pid):
    """utime+stime of a process (all its threads), from procfs; None where unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class CpuMeter:
    """CPU used by this process (client) and by the server during one phase."""

    def __init__(self, server_pid):
        self.server_pid = server_pid

    def __enter__(self):
        self.c0, self.s0 = time.process_time(), proc_cpu_s(self.server_pid)
        return self

    def __exit__(self, *exc):
        self.client = time.process_time() - self.c0
        s1 = proc_cpu_s(self.server_pid)
        self.server = None if s1 is None or self.s0 is None else s1 - self.s0

    def tag(self, r):
        r["client_cpu_s"] = round(self.client, 2)
        if self.server is not None:
            r["server_cpu_s"] = round(self.server, 2)
        return r


# ---- the two clients behind one face ----

class Driver:
    """How to open a client of one system and wait on its async results: dcli's CoordClient
    (`client="coordclient"`) or kazoo (`client="kazoo"`, for ZooKeeper and dcli's ZooKeeper port)."""

    def __init__(self, client, address, server_pid):
        self.client, self.address, self.server_pid = client, address, server_pid

    def connect(self):
        if self.client == "coordclient":
            from dcli.client import CoordClient
            return CoordClient(self.address, timeout=10.0).start()
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=self.address, timeout=10.0)
        zk.start(timeout=15)
        return zk

    def wait(self, fut, timeout):
        return fut.result(timeout=timeout) if self.client == "coordclient" else fut.get(timeout=timeout)

    def close(self, client):
        if self.client == "coordclient":
            client.close()
        else:
            client.stop()
            client.close()


def _wait_all(driver, futures, end, phase):
    for f in futures:
        try:
            driver.wait(f, max(end - time.perf_counter(), 0.001))
        except Exception as e:
            if time.perf_counter() >= end:
                raise PhaseTimeout(phase) from e
            raise


def sync_phase(name, fn, paths, max_s, meter):
    lats = []
    end_ns = time.perf_counter_ns() + int(max_s * 1e9)
    with meter:
        t0 = time.perf_counter()
        for p in paths:
            a = time.perf_counter_ns()
            fn(p)
            b = time.perf_counter_ns()
            lats.append(b - a)
            if b > end_ns:
                raise PhaseTimeout(name)
        elapsed = time.perf_counter() - t0
    return meter.tag(summarize(name, len(paths), elapsed, lats))


def async_phase(name, driver, issue, paths, max_s, meter):
    with meter:
        t0 = time.perf_counter()
        end = t0 + max_s
        futures = []
        for i, p in enumerate(paths):
            futures.append(issue(p))
            if i % 1000 == 999 and time.perf_counter() > end:
                raise PhaseTimeout(name)
        _wait_all(driver, futures, end, name)
        elapsed = time.perf_counter() - t0
    return meter.tag(summarize(name, len(paths), elapsed))


def threads_phase(name, client, paths, threads, max_s, meter):
    per = len(paths) // threads
    lat_lists = [[] for _ in range(threads)]
    failures = []
    end_ns = time.perf_counter_ns() + int(max_s * 1e9)

    def worker(idx):
        out = lat_lists[idx]
        try:
            for p in paths[idx * per:(idx + 1) * per]:
                a = time.perf_counter_ns()
                client.get(p)
                b = time.perf_counter_ns()
                out.append(b - a)
                if b > end_ns:
                    raise PhaseTimeout(name)
        except Exception as e:
            failures.append(e)

    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    with meter:
        t0 = time.perf_counter()
        for t in ths:
            t.start()
        for t in ths:
            t.join(max((end_ns - time.perf_counter_ns()) / 1e9, 0) + 1.0)
        elapsed = time.perf_counter() - t0
    if any(t.is_alive() for t in ths):
        raise PhaseTimeout(name)
    if failures:
        raise failures[0]
    return meter.tag(summarize("%s(%d)" % (name, threads), per * threads, elapsed,
                               [x for lst in lat_lists for x in lst]))


def connect_phase(driver, count, max_s, meter):
    """`count` client starts, each timed to its first answer (the session's), then closed."""
    lats = []
    end = time.perf_counter() + max_s
    with meter:
        t0 = time.perf_counter()
        for _ in range(count):
            a = time.perf_counter_ns()
            client = driver.connect()
            lats.append(time.perf_counter_ns() - a)
            driver.close(client)
            if time.perf_counter() > end:
                raise PhaseTimeout("connect")
        elapsed = time.perf_counter() - t0
    return meter.tag(summarize("connect", count, elapsed, lats))


def delete_subtree(driver, zk, path, max_s):
    """Untimed cleanup: the leaves of `path` pipelined (kazoo's recursive delete goes one by one)."""
    end = time.perf_counter() + max_s
    for parent in sorted({path} | {path + "/" + k for k in zk.get_children(path)}, key=len, reverse=True):
        kids = zk.get_children(parent)
        _wait_all(driver, [zk.delete_async(parent + "/" + k) for k in kids], end, "cleanup")
    zk.delete(path)


def one_run(driver, args, run_no):
    zk = driver.connect()
    meter = CpuMeter(driver.server_pid)
    try:
        base = "%s/run-%d-%d" % (args.root, os.getpid(), run_no)
        zk.ensure_path(base)
        data, data2 = b"x" * args.size, b"y" * args.size
        zk.ensure_path(base + "/warm")
        end = time.perf_counter() + args.max_seconds
        for i in range(WARMUP_PAIRS):
            zk.create("%s/warm/w%d" % (base, i), data)
            zk.get("%s/warm/w%d" % (base, i))
            if time.perf_counter() > end:
                raise PhaseTimeout("warm-up")
        delete_subtree(driver, zk, base + "/warm", args.max_seconds)
        out = []
        zk.ensure_path(base + "/s")
        paths = ["%s/s/n%06d" % (base, i) for i in range(args.n)]
        out.append(sync_phase("sync-create", lambda p: zk.create(p, data), paths, args.max_seconds, meter))
        out.append(sync_phase("sync-get", lambda p: zk.get(p), paths, args.max_seconds, meter))
        out.append(sync_phase("sync-set", lambda p: zk.set(p, data2), paths, args.max_seconds, meter))
        out.append(sync_phase("sync-exists", lambda p: zk.exists(p), paths, args.max_seconds, meter))
        zk.ensure_path(base + "/a")
        apaths = ["%s/a/n%06d" % (base, i) for i in range(args.m)]
        out.append(async_phase("async-create", driver, lambda p: zk.create_async(p, data), apaths,
                               args.max_seconds, meter))
        out.append(async_phase("async-get", driver, lambda p: zk.get_async(p), apaths,
                               args.max_seconds, meter))
        out.append(threads_phase("threads-get-shared", zk, paths, args.threads, args.max_seconds, meter))
        out.append(sync_phase("sync-delete", lambda p: zk.delete(p), paths, args.max_seconds, meter))
        delete_subtree(driver, zk, base, args.max_seconds)
        out.append(connect_phase(driver, CONNECTS, args.max_seconds, meter))
        return out
    finally:
        driver.close(zk)


# ---- printing ----

def print_run(label, run_no, res):
    print("%s run %d" % (label, run_no))
    for x in res:
        lat = ("p50 %.3f ms  p99 %.3f ms  mean %.3f ms  max %.3f ms" % (
            x["p50_ms"], x["p99_ms"], x["mean_ms"], x["max_ms"])) if "p50_ms" in x else ""
        cpu = "cpu client %.2f s" % x["client_cpu_s"]
        if "server_cpu_s" in x:
            cpu += ", server %.2f s" % x["server_cpu_s"]
        print("  %-24s %7d ops %8.3f s %10.1f ops/s  %-52s [%s]" % (
            x["phase"], x["ops"], x["seconds"], x["ops_per_s"], lat, cpu))


def medians(allruns):
    out = []
    for i, x in enumerate(allruns[0]):
        col = [run[i] for run in allruns]
        m = {"phase": x["phase"], "ops_per_s": statistics.median(c["ops_per_s"] for c in col)}
        for k in ("p50_ms", "p99_ms", "client_cpu_s", "server_cpu_s"):
            if k in x:
                m[k] = statistics.median(c[k] for c in col)
        out.append(m)
    return out


def print_medians(label, meds, runs):
    print("%s median over %d runs" % (label, runs))
    for m in meds:
        line = "  %-24s %10.1f ops/s" % (m["phase"], m["ops_per_s"])
        if "p50_ms" in m:
            line += "  p50 %.3f ms  p99 %.3f ms" % (m["p50_ms"], m["p99_ms"])
        print(line)


def _base(phase):
    return phase.split("(")[0]


def print_comparison(meds, ref_meds, title, names=("dcli", "ZK"), targets=(PIPELINED_TARGET, SYNC_P50_TARGET),
                     issue="issue"):
    """meds / ref_meds per line, and the targets (pipelined ops/s at least targets[0]x, sync p50 at
    most targets[1]x; None: no targets); returns [(line, ratio, target, met)]."""
    ref = {_base(m["phase"]): m for m in ref_meds}
    pipe_t, sync_t = targets or (None, None)
    print()
    print(title)
    print(("  %-24s %13s %13s %7s  %10s %10s %8s   %s" % (
        "phase", names[0] + " ops/s", names[1] + " ops/s", "ratio", names[0] + " p50", names[1] + " p50",
        "ratio", "target (%s)" % issue if targets else "")).rstrip())
    verdicts = []
    for m in meds:
        name = _base(m["phase"])
        z = ref.get(name)
        if z is None:
            continue
        ratio = m["ops_per_s"] / z["ops_per_s"]
        lat = "  %10s %10s %7s" % ("", "", "")
        p50_ratio = None
        if "p50_ms" in m and "p50_ms" in z:
            p50_ratio = m["p50_ms"] / z["p50_ms"]
            lat = "  %7.3f ms %7.3f ms %6.3fx" % (m["p50_ms"], z["p50_ms"], p50_ratio)
        target = "(no target)" if targets else ""
        if pipe_t and name in PIPELINED:
            met = ratio >= pipe_t
            target = "ops/s >= %.1fx %s: %s" % (pipe_t, names[1], "met" if met else "NOT MET")
            verdicts.append((m["phase"], ratio, "ops/s >= %.1fx" % pipe_t, met))
        elif sync_t and name.startswith("sync-") and p50_ratio is not None:
            met = p50_ratio <= sync_t
            target = "p50 <= %.1fx %s: %s" % (sync_t, names[1], "met" if met else "NOT MET")
            verdicts.append((m["phase"], p50_ratio, "p50 <= %.1fx" % sync_t, met))
        print(("  %-24s %13.1f %13.1f %6.2fx%s   %s" % (m["phase"], m["ops_per_s"], z["ops_per_s"], ratio, lat,
                                                        target)).rstrip())
    if targets:
        print("targets (%s): %d of %d lines met (pipelined throughput >= %.1fx ZooKeeper; sync p50 <= %.1fx ZooKeeper)"
              % (issue, sum(1 for v in verdicts if v[3]), len(verdicts), pipe_t, sync_t))
    for phase, value, rule, met in verdicts:
        print("  %-24s %6.3fx  %-14s %s" % (phase, value, rule, "met" if met else "NOT MET"))
    return verdicts


def print_machine_check(zk_meds):
    """ZooKeeper now against the recorded figures: how this machine compares with the reference's."""
    parts = []
    for m in zk_meds:
        ref = REFERENCE.get(_base(m["phase"]))
        if ref:
            parts.append("%s %.2f" % (_base(m["phase"]), m["ops_per_s"] / ref["ops_per_s"]))
    print("zookeeper now / recorded reference (ops/s): " + ", ".join(parts))


# ---- main ----

def machine_busy_s():
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat; None elsewhere."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")     # all but idle and iowait


def run_once(label, driver, args, run_no):
    """One run, printed; with the CPU it cost, and what everything else on the machine used meanwhile."""
    t0, c0, s0, m0 = time.perf_counter(), time.process_time(), proc_cpu_s(driver.server_pid), machine_busy_s()
    res = one_run(driver, args, run_no)
    wall, client = time.perf_counter() - t0, time.process_time() - c0
    s1, m1 = proc_cpu_s(driver.server_pid), machine_busy_s()
    print_run(label, run_no, res)
    line = "  (whole run %.1f s wall; cpu client %.1f s" % (wall, client)
    if s0 is not None and s1 is not None:
        line += ", server %.1f s" % (s1 - s0)
        if m0 is not None and m1 is not None:
            line += ", everything else on the machine %.1f s" % max(m1 - m0 - client - (s1 - s0), 0.0)
    print(line + ")")
    sys.stdout.flush()
    return res


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="znodes in the sync and threads phases")
    ap.add_argument("--m", type=int, default=20000, help="requests in each async phase")
    ap.add_argument("--size", type=int, default=16, help="bytes of data per znode")
    ap.add_argument("--threads", type=int, default=8, help="threads sharing one client")
    ap.add_argument("--repeat", type=int, default=3, help="runs per system; medians are over these")
    ap.add_argument("--server", metavar="HOST:PORT", help="use this dcli server instead of starting one")
    ap.add_argument("--no-zookeeper", action="store_true", help="do not start ZooKeeper; compare with the recorded figures")
    ap.add_argument("--zk-server", metavar="HOST:PORT", help="with --server: that server's ZooKeeper port (--zk-listen)")
    ap.add_argument("--no-zk-protocol", action="store_true",
                    help="do not run the workload through kazoo against dcli's ZooKeeper port")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="bound on each phase (and each start-up)")
    ap.add_argument("--root", default="/bench", help="parent znode of each run's subtree")
    ap.add_argument("--json", metavar="FILE", help="write every run's figures here")
    ap.add_argument("--tls", action="store_true", help="a plaintext dcli server beside a TLS one, no ZooKeeper")
    a = ap.parse_args(argv)
    if a.tls and a.server:
        ap.error("--tls starts its own plaintext and TLS servers: leave out --server")
    if a.zk_server and not a.server:
        ap.error("--zk-server names the ZooKeeper port of the server given by --server")
    if min(a.n, a.m, a.threads, a.repeat) < 1 or a.size < 0 or a.max_seconds <= 0:
        ap.error("--n, --m, --threads, --repeat must be positive; --size >= 0; --max-seconds > 0")
    if a.n < a.threads:
        ap.error("--n must be at least --threads")
    return a


def tls_runs(args, workdir, servers):
    """--tls: the workload against a plaintext server and a TLS one, alternating run by run."""
    import tls_setup as T

    certs = T.make_certs(workdir)
    drivers, cacert = {}, {"plaintext": None, "tls": certs.cacert}
    for mode, extra in (("plaintext", ()), ("tls", certs.server_args)):
        s = start_dcli(workdir, "dcli-" + mode, extra)
        servers.append(s)
        drivers[mode] = Driver("coordclient", s.address, s.pid)
        print("dcli %s: started server pid %d: %s" % (mode, s.pid, s.banner))
    print("zookeeper: not run with --tls")
    runs = {m: [] for m in T.MODES}
    for r in range(args.repeat):
        for mode in T.MODES:
            with T.client_tls(cacert[mode]):
                runs[mode].append(run_once("dcli " + mode, drivers[mode], args, r))
    print()
    meds = {m: medians(runs[m]) for m in T.MODES}
    for m in T.MODES:
        print_medians("dcli " + m, meds[m], args.repeat)
    rows, cpu = [], []
    for i, (p, t) in enumerate(zip(meds["plaintext"], meds["tls"])):
        name = _base(p["phase"])
        if name in PIPELINED:
            rows.append(T.Row(p["phase"], "throughput", p["ops_per_s"], t["ops_per_s"], "ops/s"))
        elif name == "connect":
            rows.append(T.Row("connect, first answer", "info", p["p50_ms"], t["p50_ms"], "ms"))
        elif "p50_ms" in p:
            rows.append(T.Row(p["phase"] + " p50", "latency", p["p50_ms"], t["p50_ms"], "ms", name.startswith("sync-")))
        per_op = {m: T.median(1e6 * (x[i]["client_cpu_s"] + x[i].get("server_cpu_s", 0.0)) / x[i]["ops"]
                              for x in runs[m]) for m in T.MODES}
        cpu.append(T.Row(p["phase"], "info", per_op["plaintext"], per_op["tls"], "us/op"))
    verdicts = T.print_comparison(rows, args.repeat)
    T.print_table("CPU per operation, client + server, medians (what each message costs)", cpu)
    print("connect: %d client starts per run and server (p50 of each run, median over the runs)" % CONNECTS)
    return dict(runs=runs, verdicts=verdicts)


def start_systems(args, workdir, servers):
    """{run label: Driver} in the order the runs alternate, and ZooKeeper's label (None if not run):
    dcli through CoordClient; dcli's ZooKeeper port and ZooKeeper, each through kazoo."""
    try:
        import kazoo
    except ImportError:
        kazoo = None
    want_zk_port = kazoo is not None and not args.no_zk_protocol
    systems, zk_label = {}, None
    if args.server:
        systems["dcli"] = Driver("coordclient", args.server, None)
        print("dcli: server at %s (not started here)" % args.server)
        zk_port = args.zk_server if want_zk_port else None
    else:
        s = start_dcli(workdir, zk_listen="127.0.0.1:0" if want_zk_port else "none")
        servers.append(s)
        systems["dcli"] = Driver("coordclient", s.address, s.pid)
        print("dcli: started server pid %d on %s, data in %s (fsync always)" % (s.pid, s.address, workdir))
        zk_port = s.zk_address or None
    if zk_port:
        systems["dcli-zk"] = Driver("kazoo", zk_port, systems["dcli"].server_pid)
        print("dcli-zk: the same server's ZooKeeper protocol on %s, through kazoo %s" % (zk_port, kazoo.__version__))
    elif args.no_zk_protocol or args.server:
        print("dcli-zk: not measured (%s)" % ("--no-zk-protocol" if args.no_zk_protocol else "no --zk-server"))
    else:
        print("dcli-zk: not measured: kazoo is not installed")
    if not args.no_zookeeper:
        found = find_zookeeper()
        if found and kazoo:
            z = start_zookeeper(found, workdir)
            servers.append(z)
            systems["zookeeper"] = Driver("kazoo", z.address, z.pid)
            zk_label = "ZooKeeper %s through kazoo %s (measured now, same machine)" % (
                zookeeper_version(int(z.address.rsplit(":", 1)[1])), kazoo.__version__)
            print("zookeeper: started pid %d on %s (%s)" % (z.pid, z.address, " ".join(map(str, found))))
        else:
            why = "ZooKeeper (Debian package `zookeeper`)" if not found else "kazoo"
            print("zookeeper: not measured: %s is not installed" % why)
    return systems, zk_label


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)      # so the servers below are stopped
    workdir = Path(tempfile.mkdtemp(prefix="dcli-coord-bench-"))
    servers = []
    report = {"args": vars(args)}
    try:
        print("workload: n=%d m=%d size=%d threads=%d repeat=%d; %d CPUs; python %s" % (
            args.n, args.m, args.size, args.threads, args.repeat, os.cpu_count() or 0,
            sys.version.split()[0]))
        if args.tls:
            report["tls"] = tls_runs(args, workdir, servers)
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=1))
            return 0
        systems, zk_label = start_systems(args, workdir, servers)
        sys.stdout.flush()
        # runs alternate between the systems, so drift on the machine hits them all alike
        runs = {name: [] for name in systems}
        for r in range(args.repeat):
            for name, driver in systems.items():
                runs[name].append(run_once(name, driver, args, r))
        report.update((k.replace("-", "_"), v) for k, v in runs.items())
        report.setdefault("zookeeper", None)
        print()
        meds = {name: medians(rs) for name, rs in runs.items()}
        for name, m in meds.items():
            print_medians(name, m, args.repeat)
        if "zookeeper" in meds:
            print_machine_check(meds["zookeeper"])
            zk_meds = meds["zookeeper"]
        else:
            zk_meds = [dict(phase=k, **v) for k, v in REFERENCE.items()]
            zk_label = ("RECORDED reference figures (shared/reference/zookeeper.md §7.3: ZooKeeper 3.8.0, "
                        "kazoo 2.11.0, median of 3 runs on the 2-core build machine), NOT measured now")
        report["verdicts"] = print_comparison(meds["dcli"], zk_meds, "dcli vs %s" % zk_label)
        if "dcli-zk" in meds:
            report["zk_protocol_verdicts"] = print_comparison(
                meds["dcli-zk"], zk_meds, "dcli's ZooKeeper protocol through kazoo vs %s" % zk_label,
                names=("dcli-zk", "ZK"), targets=ZK_PROTOCOL_TARGETS, issue="issue 18")
            print_comparison(meds["dcli-zk"], meds["dcli"],
                             "dcli's ZooKeeper protocol through kazoo vs dcli's gRPC through CoordClient (same server)",
                             names=("dcli-zk", "gRPC"), targets=None)
        if "zookeeper" in meds and (args.n < 5000 or args.m < 20000):
            print("note: with --n below 5000 or --m below 20000 ZooKeeper's JVM is still warming up (JIT); "
                  "its figures, and so the ratios, are not comparable with the reference's")
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 0
    except (BenchError, PhaseTimeout) as e:
        kind = "phase exceeded --max-seconds: " if isinstance(e, PhaseTimeout) else ""
        print("benchmark failed: %s%s" % (kind, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
