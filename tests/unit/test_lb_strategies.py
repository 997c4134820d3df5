"""The balancing strategies and the backends' state as pure functions (dcli.lb.strategies), and
the layer-7 route syntax (dcli.lb.routes.parse_route)."""
from __future__ import annotations

from collections import Counter

import pytest

from dcli.lb.routes import parse_route
from dcli.lb.strategies import STRATEGIES, BackendSet, NoBackendError
from dcli.wire import errors


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def backends(strategy: str, *specs, clock=None, **kw) -> BackendSet:
    """specs: address or (address, meta)."""
    s = BackendSet(strategy, clock=clock or Clock(), **kw)
    s.update((spec, {}) if isinstance(spec, str) else spec for spec in specs)
    return s


def picks(s: BackendSet, n: int, client_ip: str = "10.0.0.1", pool: str = "") -> list[str]:
    return [s.pick(client_ip, pool).address for _ in range(n)]


def test_round_robin_is_exact_and_in_registration_order():
    s = backends("round-robin", "a", "b", "c")
    assert picks(s, 9) == ["a", "b", "c"] * 3


def test_weighted_round_robin_is_smooth_and_exact_per_window():
    s = backends("weighted-round-robin", ("a", {"weight": "5"}), "b", "c")
    assert picks(s, 7) == ["a", "a", "b", "a", "c", "a", "a"]        # nginx's sequence: spread out
    assert Counter(picks(s, 70)) == {"a": 50, "b": 10, "c": 10}


def test_weighted_round_robin_reads_weights_live_and_ignores_bad_ones():
    s = backends("weighted-round-robin", ("a", {"weight": "x"}), ("b", {"weight": "-3"}))
    assert Counter(picks(s, 10)) == {"a": 5, "b": 5}                  # both count as weight 1
    s.update([("a", {"weight": "3"}), ("b", {})])
    assert Counter(picks(s, 40)) == {"a": 30, "b": 10}


def test_ip_hash_is_sticky_and_spreads_clients():
    s = backends("ip-hash", "a", "b", "c")
    for ip in ("10.0.0.1", "192.168.1.20", "::1"):
        assert len(set(picks(s, 20, ip))) == 1
    owners = {f"10.1.{i // 256}.{i % 256}": s.pick(f"10.1.{i // 256}.{i % 256}").address for i in range(600)}
    share = Counter(owners.values())
    assert set(share) == {"a", "b", "c"} and min(share.values()) > 150      # about 200 each


def test_ip_hash_moves_only_the_clients_of_a_backend_that_leaves():
    s = backends("ip-hash", "a", "b", "c")
    ips = [f"10.2.0.{i}" for i in range(200)]
    before = {ip: s.pick(ip).address for ip in ips}
    s.update([("a", {}), ("c", {})])
    after = {ip: s.pick(ip).address for ip in ips}
    assert all(after[ip] == before[ip] for ip in ips if before[ip] != "b")
    assert all(after[ip] in ("a", "c") for ip in ips)


def test_least_connections_picks_the_idle_one_and_takes_turns_on_ties():
    s = backends("least-connections", "a", "b", "c")
    a, b, c = s.all()
    a.active, b.active, c.active = 2, 0, 1
    assert picks(s, 3) == ["b", "b", "b"]
    b.active = 1
    a.active = 1
    assert sorted(picks(s, 3)) == ["a", "b", "c"]                      # equal: each in turn


def test_least_connections_counts_per_unit_of_weight():
    s = backends("least-connections", ("a", {"weight": "4"}), "b")
    a, b = s.all()
    a.active, b.active = 3, 1                                          # 0.75 per weight vs 1
    assert picks(s, 2) == ["a", "a"]


def test_response_time_prefers_the_faster_but_keeps_measuring_the_slower():
    s = backends("response-time", "slow", "fast")
    slow, fast = s.all()
    s.observe(slow, 0.100)
    s.observe(fast, 0.010)
    share = Counter(picks(s, 110))
    assert 95 <= share["fast"] <= 105 and share["slow"] >= 5             # weights 1/10 : 1/100


