"""One node's part in the broker cluster: its registration, its controller candidacy, and the
partition states it is told about.

    membership = BrokerMembership(broker_id=2, host="127.0.0.1", port=7182,
                                  tree=LocalTree(node, loop, "127.0.0.1:7182"),
                                  session_timeout_ms=4000,
                                  on_partition_state=lambda topic, p, state: print(topic, p, state))
    membership.start()             # returns at once; connects, registers, stands for controller
    membership.controller_id       # 0 until a controller is known
    membership.stop()              # closes the session: the broker znode goes at once

The agent keeps one session with the coordination tree: a threaded CoordClient on this node's
own tree, in process (dcli_server.local_client: no client port, no TLS, no connection slot). In
that session it creates the ephemeral /brokers/ids/<id> (Kafka's registration), joins the
controller election (the seed's LeaderElection under /controller; the Controller does the work
when elected), follows who the controller is (LeaderObserver), and keeps a persistent recursive
watch on /brokers/topics that turns each partition state change into `on_partition_state(topic,
partition, state)` — what the Broker acts on (lead or follow). It also keeps each topic's
assignment and configs (`topics`) and the live brokers' addresses (`brokers`), which is what
clients get as metadata.

When the session is lost (the node was cut off or paused longer than the session timeout: the
tree has already deleted the registration and the controller has moved its leaderships) the agent
opens a new session and does everything again. A registration left by a previous run of this
broker (a crash, then a quick restart) goes at once: the agent notes the id of each session it
opens in `session_file` and, starting, takes over the one noted there and closes it (its password
comes from the node's own session table, so none is kept on disk). Without the note (or when this
node does not know that session) it is waited out: it goes when that old session expires.
Nothing here runs on the node's asyncio loop: the agent's own thread and the client's threads do
it all (the client must not be called on the loop, whose work it waits for).
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from dcli.client import ConnState, CoordClient, EventType
from dcli.recipes.election import LeaderElection, LeaderObserver
from dcli.wire import errors
from dcli.wire.topics import validate_topic
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.config import BrokerConfig
from dcli_server.broker.controller import Controller
from dcli_server.local_client import LocalTree
from dcli_server.storage.files import write_atomically

log = logging.getLogger("dcli.membership")

DEFAULT_SESSION_TIMEOUT_MS = 4000
_RETRY_S = 0.3

StateListener = Callable[[str, int, meta.PartitionState], None]


class BrokerMembership:
    """See the module's docstring."""

    def __init__(self, broker_id: int, host: str, port: int, tree: LocalTree, *,
                 session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
                 broker_config: BrokerConfig | None = None,
                 on_partition_state: StateListener | None = None,
                 session_file: Path | None = None):
        self.broker_id = broker_id
        self.session_file = session_file    # where this broker's session is noted, to end it after a crash
        self.info = meta.BrokerInfo(broker_id, host, port)
        self.tree = tree
        self.session_timeout_ms = session_timeout_ms
        self.controller = Controller(broker_id, broker_config=broker_config, on_fenced=self._fenced)
        self.partition_states: dict[tuple[str, int], tuple[meta.PartitionState, int]] = {}
        self.topics: dict[str, meta.TopicAssignment] = {}     # with their configs
        self.brokers: dict[int, meta.BrokerInfo] = {}         # the live ones
        self.brokers_version = 0     # + 1 at each change of the live set and each new session
        self.on_topic_deleted: Callable[[str], None] | None = None
        self.on_scanned: Callable[[dict[str, str]], None] | None = None   # topic -> id, after each rescan
        self.before_ready: Callable[[CoordClient], None] | None = None    # once registered, before `registered`
        self.registered = threading.Event()
        self._delivered = threading.Condition()
        self._listeners: list[StateListener] = [on_partition_state] if on_partition_state else []
        self._controller_id = 0
        self._client: CoordClient | None = None
        self._election: LeaderElection | None = None
        self._observer: LeaderObserver | None = None
        self._events: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dcli-membership-{broker_id}", daemon=True)

    # ---- the node's side ----

    @property
    def controller_id(self) -> int:
        """The broker this node sees as controller; 0 when none is known."""
        return self._controller_id

    @property
    def is_controller(self) -> bool:
        return self.controller.active

    def client(self, wait: float = 0.0) -> CoordClient:
        """The agent's session with the tree, waiting up to `wait` seconds for this broker to
        be registered (raises NotConnectedError between sessions)."""
        deadline = time.monotonic() + wait
        if wait > 0 and not self._stopping.is_set():
            self.registered.wait(wait)
        while True:     # between the tree's leaders the session reconnects: give it the time
            client = self._client
            if client is not None and client.connected:
                return client
            if time.monotonic() >= deadline or self._stopping.is_set():
                raise errors.NotConnectedError()
            self._stopping.wait(0.05)

    def add_partition_listener(self, fn: StateListener) -> None:
        """`fn(topic, partition, state)` on each change of a partition's state (and once for
        each partition when a session starts); runs on the agent's thread."""
        self._listeners.append(fn)

    def wait_for_states(self, topic: str, partitions: int, timeout: float) -> bool:
        """Wait until this agent knows a state for each of the topic's partitions."""
        with self._delivered:
            return self._delivered.wait_for(
                lambda: all((topic, p) in self.partition_states for p in range(partitions)), timeout)

    def start(self) -> BrokerMembership:
        self.controller.start()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Leave: the controller stops, the session closes (its znodes go at once)."""
        self._stopping.set()
        self._events.put(("stop",))
        self._thread.join(timeout)
        self.controller.stop(timeout)

    # ---- the agent's thread ----

    def _run(self) -> None:
        self._end_previous_session()
        while not self._stopping.is_set():
            client = self._connect()
            if client is None:
                return
            try:
                self._session(client)
            except errors.DcliError as e:
                log.warning("broker %s: session ended: %s", self.broker_id, e)
            finally:
                self._end_session(client)

    def _connect(self) -> CoordClient | None:
        while not self._stopping.is_set():
            client = self.tree.client(timeout=self.session_timeout_ms / 1000, dial_timeout=5.0)
            try:
                return client.start()
            except errors.DcliError as e:
                log.info("broker %s: cannot open a session yet: %s", self.broker_id, e)
                self._stopping.wait(_RETRY_S)
        return None

    def _end_previous_session(self) -> None:
        """This broker's session from before a crash (or kill -9) holds its registration and its
        controller candidacy until it expires; it is this broker's (one process per data
        directory), so it is taken over and closed: they go at once."""
        if self.session_file is None:
            return
        try:        # the session's id (a file from an older version has its password after it)
            session_id = int(self.session_file.read_text().split()[0], 16)
        except (OSError, ValueError, IndexError):
            return
        try:
            password = self.tree.password(session_id)
            if password is None:
                log.info("broker %s: previous session 0x%x is gone already", self.broker_id, session_id)
                return
            self.tree.client(timeout=self.session_timeout_ms / 1000, dial_timeout=2.0,
                             session=(session_id, password)).start().close(timeout_s=2.0)
            log.info("broker %s: closed its previous session 0x%x", self.broker_id, session_id)
        except (errors.DcliError, TimeoutError) as e:   # expired already, or the tree is not there yet
            log.info("broker %s: previous session 0x%x not closed: %s", self.broker_id, session_id, e)

    def _note_session(self, client: CoordClient) -> None:
        if self.session_file is None:
            return
        try:
            write_atomically(self.session_file, f"{client.session_id:x}\n".encode())
        except OSError as e:
            log.warning("broker %s: cannot note its session in %s: %s", self.broker_id, self.session_file, e)

    def _session(self, client: CoordClient) -> None:
        self._client = client
        self._note_session(client)
        self.brokers_version += 1       # what others decided while this broker was away is unknown
        client.add_listener(self._on_conn_state)
        if not self._register(client):
            return
        client.ensure_path(meta.TOPICS)
        client.add_watch(meta.TOPICS, self._on_tree_event, mode="persistent_recursive")
        client.add_watch(meta.BROKER_IDS, self._on_brokers_event, mode="persistent_recursive")
        self._read_brokers(client)
        self._observer = LeaderObserver(client, meta.CONTROLLER, self._on_controller).start()
        self._stand(client)
        self._rescan(client)
        self.registered.set()           # registered, and what the tree says is known here
        self._scanned()
        while True:
            event = self._events.get()
            kind = event[0]
            if kind in ("stop", "lost"):
                return
            try:
                if kind == "state":
                    self._read_state(client, event[1])
                elif kind == "deleted":
                    self._topic_gone(event[1])
                elif kind == "brokers":
                    self._read_brokers(client)
                elif kind == "rescan":
                    self._read_brokers(client)
                    self._rescan(client)
                    self._scanned()
                elif kind == "fenced":
                    self._stand(client, again=True)
            except (errors.ConnectionLossError, errors.NotConnectedError, errors.OperationTimeoutError):
                if client.connected:
                    self._events.put(("rescan",))
            except meta.MetadataError as e:
                log.error("broker %s: %s", self.broker_id, e)

    def _register(self, client: CoordClient) -> bool:
        """Create this broker's znode; False if the agent stops or the session goes first."""
        client.ensure_path(meta.BROKER_IDS)
        path = meta.broker_path(self.broker_id)
        while not self._stopping.is_set():
            try:
                client.create(path, self.info.encode(), ephemeral=True)
                break
            except errors.NodeExistsError:      # our previous session's: wait for it to expire
                if not client.exists(path, watch=lambda e: self._events.put(("registered?",))):
                    continue
                log.info("broker %s: %s is still held by an older session; waiting", self.broker_id, path)
                while not self._stopping.is_set():
                    event = self._events.get()
                    if event[0] in ("stop", "lost"):
                        self._events.put(event)
                        return False
                    if event[0] == "registered?":
                        break
        else:
            return False
        log.info("broker %s registered at %s (session 0x%x)", self.broker_id, path, client.session_id)
        if self.before_ready is not None:       # the migration of an older data directory
            self.before_ready(client)
            self.before_ready = None
        return True

    def _stand(self, client: CoordClient, again: bool = False) -> None:
        if again and self._election is not None:
            self._election.leave()
        controller = self.controller
        election = LeaderElection(client, meta.CONTROLLER, meta.encode_controller(self.broker_id),
                                  on_elected=lambda: controller.elected(client, election.znode or ""),
                                  on_revoked=controller.resigned)
        self._election = election
        client.ensure_path(meta.CONTROLLER)
        election.join()

    def _end_session(self, client: CoordClient) -> None:
        self.registered.clear()
        self.controller.resigned("session ended")
        if self._observer is not None:
            self._observer.stop()
        self._observer = self._election = None
        self._client = None
        self._controller_id = 0
        # Stopping with the rest of the cluster, the tree may be gone already: do not wait long
        # for it to confirm; the session then expires on its own.
        client.close(timeout_s=1.0 if self._stopping.is_set() else 5.0)
        while not self._events.empty():        # what was queued belonged to that session
            event = self._events.get_nowait()
            if event[0] == "stop":
                self._stopping.set()

    # ---- callbacks (the client's event thread): only enqueue ----

    def _on_conn_state(self, state: ConnState) -> None:
        if state is ConnState.LOST:
            self._events.put(("lost",))
        elif state is ConnState.CONNECTED:
            self._events.put(("rescan",))      # events may have been missed while away

    def _on_tree_event(self, event) -> None:
        if event.type in (EventType.NODE_CREATED, EventType.NODE_DATA_CHANGED) and meta.parse_state_path(event.path):
            self._events.put(("state", event.path))
        elif event.type is EventType.NODE_DELETED and event.path.count("/") == 3:
            self._events.put(("deleted", event.path.rsplit("/", 1)[1]))

    def _on_brokers_event(self, event) -> None:
        if event.type in (EventType.NODE_CREATED, EventType.NODE_DELETED):
            self._events.put(("brokers",))

    def _on_controller(self, candidate) -> None:
        self._controller_id = meta.decode_controller(candidate.identifier) if candidate else 0

    def _fenced(self) -> None:
        self._events.put(("fenced",))

    # ---- partition states ----

    def _read_brokers(self, client: CoordClient) -> None:
        found = {}
        for b in meta.live_brokers(client):
            try:
                data, _ = client.get(meta.broker_path(b))
                found[b] = meta.BrokerInfo.decode(b, data)
            except errors.NoNodeError:
                continue
            except meta.MetadataError as e:
                log.error("broker %s: %s", self.broker_id, e)
        if set(found) != set(self.brokers):
            self.brokers_version += 1
        self.brokers = found

    def _know_topic(self, client: CoordClient, topic: str, partition: int = 0) -> bool:
        """Read a topic's assignment and configs once, and again when `partition` is beyond it
        (CreatePartitions grew it); False if it is gone."""
        known = self.topics.get(topic)
        if known is not None and partition < known.partitions:
            return True
        try:        # a znode made by hand under /brokers/topics must not become a directory name
            validate_topic(topic)
        except errors.BrokerError as e:
            log.error("broker %s: ignoring /brokers/topics/%s: %s", self.broker_id, topic, e)
            return False
        assignment = meta.read_assignment(client, topic)
        if assignment is None:
            return False
        self.topics[topic] = assignment.with_configs(meta.read_topic_config(client, topic))
        return True

    def _topic_gone(self, topic: str) -> None:
        if self.topics.pop(topic, None) is None:
            return
        for key in [k for k in self.partition_states if k[0] == topic]:
            del self.partition_states[key]
        if self.on_topic_deleted is not None:
            try:
                self.on_topic_deleted(topic)
            except Exception:          # noqa: BLE001 - a listener's bug must not stop the agent
                log.exception("topic deletion listener failed for %s", topic)

    def _read_state(self, client: CoordClient, path: str) -> None:
        topic, p = meta.parse_state_path(path)
        if not self._know_topic(client, topic, p):
            return
        found = meta.read_state(client, topic, p)
        if found is not None:
            self._deliver(topic, p, *found)

    def _rescan(self, client: CoordClient) -> None:
        names = meta.topic_names(client)
        for gone in set(self.topics) - set(names):
            self._topic_gone(gone)
        for topic in names:
            if not self._know_topic(client, topic):
                continue
            try:
                partitions = client.get_children(meta.partitions_path(topic))
            except errors.NoNodeError:
                continue
            for p in sorted(int(x) for x in partitions if x.isdigit()):
                found = meta.read_state(client, topic, p)
                if found is not None and self._know_topic(client, topic, p):
                    self._deliver(topic, p, *found)

    def _scanned(self) -> None:
        """Tell the broker that every topic and state in the tree has been delivered."""
        if self.on_scanned is not None:
            self.on_scanned({t: a.topic_id for t, a in self.topics.items()})

    def _deliver(self, topic: str, p: int, state: meta.PartitionState, version: int) -> None:
        known = self.partition_states.get((topic, p))
        if known is not None and known[1] >= version:
            return
        with self._delivered:
            self.partition_states[(topic, p)] = (state, version)
            self._delivered.notify_all()
        for fn in list(self._listeners):
            try:
                fn(topic, p, state)
            except Exception:          # noqa: BLE001 - a listener's bug must not stop the agent
                log.exception("partition state listener failed for %s-%s", topic, p)


def start_membership(node, broker_id: int, host: str, port: int,
                     session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS, *,
                     broker_config: BrokerConfig | None = None, start: bool = True,
                     session_file: Path | None = None) -> BrokerMembership:
    """Start the agent of a node's broker (dcli_server.main, on the node's loop) and let the
    node's status report the controller it sees. `node` is the CoordNode, whose tree the agent
    reaches in process. With `start=False` the caller starts it."""
    tree = LocalTree(node, asyncio.get_running_loop(), f"{host}:{port}")
    membership = BrokerMembership(broker_id, host, port, tree, session_timeout_ms=session_timeout_ms,
                                  broker_config=broker_config, session_file=session_file)
    node.controller_id = lambda: membership.controller_id
    return membership.start() if start else membership
