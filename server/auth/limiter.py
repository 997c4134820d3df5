"""FailureLimiter: wrong passwords slow the next attempts down, per client address and user.

After `max_failures` failures in a row for a key, the key is refused for `base_s` seconds, and
every further failure doubles that, up to `max_s`; a success clears the key. The keys are one
client address with one user name (guessing one user's password) and the address alone, with a
higher threshold (guessing across users). A refused attempt is answered at once, without
looking at the password, so guessing costs the guesser time and the server nothing. Addresses
are forgotten past `max_keys`, oldest first: the table stays bounded whatever the traffic.

    limiter = FailureLimiter()
    limiter.check(keys)             # TooManyAuthFailuresError while a key is refused
    limiter.failed(keys) / limiter.succeeded(keys)
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from dcli.wire.errors import TooManyAuthFailuresError

MAX_FAILURES = 5            # per address and user
MAX_FAILURES_PER_HOST = 20  # per address, whatever the user
BASE_S = 1.0
MAX_S = 60.0
MAX_KEYS = 10_000


@dataclass
class _Entry:
    failures: int = 0
    refused_until: float = 0.0


def keys_for(host: str, user: str) -> list[tuple[str, int]]:
    """The keys an attempt counts against, each with its threshold."""
    return [(f"{host}|{user}", MAX_FAILURES), (host, MAX_FAILURES_PER_HOST)]


class FailureLimiter:
    def __init__(self, *, base_s: float = BASE_S, max_s: float = MAX_S, max_keys: int = MAX_KEYS,
                 clock=time.monotonic):
        self._base_s = base_s
        self._max_s = max_s
        self._max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def check(self, keys: list[tuple[str, int]]) -> None:
        now = self._clock()
        for key, _ in keys:
            entry = self._entries.get(key)
            if entry is not None and entry.refused_until > now:
                wait = entry.refused_until - now
                raise TooManyAuthFailuresError(
                    "", f"too many failed authentication attempts: try again in {max(1, round(wait))} s")

    def failed(self, keys: list[tuple[str, int]]) -> None:
        now = self._clock()
        for key, threshold in keys:
            entry = self._entries.pop(key, None) or _Entry()
            entry.failures += 1
            if entry.failures >= threshold:
                over = entry.failures - threshold
                entry.refused_until = now + min(self._max_s, self._base_s * (2 ** min(over, 16)))
            self._entries[key] = entry          # most recent last
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)

    def succeeded(self, keys: list[tuple[str, int]]) -> None:
        for key, _ in keys[:1]:             # the address's own count stays: it guessed elsewhere
            self._entries.pop(key, None)