def test_response_time_counts_work_in_progress_and_tries_the_unmeasured():
    s = backends("response-time", "a", "b")
    a, b = s.all()
    s.observe(a, 0.010)
    s.observe(b, 0.010)
    a.active = 9                                                       # a: 10 x slower now
    assert Counter(picks(s, 11)) == {"a": 1, "b": 10}
    s.update([("a", {}), ("b", {}), ("new", {})])
    assert "new" in picks(s, 3)                                        # as fast as the fastest


def test_response_time_moving_average():
    s = backends("response-time", "a")
    (a,) = s.all()
    s.observe(a, 0.1)
    s.observe(a, 0.2)
    assert a.ewma_s == pytest.approx(0.3 * 0.2 + 0.7 * 0.1)
    s.observe(a, 1.0, sample=False)                                    # a health check: not a request
    assert a.latency_count == 2 and a.ewma_s > 0.13


def test_agent_picks_the_least_loaded_by_its_busiest_resource():
    s = backends("agent", ("a", {"cpu": "0.80", "mem": "0.10"}), ("b", {"cpu": "0.20", "mem": "0.30"}),
                 ("c", {"cpu": "0.10", "mem": "0.90"}), ("d", {}))
    assert picks(s, 4) == ["b"] * 4                                    # loads 0.8, 0.3, 0.9, unknown
    s.update([("a", {"cpu": "0.05", "mem": "0.05"}), ("b", {"cpu": "0.20", "mem": "0.30"}), ("d", {})])
    assert picks(s, 2) == ["a", "a"]                                   # follows what agents publish


def test_agent_ties_go_by_active_connections_and_unknown_load_comes_last():
    s = backends("agent", ("a", {"cpu": "0.5"}), ("b", {"cpu": "0.5"}), "c")
    a, b, c = s.all()
    a.active = 3
    assert picks(s, 2) == ["b", "b"]
    s2 = backends("agent", "x", "y")
    assert sorted(picks(s2, 2)) == ["x", "y"]                          # nobody publishes: take turns


def test_a_failed_backend_is_ejected_then_retried_after_its_back_off():
    clock = Clock()
    s = backends("round-robin", "a", "b", clock=clock, retry_after=2.0, max_retry_after=5.0)
    a, b = s.all()
    assert s.failed(a) == 2.0
    assert a.state(clock()) == "ejected" and a.errors == 1
    assert picks(s, 4) == ["b"] * 4
    clock.now += 2.0
    assert a.state(clock()) == "retrying" and "a" in picks(s, 2)         # offered again, on probation
    assert s.failed(a) == 4.0                                          # failed again: twice as long
    clock.now += 3.9
    assert picks(s, 3) == ["b"] * 3
    clock.now += 0.1
    assert s.failed(a) == 5.0                                          # capped
    assert s.succeeded(a) is True                                      # a success brings it back
    assert a.state(clock()) == "up" and a.ejections == 0
    assert s.failed(a) == 2.0                                          # the back-off starts over


def test_failures_while_ejected_do_not_extend_it_and_health_checks_do_not_count_as_errors():
    clock = Clock()
    s = backends("round-robin", "a", clock=clock, eject_after=2)
    (a,) = s.all()
    assert s.failed(a, count=False) is None                           # one failure: still up
    assert s.failed(a, count=False) == 2.0
    assert s.failed(a) is None and a.errors == 1
    assert a.ejected_until == clock.now + 2.0


