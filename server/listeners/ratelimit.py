"""RateLimitedLog: what a listener logs about bad or failed traffic, at most one line per kind.

A peer or a client that sends garbage, or a flood of requests that all fail the same way, must
not flood the log: each kind of line (its key: the method, the peer, the address) is logged at
most once per `interval` seconds, and the next one says how many were held back. A traceback,
where there is one, goes to the debug level only.

    limited = RateLimitedLog(logging.getLogger("dcli.server"))
    limited.warning(f"frame:{host}", "node %d (%s): bad frame, closing: %s", peer, host, e)
"""
from __future__ import annotations

import logging
import time

INTERVAL_S = 10.0
MAX_KEYS = 1024             # keys are methods, peers and hosts; bounded all the same


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = INTERVAL_S, clock=time.monotonic):
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def clear(self) -> None:
        """Forget what was logged: the next line of every key is logged."""
        self._last.clear()

    def warning(self, key: str, message: str, *args, exc_info: BaseException | None = None) -> bool:
        return self.log(logging.WARNING, key, message, *args, exc_info=exc_info)

    def info(self, key: str, message: str, *args) -> bool:
        return self.log(logging.INFO, key, message, *args)

    def log(self, level: int, key: str, message: str, *args, exc_info: BaseException | None = None) -> bool:
        """Log (True) unless `key` was logged within the interval (then counted: False)."""
        now = self._clock()
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self._interval:
            self._last[key] = (last, held + 1)
            return False
        if len(self._last) >= MAX_KEYS:
            self._last.clear()
        self._last[key] = (now, 0)
        if held:
            message += f" ({held} more like it not logged)"
        self._log.log(level, message, *args)
        if exc_info is not None:
            self._log.debug("%s", key, exc_info=exc_info)
        return True
