"""Where the Ready loop's fsync runs: on the event loop while the disk is fast, in a thread
while it is slow, and back on the loop once a probe finds it fast again."""
import asyncio
import threading
import time
import types

from dcli_server.cluster import replica as replica_module
from dcli_server.cluster.replica import INLINE_FSYNC_S, PROBE_FSYNC_EVERY, Replica, ReplicaConfig

FAST = INLINE_FSYNC_S / 20
SLOW = INLINE_FSYNC_S * 5


def test_fsync_runs_on_the_loop_while_fast_in_a_thread_while_slow(tmp_path, monkeypatch):
    replica = Replica(ReplicaConfig(node_id=1, peers={1: "127.0.0.1:1"}, directory=tmp_path),
                      apply=lambda snapshot, entries: None, on_state=lambda soft: None)
    clock = [0.0]
    cost = [FAST]
    on_loop: list[bool] = []
    loop_thread = threading.get_ident()

    def sync() -> None:                 # the disk: each fsync moves the replica's clock by `cost`
        on_loop.append(threading.get_ident() == loop_thread)
        clock[0] += cost[0]

    monkeypatch.setattr(replica.storage, "sync", sync)
    monkeypatch.setattr(replica_module, "time", types.SimpleNamespace(
        perf_counter=lambda: clock[0], monotonic=time.monotonic))

    async def syncs(n: int) -> list[bool]:
        del on_loop[:]
        loop = asyncio.get_running_loop()
        for _ in range(n):
            await replica._sync(loop)
        return list(on_loop)

    async def scenario() -> None:
        assert await syncs(10) == [True] * 10
        cost[0] = SLOW
        # the first slow fsync is timed on the loop; from then on they go to a thread, except
        # every PROBE_FSYNC_EVERY-th, which is timed on the loop again
        assert await syncs(2 * PROBE_FSYNC_EVERY + 3) == (
            [True] + [False] * PROBE_FSYNC_EVERY + [True] + [False] * PROBE_FSYNC_EVERY + [True])
        cost[0] = FAST
        # the next probe finds the disk fast, and the fsyncs after it stay on the loop
        assert await syncs(2 * PROBE_FSYNC_EVERY) == [False] * PROBE_FSYNC_EVERY + [True] * PROBE_FSYNC_EVERY

    asyncio.run(scenario())
    replica.storage.close()
