"""TLS against plaintext for the benchmarks' `--tls`: the certificates, the server flags, the
client's side, and the side-by-side table with the ratio TLS / plaintext.

The certificates come from the local CA (dcli/cluster/certs.py) in the benchmark's temporary
directory: a CA and one node certificate naming 127.0.0.1. The TLS server is started with
etcd's flags (`--cert-file`, `--key-file`, `--trusted-ca-file`); the client trusts the CA through
DCLI_CACERT, which every channel of dcli.client reads when it opens (dcli/client/tls.py).

    certs = make_certs(workdir)
    start_server(..., extra=certs.server_args)
    with client_tls(certs.cacert):          # None: plaintext, whatever the environment says
        run_the_workload()

Issue 17's targets: synchronous latency (p50) at most 1.3x plaintext's, pipelined throughput at
least 0.8x plaintext's.
"""
from __future__ import annotations

import contextlib
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

LATENCY_TARGET = 1.3       # TLS p50 / plaintext p50, at most
THROUGHPUT_TARGET = 0.8    # TLS ops/s / plaintext ops/s, at least
MODES = ("plaintext", "tls")


@dataclass(frozen=True)
class BenchCerts:
    cacert: str
    cert: str
    key: str

    @property
    def server_args(self) -> list[str]:
        return ["--cert-file", self.cert, "--key-file", self.key, "--trusted-ca-file", self.cacert]


def make_certs(workdir: Path) -> BenchCerts:
    """A local CA and a node certificate for 127.0.0.1, under workdir/certs."""
    from dcli.cluster.certs import LocalCA

    ca = LocalCA.create(workdir / "certs", days=2)
    node = ca.issue("bench-node", server=True, client=True, days=2)
    return BenchCerts(str(ca.cert_path), str(node.cert), str(node.key))


@contextlib.contextmanager
def client_tls(cacert: str | None):
    """Channels opened inside speak TLS trusting `cacert`, or plaintext when it is None. The
    environment is put back afterwards."""
    saved = {k: os.environ.get(k) for k in ("DCLI_CACERT", "DCLI_CERT", "DCLI_KEY")}
    for k in saved:
        os.environ.pop(k, None)
    if cacert:
        os.environ["DCLI_CACERT"] = cacert
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Row:
    """One line of the comparison: `kind` is "latency" (ms, lower is better), "throughput"
    (per second, higher is better) or "info" (no target). `target` says whether the issue's
    target applies to it."""
    name: str
    kind: str
    plaintext: float
    tls: float
    unit: str
    target: bool = True

    @property
    def ratio(self) -> float:
        return self.tls / self.plaintext if self.plaintext else float("inf")

    @property
    def verdict(self) -> str:
        if not self.target or self.kind == "info":
            return "(no target)"
        if self.kind == "latency":
            return "p50 <= %.1fx: %s" % (LATENCY_TARGET, "met" if self.ratio <= LATENCY_TARGET else "NOT MET")
        return ">= %.1fx: %s" % (THROUGHPUT_TARGET, "met" if self.ratio >= THROUGHPUT_TARGET else "NOT MET")

    @property
    def met(self) -> bool | None:
        if not self.target or self.kind == "info":
            return None
        return self.ratio <= LATENCY_TARGET if self.kind == "latency" else self.ratio >= THROUGHPUT_TARGET


def median(values) -> float:
    return statistics.median(values)


def print_table(title: str, rows: list[Row]) -> None:
    print()
    print(title)
    print("  %-26s %16s %16s %8s   %s" % ("line", "plaintext", "TLS", "TLS/pt", "target (issue 17)"))
    for r in rows:
        fmt = "{:.3f} {}" if r.unit == "ms" else "{:,.0f} {}" if r.unit.endswith("/s") else "{:.1f} {}"
        print("  %-26s %16s %16s %7.2fx   %s" % (
            r.name, fmt.format(r.plaintext, r.unit), fmt.format(r.tls, r.unit), r.ratio, r.verdict))


def print_comparison(rows: list[Row], runs: int) -> list[dict]:
    """The table, TLS beside plaintext, medians over `runs` runs each; returns the verdicts."""
    print_table("TLS vs plaintext (medians over %d runs each, the runs alternating)" % runs, rows)
    judged = [r for r in rows if r.met is not None]
    print("targets: %d of %d lines met (sync p50 <= %.1fx plaintext; pipelined throughput >= %.1fx plaintext)"
          % (sum(1 for r in judged if r.met), len(judged), LATENCY_TARGET, THROUGHPUT_TARGET))
    return [dict(line=r.name, kind=r.kind, plaintext=r.plaintext, tls=r.tls, ratio=round(r.ratio, 3),
                 met=r.met) for r in rows]
