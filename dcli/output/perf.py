"""The perf tests' report lines: kafka-producer-perf-test's (ProducerPerformance) and
kafka-consumer-perf-test's (ConsumerPerformance), in their words and number formats, written to
the stream the test was given (stdout for the commands).

    report = PerfPrinter(sys.stdout)
    report.producer_window(count=5000, nbytes=500000, total_latency=9000, max_latency=12, elapsed_ms=5000)
    # 5000 records sent, 1000.0 records/sec (0.10 MB/sec), 1.8 ms avg latency, 12.0 ms max latency.

The perf tests print the same text under every -w: scripts parse these lines as Kafka's.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

MB = 1024 * 1024


def java_date(ms: float, pattern: str) -> str:
    """`ms` (epoch) in a SimpleDateFormat pattern's common letters (default yyyy-MM-dd HH:mm:ss:SSS)."""
    t = time.localtime(ms / 1000)
    parts = {"yyyy": f"{t.tm_year:04d}", "MM": f"{t.tm_mon:02d}", "dd": f"{t.tm_mday:02d}",
             "HH": f"{t.tm_hour:02d}", "mm": f"{t.tm_min:02d}", "ss": f"{t.tm_sec:02d}",
             "SSS": f"{int(ms % 1000):03d}"}
    out = pattern
    for token in ("yyyy", "SSS", "MM", "dd", "HH", "mm", "ss"):
        out = out.replace(token, parts[token])
    return out


def percentiles(latencies: list[int]) -> tuple[int, int, int, int]:
    """ProducerPerformance's 50th, 95th, 99th and 99.9th of the sampled latencies."""
    ordered = sorted(latencies) or [0]
    return tuple(ordered[min(len(ordered) - 1, int(p * len(ordered)))]     # type: ignore[return-value]
                 for p in (0.5, 0.95, 0.99, 0.999))


class PerfPrinter:
    def __init__(self, out: TextIO):
        self.out = out

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")

    # ---- producer ----

    def reading_payloads(self, path: str) -> None:
        self._line(f"Reading payloads from: {path}")

    def payloads_read(self, count: int) -> None:
        self._line(f"Number of messages read: {count}")

    def producer_window(self, count: int, nbytes: int, total_latency: int, max_latency: int,
                        elapsed_ms: int) -> None:
        """One 5 s window, printed as it closes."""
        elapsed = max(1, elapsed_ms)
        self._line(f"{count} records sent, {1000.0 * count / elapsed:.1f} records/sec "
                   f"({1000.0 * nbytes / elapsed / MB:.2f} MB/sec), "
                   f"{total_latency / max(1, count):.1f} ms avg latency, "
                   f"{float(max_latency):.1f} ms max latency.")
        self.out.flush()

    def producer_total(self, count: int, nbytes: int, total_latency: int, max_latency: int,
                       elapsed_ms: int, latencies: list[int]) -> None:
        elapsed = max(1, elapsed_ms)
        p50, p95, p99, p999 = percentiles(latencies)
        self._line(f"{count} records sent, {1000.0 * count / elapsed:.1f} records/sec "
                   f"({1000.0 * nbytes / elapsed / MB:.2f} MB/sec), {total_latency / max(1, count):.2f} ms "
                   f"avg latency, {float(max_latency):.2f} ms max latency, {p50} ms 50th, {p95} ms 95th, "
                   f"{p99} ms 99th, {p999} ms 99.9th.")

    def send_errors(self, topic: str, errors: list[BaseException]) -> None:
        """The first five send errors, on stderr."""
        for e in errors[:5]:
            sys.stderr.write(f"Error when sending message to topic {topic}: {e}\n")

    def metrics(self, metrics: dict[str, float]) -> None:
        """ToolsUtils.printMetrics: a `Metric Name` / `Value` table, names sorted."""
        width = max(len(k) for k in metrics)
        self.out.write(f"\n{'Metric Name':<{width}}   Value\n")
        for name in sorted(metrics):
            self.out.write(f"{name:<{width}} : {metrics[name]:.3f}\n")

    # ---- consumer ----

    def consumer_header(self, detailed: bool) -> None:
        first = "time, threadId" if detailed else "start.time, end.time"
        self._line(f"{first}, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                   "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")

    def consumer_progress(self, nbytes: int, last_bytes: int, read: int, last_read: int, start_ms: float,
                          end_ms: float, date_format: str, join_round_ms: int) -> None:
        """printBasicProgress + printExtendedProgress: one detailed-stats line (thread id 0)."""
        elapsed = max(1e-9, end_ms - start_ms)
        interval_mb = (nbytes - last_bytes) / MB
        fetch_ms = int(end_ms - start_ms) - join_round_ms
        fetch_mb_s = 1000.0 * interval_mb / fetch_ms if fetch_ms > 0 else 0.0
        fetch_n_s = 1000.0 * (read - last_read) / fetch_ms if fetch_ms > 0 else 0.0
        self._line(f"{java_date(end_ms, date_format)}, 0, {nbytes / MB:.4f}, {1000.0 * interval_mb / elapsed:.4f}, "
                   f"{read}, {(read - last_read) / elapsed * 1000.0:.4f}, {join_round_ms}, {fetch_ms}, "
                   f"{fetch_mb_s:.4f}, {fetch_n_s:.4f}")
        self.out.flush()

    def consumer_timed_out(self, timeout_ms: int) -> None:
        self._line(f"WARNING: Exiting before consuming the expected number of messages: timeout "
                   f"({timeout_ms} ms) exceeded. You can use the --timeout option to increase the timeout.")

    def consumer_total(self, start_ms: float, end_ms: float, nbytes: int, read: int, join_ms: int,
                       fetch_ms: int, date_format: str) -> None:
        elapsed_s = max(1e-9, (end_ms - start_ms) / 1000)
        mb = nbytes / MB
        fetch_s = fetch_ms / 1000
        self._line(f"{java_date(start_ms, date_format)}, {java_date(end_ms, date_format)}, {mb:.4f}, "
                   f"{mb / elapsed_s:.4f}, {read}, {read / elapsed_s:.4f}, {join_ms}, {fetch_ms}, "
                   f"{mb / fetch_s if fetch_s > 0 else 0.0:.4f}, {read / fetch_s if fetch_s > 0 else 0.0:.4f}")
