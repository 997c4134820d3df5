"""The event thread: runs watch callbacks, listener calls and ordered completions one at a time."""
from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger("dcli.client")

_STOP = object()


class EventThread:
    """Runs submitted callables in order on one thread.

    `backlog` tells whether anything submitted has not run yet: the IO thread then routes a
    response's completion through here too, so a caller never sees a result before the watch
    event that preceded it on the wire.
    """

    def __init__(self, name: str = "dcli-event"):
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._submitted = 0       # under _lock: the IO thread and close() both submit
        self._done = 0            # written by the event thread only
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> bool:
        return self._submitted != self._done

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn, *args) -> None:
        with self._lock:
            self._submitted += 1
        self._q.put((fn, args))

    def stop(self, wait: bool = True) -> None:
        self._q.put(_STOP)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                log.exception("watch or listener callback failed")
            finally:
                self._done += 1
