"""Membership changes: announce the new ring, stream the moved ranges, commit.

The node that takes `dcli kv rebalance` drives the change in three steps (membership.py has the
documents):

1. *announce*: the moving document (epoch e: new nodes, old ones in `previous`) is written to the
   ring's znode (compare-and-set on the version it was computed from: a change made meanwhile
   through another node makes this one fail, to be run again), and the driver waits until every
   member, old and new, holds it (each reads it from its replica of the tree). From the moment
   a node holds it, the writes it coordinates go to the replicas of both rings, and W is
   counted on the old one, which reads still use.
2. *stream*: each node that gains ranges pulls them from every reachable old replica of each
   range, a page at a time (`read_page` on the old replica), and reconciles what it gets; asking all of them, not one, means a write
   acknowledged by any W old replicas arrives even if the others missed it. Writes made during
   the stream reach the new owner directly (step 1).
3. *commit*: epoch e + 1, without `previous`, is written to the znode: reads switch to the new ring.

The node driving the change starts each gaining node's pull and polls it (`Pulls`) until it
ends. Only the ranges whose replica set changes move (`membership.layout_moves`). If a node that
must take ranges cannot be reached the change stops after step 1, safely (reads on the old ring,
writes to both); `dcli kv rebalance` with no change finishes it. Nodes that were down during
the change read the newest document from the tree when they start. A node is added to the ring
only once it is a member of the coordination cluster (`dcli cluster member add`).
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Sequence

from dcli.wire.errors import DcliError, MembershipError, SystemError_
from dcli_server.kv.membership import RingDocument
from dcli_server.kv.ring import RING_SIZE, KeyRange, TokenRange
from dcli_server.kv.ring_znode import RingChangedError
from dcli_server.kv.store import KVStore
from dcli_server.kv.transport import Entry, PeerUnreachable, Progress

if TYPE_CHECKING:
    from dcli_server.kv.node import KVNode

log = logging.getLogger("dcli.kv")

PAGE_ENTRIES = 256              # a page of a moved range: at most this many keys ...
PAGE_BYTES = 4 << 20            # ... and about this many bytes (one key more at most), far below a frame
KEPT_PULLS = 4                  # finished pulls remembered (their outcome is polled once more)


def describe_span(span) -> str:
    if isinstance(span, KeyRange):
        end = "∞" if span.end is None else repr(span.end)[1:]
        return f"[{repr(span.start)[1:]}, {end})"
    return f"({span.start:#018x}, {span.end:#018x}]"


def plan(doc: RingDocument) -> list[dict]:
    out = []
    for keyspace, moves in doc.moves().items():
        for m in moves:
            fraction = m.range.width / RING_SIZE if isinstance(m.range, TokenRange) else 0.0
            out.append({"keyspace": keyspace, "range": describe_span(m.range), "before": list(m.before),
                        "after": list(m.after), "fraction": fraction})
    return out


def gains(doc: RingDocument, node: str) -> dict[tuple[str, str], list]:
    """The spans `node` gains in a move, grouped by (keyspace, source) with every old replica
    but itself as a source."""
    out: dict[tuple[str, str], list] = defaultdict(list)
    for keyspace, moves in doc.moves().items():
        for m in moves:
            if node in m.gained:
                for source in m.before:
                    if source != node:
                        out[(keyspace, source)].append(m.range)
    return out


async def pull(node: KVNode, epoch: int) -> AsyncIterator[Progress]:
    """Run on a new owner: fetch every range it gains in the move of `epoch` (once its watch on
    the ring's znode has brought it that document)."""
    await node.wait_epoch(epoch)
    doc = node.document
    if doc.epoch != epoch or not doc.moving:
        raise MembershipError(message=f"Membership change refused: node {node.me} holds epoch "
                                      f"{doc.epoch}, not the move of epoch {epoch}")
    work = gains(doc, node.me)
    spans_total = sum(len(v) for v in work.values())
    done = keys = 0
    reached: dict[str, int] = defaultdict(int)
    yield Progress(epoch, "stream", spans_total, 0, 0, node=node.me)
    for (keyspace, source), spans in sorted(work.items()):
        try:
            async for chunk in node.transport.stream_range(source, keyspace, spans):
                keys += await asyncio.to_thread(node.store.apply_many, keyspace, chunk, node.now_ms())
            reached[keyspace] += 1
            node.peers.mark_up(source)
        except PeerUnreachable as e:
            node.peers.mark_down(source, str(e))
            log.warning("move of epoch %d: node %s unreachable for %s: %s", epoch, source, keyspace, e)
        done += len(spans)
        yield Progress(epoch, "stream", spans_total, done, keys, node=node.me,
                       message=f"{keyspace} from node {source}")
    missing = [ks for (ks, _), _ in work.items() if reached[ks] == 0]
    if missing:
        raise MembershipError(message=f"Membership change refused: node {node.me} reached no old "
                                      f"replica of its new ranges in {', '.join(sorted(set(missing)))}")


async def rebalance(node: KVNode, add: dict, remove: list, weights: dict,
                    dry_run: bool = False) -> AsyncIterator[Progress]:
    """`add` maps a node id to (client address, weight[, peer address]); a peer address left
    out comes from `--peers`, else the client port + 1000."""
    if add and not dry_run:         # a plan is only shown: it may come before `cluster member add`
        for n in add:
            await node.check_coordination_member(n)
    current, version = node.snapshot()      # the change is written only over this very version
    if add or remove or weights:
        add = {n: (a, w, (p[0] if p and p[0] else node.default_peer(n, a))) for n, (a, w, *p) in add.items()}
        moving = current.change(add=add, remove=remove, weights=weights)
    elif current.moving:
        moving = current
    else:
        yield Progress(current.epoch, "done", message="nothing to do: no change given and no move under way")
        return
    steps = plan(moving)
    yield Progress(moving.epoch, "plan", len(steps), 0, 0, moves=steps,
                   message=f"{len(steps)} range(s) change replicas")
    if dry_run:
        return
    # 1. announce: the moving document into the tree; every member's watch brings it
    if moving is not current:
        version = await node.commit(moving, version)
    missed = await node.wait_members(moving.epoch)
    yield Progress(moving.epoch, "announce", len(steps), 0, 0,
                   message="every member holds the new ring" if not missed
                   else f"not holding it yet (they read it from the tree when back): {', '.join(missed)}")
    # 2. stream: every gaining node pulls, concurrently; progress merged as it comes
    targets = sorted({n for s in steps for n in s["after"] if n not in s["before"]})
    per_node: dict[str, Progress] = {}
    queue: asyncio.Queue = asyncio.Queue()

    async def drive(target: str) -> None:
        try:
            if target == node.me:
                stream = pull(node, moving.epoch)
            else:
                stream = node.transport.pull_ranges(target, moving.epoch)
            async for p in stream:
                await queue.put(p)
            await queue.put(("ok", target))
        except (PeerUnreachable, DcliError) as e:
            await queue.put(("failed", target, str(e)))

    tasks = [node.coordinator.spawn(drive(t)) for t in targets]
    failures = []
    finished = 0
    while finished < len(tasks):
        item = await queue.get()
        if isinstance(item, tuple):
            finished += 1
            if item[0] == "failed":
                failures.append(f"node {item[1]}: {item[2]}")
            continue
        per_node[item.node] = item
        yield Progress(moving.epoch, "stream", sum(p.ranges_total for p in per_node.values()),
                       sum(p.ranges_done for p in per_node.values()),
                       sum(p.keys_moved for p in per_node.values()), message=item.message, node=item.node)
    if failures:
        raise MembershipError(message="Membership change stopped before its commit (reads stay on the old "
                                      "ring, writes go to both; run `dcli kv rebalance` to finish): "
                                      + "; ".join(failures))
    # 3. commit
    final = moving.committed()
    try:
        await node.commit(final, version)
    except RingChangedError:
        # another `dcli kv rebalance` finished this same move first: that is the outcome wanted
        # (any other change meanwhile, a keyspace say, makes this one stop: run it again)
        if node.document.nodes != final.nodes or node.document.epoch < final.epoch or node.document.moving:
            raise
    missed = await node.wait_members(final.epoch)
    total = sum(p.ranges_total for p in per_node.values())
    yield Progress(final.epoch, "done", total, total, sum(p.keys_moved for p in per_node.values()),
                   message="committed" + (f"; not holding it yet (they read it from the tree when back): "
                                          f"{', '.join(missed)}"
                                          if missed else ""))


# -- the source side of a move: pages ----------------------------------------------------------

@dataclass
class Page:
    entries: list[Entry]
    done: bool
    span: int = 0                   # where the next page starts: span index and the key it is past
    after: bytes | None = None


def read_page(store: KVStore, keyspace: str, spans: Sequence, span: int = 0, after: bytes | None = None,
              max_entries: int = PAGE_ENTRIES, max_bytes: int = PAGE_BYTES) -> Page:
    """The entries of `spans` from span index `span`, past key `after` in it: one bounded page
    and where the next begins. Blocking (sqlite): run it in a thread."""
    out: list[Entry] = []
    size = 0
    while span < len(spans):
        part = spans[span]
        rows = (store.entries_in_keys(keyspace, part, after) if isinstance(part, KeyRange)
                else store.entries(keyspace, part, after))
        for key, versions in rows:
            out.append((key, versions))
            size += len(key) + sum(len(v.value or b"") + 64 for v in versions)
            if len(out) >= max_entries or size >= max_bytes:
                return Page(out, False, span, key)
        span, after = span + 1, None
    return Page(out, True, span, None)


# -- the gaining side: a pull started once and polled ------------------------------------------

@dataclass
class PullState:
    epoch: int
    latest: Progress
    task: asyncio.Task | None = None
    error: DcliError | None = None

    @property
    def finished(self) -> bool:
        return self.task is not None and self.task.done()


class Pulls:
    """This node's pulls of gained ranges, one per move epoch: `start` runs one (unless one of that
    epoch runs already), `state` says how far it got. The node driving the move polls both
    through the transport (one request each) instead of holding a stream open.

        pulls = Pulls(node)
        state = pulls.start(epoch)          # then, until state.finished:
        state = pulls.state(epoch)
    """

    def __init__(self, node: KVNode):
        self.node = node
        self._pulls: dict[int, PullState] = {}

    def start(self, epoch: int) -> PullState:
        state = self._pulls.get(epoch)
        if state is not None and not state.finished:
            return state
        state = self._pulls[epoch] = PullState(epoch, Progress(epoch, "stream", node=self.node.me))
        state.task = self.node.coordinator.spawn(self._run(state))
        for old in sorted(self._pulls)[:-KEPT_PULLS]:
            if self._pulls[old].finished:
                del self._pulls[old]
        return state

    def state(self, epoch: int) -> PullState:
        state = self._pulls.get(epoch)
        if state is None:
            raise MembershipError(message=f"Membership change refused: node {self.node.me} runs no pull "
                                          f"for the move of epoch {epoch}")
        return state

    async def _run(self, state: PullState) -> None:
        try:
            async for p in pull(self.node, state.epoch):
                state.latest = p
        except DcliError as e:
            state.error = e
        except Exception as e:      # noqa: BLE001 - the driver hears of it, not only the log
            log.exception("move of epoch %d: the pull failed", state.epoch)
            state.error = SystemError_("", f"node {self.node.me}: the pull failed: {e!r}")
