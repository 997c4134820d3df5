"""The broker cluster's controller: the one broker that places topics and moves leadership.

One broker at a time is the controller, elected with the seed's recipe (LeaderElection under
/controller, driven by BrokerMembership). Elected, it bumps /controller_epoch, reads the live
brokers (and keeps a watch on /brokers/ids), the topics (and a watch on /brokers/topics) and
every partition state, then brings each partition in line with the live brokers:

- leader alive, some ISR members gone: the ISR shrinks (leader epoch kept: the leader did not
  change);
- leader gone: the first replica, in assignment order, that is alive and in the ISR leads; the
  ISR keeps its live members; leader epoch + 1;
- no live ISR member: unclean election only if the topic sets unclean.leader.election.enable,
  (the first live replica leads alone); else leader -1, the partition is offline and its ISR keeps
  the last leader, which leads again once it is back; leader epoch + 1;
- a broker that comes back is recorded live and nothing more: growing the ISR is the partition
  leader's job (the Broker, replication.py), but an offline partition whose ISR holds it gets it as leader.

Fencing: every write is a multi whose first op checks /controller_epoch at the znode version this
controller's bump produced, and state writes are conditional on the state's version as read. A
controller that a newer one has replaced therefore cannot overwrite anything: its multi fails,
it stops acting and `on_fenced` tells the membership agent to stand again.

    controller = Controller(broker_id=1, on_fenced=rejoin).start()
    controller.elected(client, "/controller/c_0000000004")   # from LeaderElection's on_elected
    controller.create_topic("chat", 3, 3)                     # assignment + states, one multi
    controller.resigned("connection suspended")               # from on_revoked

All work runs on the controller's own thread, one event at a time (Kafka's controller event
queue); watches and election callbacks only enqueue. The client it is handed is the membership
agent's session: on a node, a CoordClient on the node's own tree, in process (local_client.py). `propose_topic` (tree_topics.py) is the other
way to create a topic, from any broker or tool: it writes the assignment and configs, and the controller's
watch on /brokers/topics writes the initial partition states.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from concurrent.futures import Future
from typing import Callable, Mapping

from dcli.client import CoordClient, EventType
from dcli.wire import errors
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.assignment import next_state, preferred_state
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.tree_topics import check_topic_configs, plan_assignment

log = logging.getLogger("dcli.controller")

_RETRIES = 8
_BACKOFF_S = 0.2
_CONNECTION = (errors.ConnectionLossError, errors.NotConnectedError, errors.OperationTimeoutError,
               errors.UnavailableError, errors.SessionMovedError)


class Fenced(Exception):
    """A newer controller epoch exists: this controller must not write again."""


class Controller:
    """See the module's docstring. `epoch` and `active` describe the current term, if any."""

    def __init__(self, broker_id: int, *, broker_config: BrokerConfig | None = None,
                 on_fenced: Callable[[], None] | None = None, rng: random.Random | None = None):
        self.broker_id = broker_id
        self.broker_config = broker_config or BrokerConfig()
        self.on_fenced = on_fenced
        self.rng = rng or random.Random()
        self.active = False
        self.epoch = 0
        self.live: set[int] = set()
        self.topics: dict[str, meta.TopicAssignment] = {}
        self.states: dict[tuple[str, int], tuple[meta.PartitionState, int]] = {}
        self._unclean: dict[str, bool] = {}
        self._epoch_version = -1
        self._client: CoordClient | None = None
        self._gen = 0
        self._lock = threading.Lock()
        self._events: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dcli-controller-{broker_id}", daemon=True)

    # ---- what the election and the node call (any thread) ----

    def start(self) -> Controller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._events.put(("stop",))
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def elected(self, client: CoordClient, znode: str) -> None:
        with self._lock:
            self._gen += 1
            self._events.put(("elected", self._gen, client, znode))

    def resigned(self, reason: str) -> None:
        with self._lock:
            self._gen += 1
            self.active = False
            self._events.put(("resigned", self._gen, reason))

    def elect_leaders(self, partitions: list[tuple[str, int]] | None, *, unclean: bool = False,
                      timeout: float = 30.0) -> dict[tuple[str, int], errors.BrokerError | None]:
        """Kafka's ElectLeaders: each partition (None: all) led by its preferred replica, or with
        `unclean`, an offline one by any live replica. Per partition: None (elected) or why not
        (ElectionNotNeeded, PreferredLeaderNotAvailable, EligibleLeadersNotAvailable, unknown).
        Raises NotControllerError unless this broker is the active controller."""
        future: Future = Future()
        self._events.put(("elect", future, partitions, unclean))
        return future.result(timeout)

    def create_topic(self, name: str, partitions: int, rf: int, configs: Mapping[str, str] | None = None,
                     *, start_index: int | None = None, shift: int | None = None,
                     assignments: Mapping[int, list[int]] | None = None,
                     timeout: float = 30.0) -> meta.TopicAssignment:
        """Place and create a topic: assignment, configs and initial partition states in one
        multi. Raises NotControllerError unless this broker is the active controller."""
        future: Future = Future()
        self._events.put(("create", future, name, partitions, rf, configs, start_index, shift, assignments))
        return future.result(timeout)

    # ---- the controller's thread ----

    def _run(self) -> None:
        next_check = time.monotonic() + self._imbalance_interval()
        while True:
            try:
                event = self._events.get(timeout=max(0.0, next_check - time.monotonic()))
            except queue.Empty:
                event = ("imbalance",)
                next_check = time.monotonic() + self._imbalance_interval()
            kind = event[0]
            if kind == "stop":
                return
            try:
                if kind == "elected":
                    self._on_elected(*event[1:])
                elif kind == "resigned":
                    self._deactivate(event[2])
                elif kind == "brokers" and self._live_event(event[1]):
                    self._refresh_brokers()
                elif kind == "topics" and self._live_event(event[1]):
                    self._refresh_topics()
                elif kind == "create":
                    self._on_create(*event[1:])
                elif kind == "assignment" and self._live_event(event[1]):
                    self._refresh_assignment(event[2])
                elif kind == "elect":
                    self._on_elect(*event[1:])
                elif kind == "imbalance" and self.active and self.broker_config.auto_leader_rebalance_enable:
                    self._rebalance_leaders()
            except Fenced:
                self._on_fenced()
            except _CONNECTION as e:       # the election revokes and elects again on reconnection
                if self.active:
                    log.warning("controller %s: %s while handling %s", self.broker_id, e, kind)
            except Exception:             # noqa: BLE001 - one bad event must not end the controller
                log.exception("controller %s: handling %s failed", self.broker_id, kind)

    def _live_event(self, gen: int) -> bool:
        return self.active and self._current(gen)

    def _current(self, gen: int) -> bool:
        with self._lock:
            return gen == self._gen and not self._stopping.is_set()

    def _on_elected(self, gen: int, client: CoordClient, znode: str) -> None:
        for _ in range(_RETRIES):
            if not self._current(gen):
                return
            try:
                self._client = client
                for path in (meta.BROKER_IDS, meta.TOPICS, meta.CONFIG_TOPICS):
                    client.ensure_path(path)
                self.epoch, self._epoch_version = self._bump_epoch(client, znode)
                with self._lock:
                    if gen != self._gen:
                        return
                    self.active = True
                log.info("broker %s is the controller, epoch %s", self.broker_id, self.epoch)
                self.live = set(meta.live_brokers(client, watch=self._watch("brokers")))
                self._refresh_topics()      # reconciles each partition it reads
                return
            except errors.NoNodeError:       # our election znode is gone: the session with it
                return
            except _CONNECTION as e:
                if not self._current(gen):      # resigned meanwhile (the session ended): quietly
                    return
                log.warning("controller %s: %s while taking over; trying again", self.broker_id, e)
                self._stopping.wait(_BACKOFF_S)

    def _bump_epoch(self, client: CoordClient, znode: str) -> tuple[int, int]:
        """Epoch + 1, conditional on the epoch read and on still holding `znode`."""
        while True:
            current = meta.read_controller_epoch(client)
            t = client.transaction().check(znode, 0)
            if current is None:
                epoch = 1
                t.create(meta.CONTROLLER_EPOCH, meta.encode_epoch(epoch))
            else:
                epoch = current[0] + 1
                t.set_data(meta.CONTROLLER_EPOCH, meta.encode_epoch(epoch), current[1])
            try:
                results = t.commit()
            except (errors.BadVersionError, errors.NodeExistsError) as e:
                if isinstance(getattr(e, "results", [None])[0], errors.NoNodeError):
                    raise errors.NoNodeError(znode) from None
                continue        # another controller bumped it meanwhile: read and bump again
            return epoch, (results[1].version if current is not None else 0)

    def _allows_unclean(self, configs: Mapping[str, str]) -> bool:
        default = str(self.broker_config.unclean_leader_election_enable).lower()
        return configs.get(meta.UNCLEAN, default).strip().lower() == "true"

    def _deactivate(self, reason: str) -> None:
        if self._client is not None:
            log.info("broker %s is no longer the controller (%s)", self.broker_id, reason)
        self.active = False
        self._client = None
        self.states.clear()
        self.topics.clear()

    def _on_fenced(self) -> None:
        log.warning("controller %s (epoch %s) was replaced by a newer controller", self.broker_id, self.epoch)
        with self._lock:
            self._gen += 1
        self._deactivate("fenced")
        if self.on_fenced:
            self.on_fenced()

    def _watch(self, kind: str):
        gen = self._gen

        def fire(event) -> None:
            if event.type is not EventType.NONE:
                self._events.put((kind, gen))
        return fire

    def _refresh_brokers(self) -> None:
        live = set(meta.live_brokers(self._client, watch=self._watch("brokers")))
        if live != self.live:
            log.info("controller %s: live brokers %s (gone %s, new %s)", self.broker_id, sorted(live),
                     sorted(self.live - live), sorted(live - self.live))
        self.live = live
        for topic, p in sorted(self.states):
            self._reconcile(topic, p)

    def _refresh_topics(self) -> None:
        names = self._client.get_children(meta.TOPICS, watch=self._watch("topics"))
        for name in sorted(set(names) - set(self.topics)):
            try:
                assignment = self._read_assignment(name)
                configs = meta.read_topic_config(self._client, name)
            except meta.MetadataError as e:
                log.error("controller %s: topic %s skipped: %s", self.broker_id, name, e)
                continue
            if assignment is None:
                continue
            self.topics[name] = assignment
            self._unclean[name] = self._allows_unclean(configs)
            self._load_states(assignment)
        for name in set(self.topics) - set(names):
            self.topics.pop(name)
            for key in [k for k in self.states if k[0] == name]:
                self.states.pop(key)

    def _read_assignment(self, name: str) -> meta.TopicAssignment | None:
        """A topic's assignment, with a watch that brings its changes (CreatePartitions) here."""
        gen = self._gen

        def fire(event) -> None:
            if event.type is EventType.NODE_DATA_CHANGED:
                self._events.put(("assignment", gen, name))
        try:
            data, _ = self._client.get(meta.topic_path(name), watch=fire)
        except errors.NoNodeError:
            return None
        return meta.TopicAssignment.decode(name, data)

    def _refresh_assignment(self, name: str) -> None:
        """A topic's assignment changed (grown by `add_partitions`): write the new partitions'
        initial states."""
        if name not in self.topics:
            return
        assignment = self._read_assignment(name)
        if assignment is not None:
            self.topics[name] = assignment
            self._load_states(assignment)

    def _load_states(self, assignment: meta.TopicAssignment) -> None:
        """Read a topic's partition states; write the initial ones it lacks (a proposed topic)."""
        missing = []
        for p in range(assignment.partitions):
            try:
                found = meta.read_state(self._client, assignment.name, p)
            except meta.MetadataError as e:
                log.error("controller %s: %s", self.broker_id, e)
                continue
            if found is None:
                missing.append(p)
            else:
                self.states[(assignment.name, p)] = found
                self._reconcile(assignment.name, p)
        if missing:
            self._write_initial(assignment, missing, create_topic=False)

    def _initial_state(self, replicas: tuple[int, ...]) -> meta.PartitionState:
        isr = tuple(b for b in replicas if b in self.live) or replicas[:1]
        leader = isr[0] if isr[0] in self.live else meta.NO_LEADER
        return meta.PartitionState(leader, 0, isr, self.epoch)

    def _write_initial(self, assignment: meta.TopicAssignment, partitions: list[int], *,
                       create_topic: bool, configs: Mapping[str, str] | None = None) -> None:
        name = assignment.name
        t = self._client.transaction().check(meta.CONTROLLER_EPOCH, self._epoch_version)
        if create_topic:
            t.create(meta.topic_config_path(name), meta.encode_topic_config(configs or {}))
            t.create(meta.topic_path(name), assignment.encode())
        if create_topic or not self._client.exists(meta.partitions_path(name)):
            t.create(meta.partitions_path(name), b"")
        states = {}
        for p in partitions:
            states[p] = self._initial_state(assignment.replicas[p])
            if create_topic or not self._client.exists(meta.partition_path(name, p)):
                t.create(meta.partition_path(name, p), b"")
            t.create(meta.state_path(name, p), states[p].encode())
        try:
            t.commit()
        except errors.DcliError as e:
            first = getattr(e, "results", None) or [None]
            if isinstance(first[0], errors.BadVersionError):
                raise Fenced() from None
            raise
        for p, state in states.items():
            self.states[(name, p)] = (state, 0)
        self.topics[name] = assignment
        if create_topic:
            self._read_assignment(name)         # its watch: CreatePartitions comes that way
        log.info("controller %s: topic %s, partitions %s, replicas %s", self.broker_id, name,
                 partitions, [list(assignment.replicas[p]) for p in partitions])

    def _reconcile(self, topic: str, p: int) -> None:
        assignment = self.topics.get(topic)
        if assignment is None or (topic, p) not in self.states:
            return
        for _ in range(_RETRIES):
            state, version = self.states[(topic, p)]
            new = next_state(state, assignment.replicas[p], self.live,
                             unclean=self._unclean.get(topic, False), controller_epoch=self.epoch)
            if new is None:
                return
            try:
                version = self._fenced_set(meta.state_path(topic, p), new.encode(), version)
            except errors.BadVersionError:       # changed under us (the leader's ISR change)
                found = meta.read_state(self._client, topic, p)
                if found is None:
                    return
                self.states[(topic, p)] = found
                continue
            self.states[(topic, p)] = (new, version)
            log.info("controller %s: %s-%s leader %s -> %s, epoch %s, isr %s", self.broker_id, topic, p,
                     state.leader, new.leader, new.leader_epoch, list(new.isr))
            return

    def _fenced_set(self, path: str, data: bytes, version: int) -> int:
        t = self._client.transaction().check(meta.CONTROLLER_EPOCH, self._epoch_version)
        t.set_data(path, data, version)
        try:
            return t.commit()[1].version
        except errors.DcliError as e:
            results = getattr(e, "results", None) or [None]
            if isinstance(results[0], errors.DcliError):
                raise Fenced() from None
            raise

    def _imbalance_interval(self) -> float:
        return float(self.broker_config.leader_imbalance_check_interval_seconds)

    def _on_elect(self, future: Future, partitions, unclean: bool) -> None:
        def elect() -> dict:
            if not self.active or self._client is None:
                raise errors.NotControllerError()
            wanted = sorted(self.states) if partitions is None else list(partitions)
            return {tp: self._elect(tp, unclean) for tp in wanted}
        self._answer(future, elect)

    @staticmethod
    def _answer(future: Future, work: Callable[[], object]) -> None:
        """Run `work` for a caller waiting on `future`. A fenced controller tells it
        NOT_CONTROLLER and stands down (the Fenced goes on to `_run`)."""
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = work()
        except Fenced:
            future.set_exception(errors.NotControllerError())
            raise
        except BaseException as e:      # noqa: BLE001 - the caller gets it
            future.set_exception(e)
        else:
            future.set_result(result)

    def _elect(self, tp: tuple[str, int], unclean: bool) -> errors.BrokerError | None:
        topic, p = tp
        assignment = self.topics.get(topic)
        if assignment is None or tp not in self.states:
            return errors.UnknownTopicOrPartitionError()
        for _ in range(_RETRIES):
            found = meta.read_state(self._client, topic, p)     # leaders change their ISR themselves
            if found is None:
                return errors.UnknownTopicOrPartitionError()
            self.states[tp] = found
            state, version = found
            replicas = assignment.replicas[p]
            if unclean:
                if state.online and state.leader in self.live:
                    return errors.ElectionNotNeededError()
                new = next_state(state, replicas, self.live, unclean=True, controller_epoch=self.epoch)
                if new is None or not new.online:
                    return errors.EligibleLeadersNotAvailableError()
            else:
                if replicas and state.leader == replicas[0]:
                    return errors.ElectionNotNeededError()
                new = preferred_state(state, replicas, self.live, controller_epoch=self.epoch)
                if new is None:
                    return errors.PreferredLeaderNotAvailableError()
            try:
                version = self._fenced_set(meta.state_path(topic, p), new.encode(), version)
            except errors.BadVersionError:
                continue
            self.states[tp] = (new, version)
            log.info("controller %s: %s-%s leader %s -> %s (%s election), epoch %s", self.broker_id, topic, p,
                     state.leader, new.leader, "unclean" if unclean else "preferred", new.leader_epoch)
            return None
        return errors.PreferredLeaderNotAvailableError()

    def _rebalance_leaders(self) -> None:
        """auto.leader.rebalance.enable: for each broker whose share of partitions led by another
        than their preferred replica passes leader.imbalance.per.broker.percentage, elect the
        preferred replicas where they are alive and in sync."""
        by_preferred: dict[int, list[tuple[str, int]]] = {}
        for tp, (state, _) in self.states.items():
            assignment = self.topics.get(tp[0])
            if assignment is not None and assignment.replicas[tp[1]]:
                by_preferred.setdefault(assignment.replicas[tp[1]][0], []).append(tp)
        limit = self.broker_config.leader_imbalance_per_broker_percentage / 100
        for broker, tps in sorted(by_preferred.items()):
            if broker not in self.live:
                continue
            off = [tp for tp in tps if self.states[tp][0].leader != broker]
            if off and len(off) / len(tps) > limit:
                for tp in off:
                    self._elect(tp, unclean=False)

    def _on_create(self, future: Future, name, partitions, rf, configs, start_index, shift, assignments) -> None:
        def create() -> meta.TopicAssignment:
            if not self.active or self._client is None:
                raise errors.NotControllerError()
            checked = check_topic_configs(configs, self.broker_config)
            self.live = set(meta.live_brokers(self._client))
            assignment = plan_assignment(self._client, name, partitions, rf, start_index=start_index,
                                         shift=shift, rng=self.rng, assignments=assignments,
                                         broker=self.broker_config)
            self._unclean[name] = self._allows_unclean(checked)
            try:
                self._write_initial(assignment, list(range(assignment.partitions)),
                                    create_topic=True, configs=checked)
            except errors.NodeExistsError:
                raise errors.TopicExistsError(message=f"Topic '{name}' already exists.") from None
            return assignment
        self._answer(future, create)

