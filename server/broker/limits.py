"""The broker's bounds at the edge, as pure checks: what a request may ask for before the broker
does any work or keeps anything for it. Each bound is a BrokerConfig setting (Kafka's name where
Kafka has one; docs/broker.md, "Limits") and each refusal is Kafka's error with one line saying
which bound and how to raise it.

    check_topics_in_request(len(request.topics), config, "CreateTopics")   # InvalidRequestError
    check_partition_budget(adding=6, existing=topics, config=config, pending=3)
    error = group_request_error(config, group_id, member_id=member, client_id=client)
    if error is not None: ...answer with error.kafka_code and error.message, store nothing

Where the bounds sit: partitions and replication factor before any replica list is built
(admin.py, topics.py); decompressed batch sizes before a batch is appended (partition.py, in a
thread); a fetch's wait and size when it starts (broker.py); group and id bounds before a
group's offsets are read or anything is kept for it (api/broker_groups.py, groups.py).
"""
from __future__ import annotations

from typing import Iterable, Mapping

from dcli.wire.errors import (BrokerError, InvalidGroupIdError, InvalidPartitionsError,
                              InvalidRequestError, InvalidTopicError)
from dcli.wire.topics import validate_topic
from dcli_server.broker.cluster_meta import TopicAssignment
from dcli_server.broker.config import BrokerConfig

MEMBER_ID_EXTRA = 64        # a member id is the client id, "-" and a UUID (37 characters)


def check_topics_in_request(count: int, config: BrokerConfig, request: str) -> None:
    """A request naming more topics than the broker can ever hold (each topic has a partition)
    is refused as a whole, before one result is made for each."""
    if count > config.max_partitions:
        raise InvalidRequestError(message=(
            f"{request} names {count} topics; at most {config.max_partitions} fit in one request "
            f"(dcli.max.partitions)."))


def check_groups_in_request(count: int, config: BrokerConfig, request: str) -> None:
    """The same for groups: more than dcli.max.groups in one request is refused as a whole."""
    if count > config.max_groups:
        raise InvalidRequestError(message=(
            f"{request} names {count} groups; at most {config.max_groups} fit in one request "
            f"(dcli.max.groups)."))


def check_partition_budget(adding: int, existing: Mapping[str, TopicAssignment], config: BrokerConfig,
                           *, pending: int = 0, held: int | None = None) -> None:
    """Refuse `adding` partitions when the broker would then hold more than dcli.max.partitions:
    those of `existing` (or `held`, when the caller counted them already) and `pending` ones,
    asked for earlier in the same request and not yet among `existing`."""
    if held is None:
        held = sum(t.partitions for t in existing.values())
    if held + pending + adding > config.max_partitions:
        more = f" and {pending} more in this request" if pending else ""
        raise InvalidPartitionsError(message=(
            f"Unable to add {adding} partition(s): the broker holds {held}{more} of at most "
            f"{config.max_partitions} partitions (dcli.max.partitions)."))


def _too_long(what: str, value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"The {what} of {len(value)} characters exceeds the limit of {limit} (dcli.max.id.length)."
    return None


def group_request_error(config: BrokerConfig, group_id: str, *, member_id: str = "", client_id: str = "",
                        client_host: str = "", protocol_type: str = "",
                        protocols: Iterable[str] = ()) -> BrokerError | None:
    """Why a group request must be refused before anything is read or kept for it: a group id
    too long (INVALID_GROUP_ID, as Kafka answers an unusable group id), or a member id, client
    id, host or protocol name too long (INVALID_REQUEST). None: within the bounds."""
    limit = config.max_id_length
    why = _too_long("group id", group_id, limit)
    if why is not None:
        return InvalidGroupIdError(message=why)
    for what, value, bound in (("member id", member_id, limit + MEMBER_ID_EXTRA),
                               ("client id", client_id, limit), ("client host", client_host, limit),
                               ("protocol type", protocol_type, limit),
                               *(("protocol name", name, limit) for name in protocols)):
        why = _too_long(what, value, bound)
        if why is not None:
            return InvalidRequestError(message=why)
    return None


def offset_topic_error(topic: str) -> BrokerError | None:
    """Why an offset cannot be committed under `topic`: not a topic name Kafka allows (too long,
    or characters such as "/" that would change where the offset is kept)."""
    try:
        validate_topic(topic)
    except InvalidTopicError as e:
        return e
    return None
