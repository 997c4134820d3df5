"""The broker's topics, kept in the coordination tree: a mixin of Broker (broker.py).

Metadata (brokers, leaders, ISRs, configs) is what the tree says, as this node's membership
agent last read it. Topics are created by the controller when this broker is the controller,
else proposed to it (tree_topics.propose_topic), grown by writing their assignment, deleted by
removing their znodes; each request returns once this node's agent has seen the result and the
broker has acted on it here, so that the next request from the same client finds the topic (or
its absence) as it left it. A node alone is its own controller.

    [result] = await broker.create_topics([NewTopic("chat", 3, 1, {"retention.ms": "60000"})])
    [described] = await broker.metadata(["chat"])
    await broker.create_partitions("chat", 6)
    await broker.delete_topics(["chat"])
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from dcli.v1 import broker_pb2 as pb
from dcli.wire import errors
from dcli.wire.errors import (BrokerError, InvalidRequestError, LeaderNotAvailableError,
                              UnknownTopicOrPartitionError)
from dcli.wire.topics import is_internal, validate_topic
from dcli_server.broker import cluster_meta as meta
from dcli_server.broker.peers import PeerUnreachable
from dcli_server.broker.replication import READY_WAIT_S
from dcli_server.broker.requests import ConfigValue, NewTopic, PartitionDescription, TopicDescription, TopicResult
from dcli_server.broker.limits import check_partition_budget, check_topics_in_request
from dcli_server.broker.topics import plan_partitions
from dcli_server.broker.tree_topics import (add_partitions, check_topic_configs, delete_topic, plan_assignment,
                                            propose_topic)

log = logging.getLogger("dcli.replication")

CREATE_WAIT_S = 10.0                   # how long a topic change waits to be seen and acted on here
_UNREACHABLE = (errors.NotConnectedError, errors.ConnectionLossError, errors.OperationTimeoutError,
                errors.UnavailableError)


class TopicAdmin:
    """The topic side of Broker; see the module's docstring."""

    # -- metadata -------------------------------------------------------------------------------

    def _describe(self, name: str) -> TopicDescription:
        assignment = self.membership.topics[name]
        live = set(self.brokers)
        no_state = (meta.PartitionState(meta.NO_LEADER, -1, (), 0), -1)     # not written yet
        parts = []
        for i, replicas in enumerate(assignment.replicas):
            st = self.membership.partition_states.get((name, i), no_state)[0]
            parts.append(PartitionDescription(i, st.leader, st.leader_epoch, replicas, st.isr,
                                              tuple(b for b in replicas if b not in live)))
        overrides = {c.name: c.value for c in self._topic_configs(assignment) if not c.is_default}
        return TopicDescription(name, assignment.topic_id, None, is_internal(name), parts, overrides)

    def _topic_configs(self, topic: meta.TopicAssignment) -> list[ConfigValue]:
        out = []
        for name, value in sorted(self.config.topic_defaults().items()):
            if name in topic.configs:
                out.append(ConfigValue(name, topic.configs[name], False))
            else:
                out.append(ConfigValue(name, value, not self.config.topic_default_is_explicit(name)))
        return out

    async def metadata(self, topics: list[str] | None = None, *,
                       allow_auto_topic_creation: bool = False) -> list[TopicDescription]:
        """Descriptions of `topics` (None: all), creating unknown ones when both the request
        and auto.create.topics.enable allow it."""
        if topics is not None:
            check_topics_in_request(len(topics), self.config, "Metadata")
        await self.ready()
        known = self.membership.topics
        if topics is None:
            return [self._describe(n) for n in sorted(known)]
        out = []
        for name in topics:
            try:
                if name not in known:
                    validate_topic(name)
                    if not (allow_auto_topic_creation and self.config.auto_create_topics_enable):
                        raise UnknownTopicOrPartitionError()
                    await self._auto_create(name)
                    if name not in known:
                        raise LeaderNotAvailableError()
                out.append(self._describe(name))
            except BrokerError as e:
                out.append(TopicDescription(name, error=e, is_internal=is_internal(name)))
        return out

    def topic_names(self) -> list[str]:
        return sorted(self.membership.topics) if self.membership is not None else []

    def describe_configs(self, topic: str = "") -> list[ConfigValue]:
        """A topic's settings (every topic-level name, overrides marked non-default), or with
        "" the broker's own. Raises InvalidTopicError or UnknownTopicOrPartitionError."""
        if not topic:
            return [ConfigValue(n, v, d, read_only=True) for n, v, d in self.config.entries()]
        validate_topic(topic)
        if self.membership is None or topic not in self.membership.topics:
            raise UnknownTopicOrPartitionError()
        return self._topic_configs(self.membership.topics[topic])

    # -- create, grow, delete ---------------------------------------------------------------------

    async def _auto_create(self, name: str) -> None:
        [result] = await self.create_topics([NewTopic(name)])
        if result.error is not None and not isinstance(result.error, errors.TopicExistsError):
            raise result.error
        log.info("broker %s: created topic %s on first use", self.broker_id, name)

    async def create_topics(self, topics: list[NewTopic], *, validate_only: bool = False) -> list[TopicResult]:
        """Each topic checked against the partition budget (dcli.max.partitions), counting the
        ones asked for earlier in the same request, before a replica list is built for it."""
        check_topics_in_request(len(topics), self.config, "CreateTopics")
        await self.ready()
        entries = Counter(t.name for t in topics)
        held = sum(a.partitions for a in self.membership.topics.values())
        planned: dict[str, int] = {}      # earlier topics of this request, by partitions
        out = []
        for t in topics:
            try:
                if entries[t.name] > 1:
                    raise InvalidRequestError(message=(
                        f"Create topics request contains multiple entries for the topic {t.name}."))
                n, rf = t.num_partitions, t.replication_factor
                if not t.assignments:
                    n = n if n != -1 else self.config.num_partitions
                    rf = rf if rf != -1 else self.config.default_replication_factor
                known = self.membership.topics
                if t.name not in known:
                    pending = sum(v for k, v in planned.items() if k not in known)
                    check_partition_budget(len(t.assignments) if t.assignments else max(n, 0), known,
                                           self.config, pending=pending, held=held)
                assignment = await asyncio.to_thread(self._create_in_tree, t.name, n, rf, dict(t.configs),
                                                     dict(t.assignments), validate_only)
                planned[t.name] = assignment.partitions
                if not validate_only:
                    await self._acted_on(t.name, assignment.partitions, assignment.topic_id)
                    held = sum(a.partitions for a in self.membership.topics.values())
                out.append(TopicResult(t.name, assignment.topic_id))
            except BrokerError as e:
                out.append(TopicResult(t.name, "", e))
            except _UNREACHABLE as e:
                out.append(TopicResult(t.name, "", errors.RequestTimedOutError(message=(
                    f"The cluster's metadata cannot be reached: {e}"))))
        return out

    def _create_in_tree(self, name: str, partitions: int, rf: int, configs: dict[str, str],
                        assignments: dict[int, list[int]], validate_only: bool) -> meta.TopicAssignment:
        m = self.membership
        client = m.client(wait=READY_WAIT_S)
        if validate_only:
            check_topic_configs(configs, self.config)
            return plan_assignment(client, name, partitions, rf, assignments=assignments, broker=self.config)
        assignment = None
        if m.is_controller:
            with contextlib.suppress(errors.NotControllerError):
                assignment = m.controller.create_topic(name, partitions, rf, configs, assignments=assignments)
        if assignment is None:
            assignment = propose_topic(client, name, partitions, rf, configs, broker=self.config,
                                       assignments=assignments)
        m.wait_for_states(name, assignment.partitions, CREATE_WAIT_S)
        return assignment

    async def create_partitions(self, topic: str, count: int, *, validate_only: bool = False) -> TopicResult:
        await self.ready()
        found = self.membership.topics.get(topic)
        if found is None:
            return TopicResult(topic, "", UnknownTopicOrPartitionError(message=f"Topic '{topic}' does not exist."))
        try:
            plan_partitions(found, count, brokers=self.brokers, config=self.config, existing=self.membership.topics)
            if not validate_only:
                client = await asyncio.to_thread(self.membership.client, READY_WAIT_S)
                await asyncio.to_thread(add_partitions, client, topic, count, broker=self.config,
                                        existing=self.membership.topics)
                await asyncio.to_thread(self.membership.wait_for_states, topic, count, CREATE_WAIT_S)
                await self._acted_on(topic, count, found.topic_id)
            return TopicResult(topic, found.topic_id)
        except BrokerError as e:
            return TopicResult(topic, found.topic_id, e)
        except _UNREACHABLE as e:
            return TopicResult(topic, found.topic_id, errors.RequestTimedOutError(message=(
                f"The cluster's metadata cannot be reached: {e}")))

    async def delete_topics(self, names: list[str]) -> list[TopicResult]:
        check_topics_in_request(len(names), self.config, "DeleteTopics")
        await self.ready()
        out = []
        for name in names:
            found = self.membership.topics.get(name)
            if found is None:
                out.append(TopicResult(name, "", UnknownTopicOrPartitionError()))
                continue
            try:
                client = await asyncio.to_thread(self.membership.client, READY_WAIT_S)
                await asyncio.to_thread(delete_topic, client, name, found)
                await self._acted_on(name, 0, found.topic_id, gone=True)
                out.append(TopicResult(name, found.topic_id))
            except errors.NoNodeError:
                out.append(TopicResult(name, "", UnknownTopicOrPartitionError()))
            except errors.DcliError as e:
                out.append(TopicResult(name, found.topic_id, errors.RequestTimedOutError(message=(
                    f"Deleting topic {name} failed: {e}"))))
        return out

    async def _acted_on(self, topic: str, partitions: int, topic_id: str, *, gone: bool = False) -> None:
        """Wait (a bounded time) until this broker has acted on the tree's word about `topic`:
        it leads the partitions the tree says it leads, or (`gone`) it closed them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CREATE_WAIT_S
        while not self._closed:
            if (self._local_gone(topic, topic_id) if gone else self._local_leads(topic, partitions, topic_id)):
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return          # the client retries what it finds missing
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._applied.wait(), remaining)

    def _local_gone(self, topic: str, topic_id: str) -> bool:
        known = self._topics.get(topic)
        return (known is None or known.topic_id != topic_id) and (
            self.membership.topics.get(topic) is None or self.membership.topics[topic].topic_id != topic_id)

    def _local_leads(self, topic: str, partitions: int, topic_id: str) -> bool:
        parts = self._partitions.get(topic, [])
        for i in range(partitions):
            found = self.membership.partition_states.get((topic, i))
            if found is None:
                return False
            state, version = found
            if state.leader != self.broker_id:
                continue
            p = parts[i] if i < len(parts) else None
            if p is None or p.topic_id != topic_id or not p.is_leader or p.state_version < version:
                return False
        return True

    # -- elections ------------------------------------------------------------------------------

    async def elect_leaders(self, partitions: list[tuple[str, int]] | None, *, unclean: bool = False,
                            forwarded: bool = False) -> dict[tuple[str, int], BrokerError | None]:
        """Done by the controller: this broker if it is the one, else forwarded to it once."""
        await self.ready()
        m = self.membership
        if m.is_controller:
            return await asyncio.to_thread(m.controller.elect_leaders, partitions, unclean=unclean)
        target = m.brokers.get(m.controller_id)
        if forwarded or target is None:
            raise errors.NotControllerError()
        request = pb.ElectLeadersRequest(election_type=1 if unclean else 0, forwarded=True,
                                         all_partitions=partitions is None,
                                         partitions=[pb.TopicPartition(topic=t, partition=i)
                                                     for t, i in partitions or ()])
        link = self.peers.link(target.broker_id)
        try:
            reply = await link.elect_leaders(request, timeout=30)
        except PeerUnreachable as e:
            raise errors.NotControllerError(message=(
                f"The controller (broker {target.broker_id}) cannot be reached: {e}")) from None
        finally:
            await link.close()
        if reply.error_code:
            raise errors.kafka_error(reply.error_code, reply.error_message)
        return {(r.topic, r.partition): errors.kafka_error(r.error_code, r.error_message) if r.error_code else None
                for r in reply.results}
