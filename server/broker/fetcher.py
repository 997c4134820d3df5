"""A follower's replica fetcher: for every partition this broker follows with one leader, fetch
from that leader (Kafka's ReplicaFetcherThread).

    fetcher = ReplicaFetcher(broker, leader=2)    # starts its task on the running loop
    fetcher.add(("chat", 0), partition)           # truncates first, then fetches
    fetcher.remove(("chat", 0)); fetcher.stop()

Before fetching a partition it asks the leader where this replica's last leader epoch ends
(OffsetForLeaderEpoch) and truncates there (KIP-101, KIP-279); then it fetches with
`replica_id` = this broker and appends the leader's batches as stored (offsets, leader epochs
and producer state with them), moving the follower's high watermark to the leader's.
"""
from __future__ import annotations

import asyncio
import logging

from dcli.v1 import broker_pb2 as pb
from dcli.wire import errors
from dcli.wire.errors import BrokerError
from dcli_server.broker.partition import Partition
from dcli_server.broker.peers import PeerUnreachable

log = logging.getLogger("dcli.replication")

FETCH_WAIT_MS = 500                    # replica.fetch.wait.max.ms
FETCH_MAX_BYTES = 16 << 20             # replica.fetch.response.max.bytes (lower than Kafka's 10 MiB x n)
PARTITION_FETCH_BYTES = 1 << 20        # replica.fetch.max.bytes
RETRY_S = 0.1                          # replica.fetch.backoff.ms is 1000; loopback clusters recover faster


class ReplicaFetcher:
    """Fetches, for every partition `broker` (a Broker) follows with one leader, from that leader."""

    def __init__(self, broker, leader: int):
        self.broker = broker
        self.leader = leader
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._truncate: set[tuple[str, int]] = set()
        self._wake = asyncio.Event()
        self.stopped = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def idle(self) -> bool:
        return not self.partitions

    def add(self, key: tuple[str, int], p: Partition) -> None:
        self.partitions[key] = p
        self._truncate.add(key)
        self._wake.set()

    def remove(self, key: tuple[str, int]) -> None:
        self.partitions.pop(key, None)
        self._truncate.discard(key)

    def stop(self) -> None:
        self.stopped = True
        self._task.cancel()

    async def _run(self) -> None:
        link = self.broker.peers.link(self.leader)
        me = self.broker.broker_id
        try:
            while not self.stopped:
                if self.leader not in self.broker.membership.brokers:
                    await asyncio.sleep(RETRY_S)          # the leader is not registered (yet)
                    continue
                if not self.partitions:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                try:
                    for key in list(self._truncate):
                        await self._truncate_one(link, key)
                    await self._fetch(link, me)
                except PeerUnreachable as e:
                    log.debug("broker %s: fetch from %s: %s", me, self.leader, e)
                    await asyncio.sleep(RETRY_S)
                except errors.DcliError as e:          # the leader refused: not (yet) the leader, ...
                    log.info("broker %s: fetch from %s: %s", me, self.leader, e)
                    await asyncio.sleep(RETRY_S)
        except asyncio.CancelledError:
            pass
        finally:
            await link.close()

    async def _truncate_one(self, link, key: tuple[str, int]) -> None:
        """Truncate to where this replica's log diverges from the leader's (KIP-101, KIP-279)."""
        p = self.partitions.get(key)
        if p is None:
            self._truncate.discard(key)
            return
        epoch = p.last_epoch
        if epoch >= 0:
            reply = await link.offset_for_leader_epoch(pb.OffsetForLeaderEpochRequest(
                replica_id=self.broker.broker_id, topic=key[0], partition=key[1],
                current_leader_epoch=p.leader_epoch, leader_epoch=epoch), timeout=5)
            if reply.error_code:
                raise errors.kafka_error(reply.error_code, reply.error_message)
            if self.partitions.get(key) is not p:
                return
            if reply.leader_epoch < 0:
                target = reply.end_offset
            else:
                target = min(reply.end_offset, p.epoch_end(reply.leader_epoch)[1])
            if target < p.log_end_offset:
                log.info("broker %s: %s truncates from %s to %s (leader %s, epoch %s)", self.broker.broker_id,
                         p.name, p.log_end_offset, target, self.leader, p.leader_epoch)
                p.truncate(target)
        self._truncate.discard(key)

    async def _fetch(self, link, me: int) -> None:
        wanted = {k: p for k, p in self.partitions.items() if k not in self._truncate}
        if not wanted:
            return
        request = pb.FetchRequest(replica_id=me, max_wait_ms=FETCH_WAIT_MS, min_bytes=1, max_bytes=FETCH_MAX_BYTES,
                                  partitions=[pb.FetchPartition(topic=t, partition=i, fetch_offset=p.log_end_offset,
                                                                partition_max_bytes=PARTITION_FETCH_BYTES,
                                                                current_leader_epoch=p.leader_epoch)
                                              for (t, i), p in wanted.items()])
        reply = await link.fetch(request, timeout=FETCH_WAIT_MS / 1000 + 10)
        backoff = False
        for r in reply.partitions:
            key = (r.topic, r.partition)
            p = self.partitions.get(key)
            if p is None or p is not wanted.get(key) or p.failed is not None:
                continue
            if r.error_code == errors.OffsetOutOfRangeError.kafka_code:
                self._out_of_range(p, r)
                continue
            if r.error_code:
                backoff = True          # not leader (yet), fenced epoch: the tree will say more
                continue
            if r.records:
                try:
                    if p.append_replicated(r.records):
                        self.broker.replica_appended(p)
                except (BrokerError, OSError) as e:
                    log.error("broker %s: appending %s from %s failed: %s", me, p.name, self.leader, e)
                    backoff = True
                    continue
            p.set_high_watermark(min(r.high_watermark, p.log_end_offset))
        if backoff:
            await asyncio.sleep(RETRY_S)

    def _out_of_range(self, p: Partition, r) -> None:
        if p.log_end_offset < r.log_start_offset:
            log.info("broker %s: %s starts over at the leader's log start %s", self.broker.broker_id, p.name,
                     r.log_start_offset)
            p.restart_at(r.log_start_offset)
        elif p.log_end_offset > r.log_end_offset >= 0:
            p.truncate(r.log_end_offset)
