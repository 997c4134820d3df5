"""One way for a test to wait: ask again until the answer comes, with a generous deadline.

    leader = eventually(lambda: c.leader_id(), 30, "a leader")

Tests never sleep to synchronise: they wait for the event itself (a line, a watch, a future) or,
where no event exists, poll the state with `eventually`. A predicate that raises is asked again
(a node that is still starting may refuse); at the deadline the test fails naming what it
awaited, with the last value and the last error.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import pytest


def eventually(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "",
               interval: float = 0.05, *, errors: tuple[type[BaseException], ...] = (Exception,)) -> Any:
    """predicate's first truthy value, asked every `interval` s until `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    value: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except errors as e:
            last_error = e
        if time.monotonic() >= deadline:
            what = what or getattr(predicate, "__name__", "predicate")
            detail = f"last: {value!r}" + (f", last error: {last_error!r}" if last_error else "")
            pytest.fail(f"not true within {timeout:g} s: {what} ({detail})")
        time.sleep(interval)
