"""Producer ids for idempotent producers (InitProducerId): a mixin of Broker (broker.py).

Ids come in blocks reserved in the coordination tree (/latest_producer_id_block, as Kafka kept
them), each recorded there before any id of it is handed out, so that no two brokers hand out
the same id, and none is handed out twice after a crash (the rest of a block is skipped).

    pid, epoch = await broker.init_producer_id()                 # a new id, epoch 0
    pid, epoch = await broker.init_producer_id(pid, epoch)       # the same id, epoch + 1 (KIP-360)
"""
from __future__ import annotations

import asyncio
import json

from dcli.wire import errors
from dcli.wire.errors import CoordinatorNotAvailableError, InvalidProducerIdMappingError, InvalidRequestError
from dcli_server.broker.replication import READY_WAIT_S

PRODUCER_ID_BLOCK = 1000                 # ids reserved in the tree at a time
PRODUCER_ID_BLOCK_PATH = "/latest_producer_id_block"
MAX_PRODUCER_EPOCH = 32766               # Short.MAX_VALUE - 1: the next bump takes a new id


class ProducerIds:
    """The producer id side of Broker; uses its `membership` and `broker_id`."""

    def __init__(self) -> None:
        self._pid_lock = asyncio.Lock()
        self._next_pid = 0
        self._pid_block_end = 0

    async def init_producer_id(self, producer_id: int = -1, producer_epoch: int = -1) -> tuple[int, int]:
        """(producer id, epoch): a new id at epoch 0, or the given id with its epoch bumped
        (KIP-360), or a new id when the epoch would overflow. Ids are reserved on disk in
        blocks reserved in the tree (/latest_producer_id_block, as Kafka kept them) before they are
        handed out, so no two brokers hand out the same id, even after a crash."""
        if producer_id >= 0:
            await self._check_producer_id(producer_id)
            if producer_epoch < 0:
                raise InvalidRequestError(message="A producer id needs its current epoch to be bumped.")
            if producer_epoch < MAX_PRODUCER_EPOCH:
                return producer_id, producer_epoch + 1
        async with self._pid_lock:
            if self._next_pid >= self._pid_block_end:
                self._next_pid, self._pid_block_end = await self._reserve_producer_ids()
            pid = self._next_pid
            self._next_pid += 1
        return pid, 0

    async def _check_producer_id(self, producer_id: int) -> None:
        """An id this broker or another handed out: below the end of the tree's last block."""
        if producer_id < self._pid_block_end:
            return
        try:
            end = await asyncio.to_thread(self._tree_block_end)
        except errors.DcliError as e:
            raise CoordinatorNotAvailableError(message=f"The producer id blocks cannot be read: {e}") from None
        if producer_id >= end:
            raise InvalidProducerIdMappingError(message=(
                f"Producer id {producer_id} was never handed out by this cluster."))

    def _tree_block_end(self) -> int:
        """The end of the last producer id block reserved in the tree (0: none yet)."""
        try:
            data, _ = self.membership.client(wait=READY_WAIT_S).get(PRODUCER_ID_BLOCK_PATH)
        except errors.NoNodeError:
            return 0
        return int(json.loads(data.decode())["block_end"]) + 1

    async def _reserve_producer_ids(self) -> tuple[int, int]:
        """The next block of ids, [start, end), recorded in the tree before any is handed out."""
        try:
            return await asyncio.to_thread(self._reserve_in_tree)
        except errors.DcliError as e:       # the tree is between leaders: the client tries again
            raise CoordinatorNotAvailableError(message=f"No producer id block could be reserved: {e}") from None

    def _reserve_in_tree(self) -> tuple[int, int]:
        client = self.membership.client(wait=READY_WAIT_S)
        while True:
            try:
                data, stat = client.get(PRODUCER_ID_BLOCK_PATH)
                start = int(json.loads(data.decode())["block_end"]) + 1
            except errors.NoNodeError:
                start, stat = 0, None
            doc = encode_producer_id_block(self.broker_id, start)
            try:
                if stat is None:
                    client.create(PRODUCER_ID_BLOCK_PATH, doc)
                else:
                    client.set(PRODUCER_ID_BLOCK_PATH, doc, stat.version)
                return start, start + PRODUCER_ID_BLOCK
            except (errors.BadVersionError, errors.NodeExistsError):
                continue            # another broker took this block first


def encode_producer_id_block(broker_id: int, start: int) -> bytes:
    """/latest_producer_id_block as Kafka wrote it: the block [start, start + PRODUCER_ID_BLOCK)."""
    return json.dumps({"version": 1, "broker": broker_id, "block_start": str(start),
                       "block_end": str(start + PRODUCER_ID_BLOCK - 1)}).encode()