def test_no_backend_gives_a_clear_error():
    clock = Clock()
    s = backends("least-connections", clock=clock)
    with pytest.raises(NoBackendError, match="no backend registered in the service"):
        s.pick("10.0.0.1")
    s.update([("a", {}), ("b", {})])
    for b in s.all():
        s.failed(b)
    with pytest.raises(NoBackendError, match=r"no backend of the service is up \(2 ejected\)") as e:
        s.pick("10.0.0.1")
    assert e.value.exit_code == errors.ExitCode.UNAVAILABLE
    clock.now += 10
    with pytest.raises(NoBackendError, match="2 failed just now"):
        s.pick("10.0.0.1", exclude=["a", "b"])


def test_pools_split_the_backends():
    s = backends("round-robin", ("w1", {"pool": "writers"}), "r1", ("w2", {"pool": "writers"}),
                 ("x", {"pool": "other"}), routed_pools={"writers"})
    assert picks(s, 4, pool="writers") == ["w1", "w2", "w1", "w2"]
    assert picks(s, 4) == ["r1", "x", "r1", "x"]                         # no route names 'other'
    with pytest.raises(NoBackendError, match="pool 'missing'"):
        s.pick("", "missing")


def test_update_keeps_the_state_of_backends_that_stay():
    s = backends("round-robin", "a", "b")
    a, _ = s.all()
    a.requests, a.active = 7, 1
    added, removed = s.update([("c", {}), ("a", {"weight": "2"}), ("a", {})])
    assert (added, removed) == (["c"], ["b"])
    assert [b.address for b in s.all()] == ["c", "a"]
    assert s.all()[1] is a and a.requests == 7 and a.weight == 2


def test_stats_report_latency_percentiles():
    s = backends("round-robin", "a")
    (a,) = s.all()
    for ms in range(1, 101):
        s.observe(a, ms / 1000)
    (row,) = s.stats()
    assert (row["mean_ms"], row["p50_ms"], row["p99_ms"]) == (50.5, 51.0, 100.0)
    assert row["state"] == "up" and row["requests"] == 0


def test_an_unknown_strategy_is_a_usage_error():
    with pytest.raises(errors.UsageError, match="unknown strategy 'fastest'"):
        BackendSet("fastest")


def test_the_cli_lists_the_same_strategies():
    from dcli.cli import lb

    assert lb.STRATEGIES == STRATEGIES


@pytest.mark.parametrize("text, request_, expected", [
    ("method=POST:writers", ("POST", "/x", []), True),
    ("method=POST:writers", ("GET", "/x", []), False),
    ("method=put|patch:writers", ("PATCH", "/x", []), True),
    ("path=/api:api", ("GET", "/api", []), True),
    ("path=/api:api", ("GET", "/api/orders?x=1", []), True),
    ("path=/api:api", ("GET", "/apix", []), False),
    ("path=/api/:api", ("GET", "/api/v1", []), True),
    ("header=X-Tier:gold", ("GET", "/", [("x-tier", "anything")]), True),
    ("header=X-Tier=gold:gold", ("GET", "/", [("x-tier", "silver")]), False),
    ("header=X-Tier=gold:gold", ("GET", "/", [("x-tier", "gold")]), True),
    ("method=POST,path=/api:w", ("POST", "/web", []), False),
    ("method=POST,path=/api:w", ("POST", "/api/x", []), True),
])
def test_routes_match(text, request_, expected):
    method, target, headers = request_
    route = parse_route(text)
    encoded = [(n.encode(), v.encode()) for n, v in headers]
    assert route.matches(method.encode(), target.encode(), encoded) is expected


@pytest.mark.parametrize("text, why", [
    ("method=POST", "no ':POOL' at the end"),
    ("method=POST:", "pool name '' is not"),
    ("verb=POST:w", "unknown match 'verb'"),
    ("path=api:w", "does not start with /"),
    ("method=P0ST:w", "is not a method"),
    ("header=Bad Name:w", "is not a header name"),
    ("method:w", "is not KIND=VALUE"),
])
def test_bad_routes_say_what_is_wrong(text, why):
    with pytest.raises(errors.UsageError, match=f"invalid --route .*{why}"):
        parse_route(text)
