"""Partitions replicated across brokers, on real node processes: the seed's
`kafka-topics --create --replication-factor 3 --partitions 3`, followers fetching from leaders,
the ISR shrinking and growing, acks=all and min.insync.replicas, and a leader's SIGKILL losing
nothing that was acknowledged.

Every wait is on a predicate with a generous deadline; nothing sleeps for a fixed time.
"""
from __future__ import annotations

import json
import threading

import pytest

from dcli.client import Admin, Consumer, CoordClient, Producer
from dcli.wire import errors
from dcli.wire.records import decode_records, iter_batches
from dcli_server.storage.segments import PartitionLog

from tests.cluster_fixture import DEFAULT_SERVER_ARGS
from tests.conftest import run_cli

WAIT_S = 60.0
# A broker silent for 4 s (the tree's shortest session) is taken for dead; a follower 2 s behind
# leaves the ISR.
SERVER_ARGS = (*DEFAULT_SERVER_ARGS, "--broker-session-timeout-ms", "4000",
               "--override", "replica.lag.time.max.ms=2000")


def partitions(c, topic: str, *alive: int) -> dict[int, object]:
    """partition -> its metadata, asked of the first live node that answers."""
    for i in alive or c.ids:
        try:
            with Admin(c.address(i), timeout=5) as admin:
                [t] = admin.describe_topics([topic])
                return {p.partition: p for p in t.partitions}
        except errors.DcliError:
            continue
    return {}


def leader(c, topic: str, p: int, *alive: int) -> int:
    found = partitions(c, topic, *alive).get(p)
    return found.leader if found is not None else -1


def create(c, topic: str, partitions_: int = 3, rf: int = 3, configs: dict | None = None) -> None:
    with Admin(c.address(c.ids[0]), timeout=30) as admin:
        admin.create_topic(topic, partitions_, rf, configs or {})


def produce(c, topic: str, p: int, values: list[bytes], *, acks="all", retries: int = 2147483647) -> list[int]:
    """Send through the client, which finds the partition's leader; the acknowledged offsets."""
    with Producer(c.servers, acks=acks, retries=retries, linger_ms=0, enable_idempotence=acks == "all" and retries > 0,
                  delivery_timeout_ms=int(WAIT_S * 1000)) as producer:
        futures = [producer.send(topic, v, partition=p) for v in values]
        producer.flush(WAIT_S)
        return [f.result(WAIT_S).offset for f in futures]


def consume(c, topic: str, p: int, expected: int) -> list[tuple[int, bytes]]:
    """Everything in the partition from its start, read from its leader (the client finds it),
    until `expected` records came (or the deadline passed)."""
    out = []
    with Consumer(c.servers) as consumer:
        consumer.assign([(topic, p)])
        consumer.seek_to_beginning()
        for _ in range(200):
            out += [(r.offset, r.value) for r in consumer.poll(200)]
            if len(out) >= expected:
                break
    return out


def described(c, node: int, *flags: str) -> set[tuple[str, int]]:
    """(topic, partition) of each partition line `kafka-topics --describe <flags>` prints."""
    out = run_cli("kafka", "topics", "--describe", *flags, "--bootstrap-server", c.address(node))
    assert out.returncode == 0, out.stdout + out.stderr
    found = set()
    for line in out.stdout.decode().splitlines():
        fields = dict(f.split(": ", 1) for f in line.strip().split("\t") if ": " in f)
        if "Partition" in fields:
            found.add((fields["Topic"], int(fields["Partition"])))
    return found


def test_the_seeds_command_places_three_replicas_of_three_partitions(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    out = run_cli("kafka", "topics", "--create", "--topic", "chat", "--bootstrap-server", c.address(1),
                  "--replication-factor", "3", "--partitions", "3")
    assert out.stdout.decode().strip() == "Created topic chat."
    c.wait_for(lambda: all(p.leader > 0 for p in partitions(c, "chat").values()), WAIT_S)
    parts = partitions(c, "chat")
    assert sorted(parts) == [0, 1, 2]
    assert {p.leader for p in parts.values()} == {1, 2, 3}           # leaders spread
    for p in parts.values():
        assert sorted(p.replicas) == [1, 2, 3] and p.leader == p.replicas[0]
        assert sorted(p.isr) == [1, 2, 3]
    described = run_cli("kafka", "topics", "--describe", "--topic", "chat", "--bootstrap-server", c.address(2))
    lines = described.stdout.decode().splitlines()
    assert lines[0].startswith("Topic: chat\tTopicId: ") and "\tPartitionCount: 3\tReplicationFactor: 3\t" in lines[0]
    for p in parts.values():
        replicas = ",".join(map(str, p.replicas))
        assert (f"\tTopic: chat\tPartition: {p.partition}\tLeader: {p.leader}\tReplicas: {replicas}"
                f"\tIsr: {','.join(map(str, p.isr))}") in lines
    # grown from any broker: the controller's watch on the assignment places the new partitions
    out = run_cli("kafka", "topics", "--alter", "--topic", "chat", "--partitions", "5",
                  "--bootstrap-server", c.address(2))
    assert out.returncode == 0, out.stdout + out.stderr
    c.wait_for(lambda: len(parts := partitions(c, "chat")) == 5 and all(
        p.leader > 0 and len(p.isr) == 3 for p in parts.values()), WAIT_S)
    assert produce(c, "chat", 4, [b"grown"]) == [0]


def test_too_few_live_brokers_is_kafkas_error(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    out = run_cli("kafka", "topics", "--create", "--topic", "big", "--bootstrap-server", c.address(1),
                  "--replication-factor", "4", "--partitions", "1")
    assert out.returncode != 0
    assert (out.stdout + out.stderr).decode() == (
        "Error while executing topic command : Unable to replicate the partition 4 time(s): The target "
        "replication factor of 4 cannot be reached because only 3 broker(s) are registered.\n")
    # A topic made by hand in the tree under a name Kafka refuses never becomes a directory.
    with CoordClient(c.servers) as zk:
        zk.create("/brokers/topics/bad name", json.dumps(
            {"version": 3, "topic_id": "AAAAAAAAAAAAAAAAAAAAAQ", "partitions": {"0": [1, 2, 3]}}).encode())
    create(c, "good", 1, 3)
    c.wait_for(lambda: leader(c, "good", 0) > 0, WAIT_S)
    assert produce(c, "good", 0, [b"fine"]) == [0]
    for i in c.ids:
        assert not any(" " in d.name for d in (c.manager.node(i).data_dir / "broker").iterdir())


def test_acknowledged_records_survive_the_leaders_sigkill(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    create(c, "orders", 1, 3)
    c.wait_for(lambda: leader(c, "orders", 0) > 0, WAIT_S)
    first = leader(c, "orders", 0)
    values = [f"order-{i}".encode() for i in range(200)]
    offsets = produce(c, "orders", 0, values)
    assert offsets == list(range(200))
    c.kill(first)
    alive = [i for i in c.ids if i != first]
    c.wait_for(lambda: leader(c, "orders", 0, *alive) in alive, WAIT_S)
    parts = partitions(c, "orders", *alive)
    assert first not in parts[0].isr
    got = consume(c, "orders", 0, 200)
    assert got == list(zip(range(200), values))               # each at its offset, once
    more = produce(c, "orders", 0, [b"after"])              # writes resume on the new leader
    assert more == [200]
    # The old leader comes back as a follower, catches up and rejoins the ISR.
    c.start(first)
    c.wait_for(lambda: first in partitions(c, "orders")[0].isr, WAIT_S)
    assert leader(c, "orders", 0) != first or partitions(c, "orders")[0].leader_epoch >= 2


def test_min_insync_replicas_refuses_acks_all_until_a_broker_returns(local_cluster):
    # Five nodes: with two brokers down the coordination tree keeps its majority (three of five).
    c = local_cluster(5, server_args=SERVER_ARGS)
    create(c, "strict", 1, 3, {"min.insync.replicas": "2"})
    create(c, "lonely", 5, 1)                   # one replica on each broker
    c.wait_for(lambda: leader(c, "strict", 0) > 0 and all(
        p.leader > 0 for p in partitions(c, "lonely").values()), WAIT_S)
    keep = leader(c, "strict", 0)
    others = [i for i in partitions(c, "strict")[0].replicas if i != keep]
    assert produce(c, "strict", 0, [b"a"]) == [0]
    for i in others:
        c.kill(i)
    c.wait_for(lambda: list(partitions(c, "strict", keep)[0].isr) == [keep], WAIT_S)
    # kafka-topics' filters: strict-0 lacks two in-sync replicas; the lonely partitions on the
    # dead brokers have no leader at all.
    stranded = {("lonely", p.partition) for p in partitions(c, "lonely", keep).values() if p.replicas[0] in others}
    c.wait_for(lambda: described(c, keep, "--unavailable-partitions") == stranded, WAIT_S)
    assert described(c, keep, "--under-replicated-partitions") == {("strict", 0)}
    with pytest.raises(errors.NotEnoughReplicasError, match="fewer in-sync replicas|insufficient"):
        produce(c, "strict", 0, [b"refused"], retries=0)
    assert produce(c, "strict", 0, [b"acks=1 still works"], acks=1) == [1]
    c.start(others[0])
    c.wait_for(lambda: len(partitions(c, "strict", keep, others[0])[0].isr) == 2, WAIT_S)
    assert produce(c, "strict", 0, [b"accepted again"]) == [2]


def test_a_paused_follower_leaves_the_isr_and_rejoins(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    create(c, "slow", 1, 3)
    c.wait_for(lambda: leader(c, "slow", 0) > 0, WAIT_S)
    lead = leader(c, "slow", 0)
    follower = next(i for i in c.ids if i != lead)
    c.pause(follower)
    try:
        # Writes keep coming: a follower that does not fetch falls behind and leaves.
        c.wait_for(lambda: produce(c, "slow", 0, [b"x"]) and follower not in partitions(c, "slow", lead)[0].isr,
                   WAIT_S)
    finally:
        c.resume(follower)
    c.wait_for(lambda: follower in partitions(c, "slow", lead)[0].isr, WAIT_S)


def stored(c, node_id: int, topic: str, p: int) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in a stopped node's copy of the partition, read from its
    files with the log's own reader."""
    directory = c.manager.node(node_id).data_dir / "broker" / f"{topic}-{p}"
    with PartitionLog(directory) as plog:
        data = plog.read(plog.log_start_offset, 64 << 20)
    return [(r.offset, r.value) for _, batch in iter_batches(memoryview(data)) for r in decode_records(batch)]


def test_a_leader_that_comes_back_truncates_what_only_it_had(local_cluster):
    # Five nodes, so that the tree keeps a majority with three of them down or paused.
    c = local_cluster(5, server_args=SERVER_ARGS)
    create(c, "fenced", 1, 3, {"unclean.leader.election.enable": "true"})
    c.wait_for(lambda: leader(c, "fenced", 0) > 0, WAIT_S)
    old, *followers = partitions(c, "fenced")[0].replicas
    assert produce(c, "fenced", 0, [b"kept-0", b"kept-1"]) == [0, 1]
    for f in followers:
        c.kill(f)
    # Taken by the leader alone (acks=1), with its followers dead: nobody else has these.
    assert produce(c, "fenced", 0, [b"lost-2", b"lost-3"], acks=1) == [2, 3]
    c.pause(old)
    try:
        for f in followers:
            c.start(f)
        # The old leader's session expires with no other ISR member alive: the topic allows an
        # unclean election, so a returning replica leads, in a new leader epoch.
        c.wait_for(lambda: leader(c, "fenced", 0, *followers) in followers, WAIT_S)
        assert produce(c, "fenced", 0, [b"new-2"], acks=1) == [2]
    finally:
        c.resume(old)
    # The old leader follows: where its epoch ends in the new leader's log it truncates (offset
    # 2, not its high watermark), then fetches.
    c.wait_for(lambda: old in partitions(c, "fenced", *followers)[0].isr, WAIT_S)
    assert consume(c, "fenced", 0, 3) == [(0, b"kept-0"), (1, b"kept-1"), (2, b"new-2")]
    c.stop(old)
    assert stored(c, old, "fenced", 0) == [(0, b"kept-0"), (1, b"kept-1"), (2, b"new-2")]


def test_preferred_leaders_come_back_by_command_and_by_themselves(local_cluster):
    c = local_cluster(3, server_args=(*SERVER_ARGS, "--override", "auto.leader.rebalance.enable=false"))
    create(c, "chat", 3, 3)
    c.wait_for(lambda: all(p.leader > 0 for p in partitions(c, "chat").values()), WAIT_S)
    victim = partitions(c, "chat")[0].leader
    c.kill(victim)
    alive = [i for i in c.ids if i != victim]
    c.wait_for(lambda: partitions(c, "chat", *alive)[0].leader in alive, WAIT_S)
    c.start(victim)
    c.wait_for(lambda: all(victim in p.isr for p in partitions(c, "chat").values()), WAIT_S)
    assert partitions(c, "chat")[0].leader != victim        # no automatic move back: disabled here
    out = run_cli("kafka", "leader-election", "--bootstrap-server", c.address(alive[0]),
                  "--election-type", "preferred", "--all-topic-partitions")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.decode().splitlines() == [
        "Successfully completed leader election (PREFERRED) for partitions chat-0",
        "Valid replica already elected for partitions chat-1, chat-2"]
    assert partitions(c, "chat")[0].leader == victim


def test_the_controller_restores_preferred_leaders_on_its_own(local_cluster):
    c = local_cluster(3, server_args=(*SERVER_ARGS, "--override", "leader.imbalance.check.interval.seconds=1"))
    create(c, "auto", 1, 3)
    c.wait_for(lambda: leader(c, "auto", 0) > 0, WAIT_S)
    preferred = partitions(c, "auto")[0].replicas[0]
    c.kill(preferred)
    alive = [i for i in c.ids if i != preferred]
    c.wait_for(lambda: leader(c, "auto", 0, *alive) in alive, WAIT_S)
    c.start(preferred)
    c.wait_for(lambda: leader(c, "auto", 0) == preferred, WAIT_S)


def test_a_leaders_sigkill_during_acks_all_writes_loses_and_repeats_nothing(local_cluster):
    """Idempotent acks=all producing while the partition's leader is SIGKILLed; a consumer reads
    all along. Every acknowledged record is there afterwards, at its acknowledged offset, once;
    everything the consumer saw during the failover is still there too."""
    c = local_cluster(3, server_args=SERVER_ARGS)
    create(c, "stream", 1, 3)
    c.wait_for(lambda: leader(c, "stream", 0) > 0, WAIT_S)
    first = leader(c, "stream", 0)
    acked: dict[bytes, int] = {}
    seen: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def read() -> None:
        with Consumer(c.servers) as consumer:
            consumer.assign([("stream", 0)])
            consumer.seek_to_beginning()
            while not stop.is_set():
                seen.extend((r.offset, r.value) for r in consumer.poll(100))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with Producer(c.servers, acks="all", linger_ms=2, delivery_timeout_ms=int(WAIT_S * 1000)) as producer:
        def send(i: int):
            value = f"r{i:05d}".encode()
            fut = producer.send("stream", value, partition=0)
            fut.add_done_callback(lambda f: acked.__setitem__(value, f.result().offset)
                                  if f.exception() is None else None)
            return fut
        futures = [send(i) for i in range(300)]
        c.wait_for(lambda: len(acked) >= 100, WAIT_S)
        c.kill(first)
        futures += [send(i) for i in range(300, 600)]
        producer.flush(WAIT_S)
        errors_ = [f.exception() for f in futures if f.exception() is not None]
    assert not errors_, errors_[:3]
    c.wait_for(lambda: len(seen) >= 600, WAIT_S)
    stop.set()
    reader.join(WAIT_S)
    final = consume(c, "stream", 0, 600)
    values = [v for _, v in final]
    assert len(values) == len(set(values)) == 600                  # every record once
    assert {v: o for o, v in final} == acked                        # at its acknowledged offset
    assert set(seen) <= set(final)                                 # nothing seen was taken back
    assert leader(c, "stream", 0) != first


def test_after_the_controllers_death_leaders_still_move(local_cluster):
    # Five nodes: the tree keeps its majority with two of them dead.
    c = local_cluster(5, server_args=SERVER_ARGS)
    create(c, "chat", 5, 3)
    c.wait_for(lambda: all(p.leader > 0 for p in partitions(c, "chat").values()), WAIT_S)
    ctl = c.status(1).controller_id
    c.kill(ctl)
    rest = [i for i in c.ids if i != ctl]
    c.wait_for(lambda: len({c.status(i).controller_id for i in rest} - {0}) == 1
               and c.status(rest[0]).controller_id in rest, WAIT_S)
    new_ctl = c.status(rest[0]).controller_id
    c.wait_for(lambda: all(p.leader in rest for p in partitions(c, "chat", *rest).values()), WAIT_S)
    led = {p.partition: p.leader for p in partitions(c, "chat", *rest).values()}
    victim = next(b for b in led.values() if b != new_ctl)
    c.kill(victim)
    alive = [i for i in rest if i != victim]
    c.wait_for(lambda: all(p.leader in alive for p in partitions(c, "chat", *alive).values()), WAIT_S)
    moved = [p for p, b in led.items() if b == victim]
    assert all(partitions(c, "chat", *alive)[p].leader != victim for p in moved)


def test_a_group_keeps_consuming_when_its_coordinator_dies(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    create(c, "jobs", 3, 3)
    c.wait_for(lambda: all(p.leader > 0 for p in partitions(c, "jobs").values()), WAIT_S)
    for p in range(3):
        produce(c, "jobs", p, [f"{p}-{i}".encode() for i in range(100)])
    with Admin(c.servers) as admin:
        coordinator, _ = admin.find_coordinator("workers")
    seen: list[bytes] = []
    with Consumer(c.servers, group_id="workers", auto_offset_reset="earliest", enable_auto_commit=False,
                  session_timeout_ms=10000, heartbeat_interval_ms=500) as consumer:
        consumer.subscribe(["jobs"])
        c.wait_for(lambda: seen.extend(r.value for r in consumer.poll(200)) or len(seen) >= 100, WAIT_S)
        consumer.commit()
        committed = len(seen)
        c.kill(coordinator)

        def caught_up_and_committed() -> bool:
            seen.extend(r.value for r in consumer.poll(200))
            if len(set(seen)) < 300:
                return False
            try:            # after the move the member joins the new coordinator, as in Kafka
                consumer.commit()
            except (errors.UnknownMemberIdError, errors.RebalanceInProgressError, errors.IllegalGenerationError):
                return False
            return consumer.committed_offsets([("jobs", p) for p in range(3)]) == {
                ("jobs", p): 100 for p in range(3)}
        c.wait_for(caught_up_and_committed, WAIT_S)
    assert set(seen) == {f"{p}-{i}".encode() for p in range(3) for i in range(100)}    # nothing lost
    assert len(seen) == 300 or len(seen) - 300 <= 300 - committed    # repeats only after the last commit
    # The offsets committed through the dead coordinator and its successor are in the tree:
    # the group starts again where it stopped.
    with Admin(c.servers) as admin:
        assert admin.find_coordinator("workers")[0] != coordinator
    with Consumer(c.servers, group_id="workers", auto_offset_reset="earliest") as again:
        again.subscribe(["jobs"])
        assert again.committed_offsets([("jobs", p) for p in range(3)]) == {("jobs", p): 100 for p in range(3)}


def test_every_node_killed_and_restarted_keeps_every_acknowledged_record(local_cluster):
    c = local_cluster(3, server_args=SERVER_ARGS)
    create(c, "ledger", 3, 3)
    c.wait_for(lambda: all(p.leader > 0 for p in partitions(c, "ledger").values()), WAIT_S)
    acked = {p: produce(c, "ledger", p, [f"{p}:{i}".encode() for i in range(50)]) for p in range(3)}
    for i in c.ids:
        c.kill(i)
    for i in c.ids:
        c.start(i)
    c.wait_for(lambda: all(p.leader > 0 and len(p.isr) == 3 for p in partitions(c, "ledger").values()), WAIT_S)
    for p in range(3):
        assert consume(c, "ledger", p, 50) == [(o, f"{p}:{i}".encode()) for i, o in enumerate(acked[p])]
    assert produce(c, "ledger", 0, [b"more"]) == [50]
