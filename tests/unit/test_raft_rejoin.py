"""A node that rejoins must not take the leadership from a leader that a quorum still hears.

Histories of the simulation (raft_sim.py) over a quiet network: a follower crashes and restarts
from its disk, or is paused (SIGSTOP) and resumed, while the leader goes on heartbeating the
others. The leader of the term before must stay the leader, in the same term, and no node may
move to a higher term (which alone would depose it). Pre-vote keeps the rejoining node's term
put, and check-quorum's lease makes the followers that heard from the leader within an election
timeout ignore its (pre-)votes; etcd does the same. A leader whose fsync is slow keeps its term
too, as its heartbeats (and the answers) leave while the fsync runs. The last tests show what the
checks catch: without the lease the rejoining node wins, and so it does when the leader is
silent to the others for an election timeout, as it was during a slow fsync before its
heartbeats left meanwhile (what the broker benchmark saw).
"""
from __future__ import annotations

import pytest

from dcli_server.consensus import Config, Role
from tests.unit.raft_sim import Faults, Simulation

QUIET = Faults(loss=0, duplicate=0, max_delay=2, long_delay=0, partition=0, crash=0, restart=0,
               crash_mid_ready=0, bounce=0, defer_ready=0, propose=0, compact=0, transfer=0,
               conf_change=0)
ET = 10   # the simulation's election timeout, in rounds (ticks)


class Deposed(AssertionError):
    pass


def settled(seed: int, n_nodes: int = 3) -> tuple[Simulation, int, int]:
    """A cluster whose nodes all follow one leader; (sim, leader, term)."""
    sim = Simulation(seed, n_nodes, QUIET)
    for _ in range(40 * ET):
        sim.step_round(faults=False)
        leaders = sim.leaders()
        if len(leaders) == 1 and all(n.core.lead == leaders[0].id for n in sim.nodes.values()):
            return sim, leaders[0].id, leaders[0].core.term
    raise AssertionError(f"seed={seed}: no leader")


def run_checked(sim: Simulation, leader: int, term: int, rounds: int, writes: bool = True) -> None:
    """`rounds` rounds (with a write every third if `writes`); raises Deposed if the leader
    loses its place."""
    for r in range(rounds):
        if writes and r % 3 == 0:
            sim.propose(b"w%d-%d" % (sim.round, r))
        sim.step_round(faults=False)
        lead = sim.nodes[leader].core
        top = max(n.core.term for n in sim.nodes.values() if n.alive)
        if lead.role != Role.LEADER or lead.term != term or top != term:
            raise Deposed(f"seed={sim.seed} round={sim.round}: leader {leader} of term {term} is "
                          f"now {lead.role.name} of term {lead.term}; terms "
                          f"{ {i: (n.core.role.name, n.core.term) for i, n in sim.nodes.items() if n.alive} }")


def restart_follower(seed: int, down: int, unheard: int, n_nodes: int = 3,
                     behind_term: bool = False, writes: bool = True) -> None:
    """A follower is down `down` rounds, restarts from its disk, and hears nothing from the
    leader for its first `unheard` rounds (the leader's stream to it reconnects late); its own
    messages go through. Without `writes` its log is as up to date as the others' when it
    restarts, so only the lease refuses its pre-votes. The leader must keep its term."""
    sim, leader, term = settled(seed, n_nodes)
    victim = sorted(i for i in sim.nodes if i != leader)[seed % (n_nodes - 1)]
    sim.nodes[victim].crash()
    if behind_term:
        # the others move to a new term while it is down: it restarts with an older one
        others = [i for i in sim.nodes if i not in (leader, victim)]
        sim.nodes[leader].core.transfer_leadership(others[0])
        for _ in range(4 * ET):
            sim.step_round(faults=False)
            if sim.leaders() and sim.leaders()[0].id == others[0]:
                break
        leader, term = sim.leaders()[0].id, sim.leaders()[0].core.term
        assert term > sim.nodes[victim].disk.hard_state.term
    run_checked(sim, leader, term, down, writes)
    sim.nodes[victim].restart()
    sim.cut.add((leader, victim))
    run_checked(sim, leader, term, unheard, writes)
    sim.cut.clear()
    target = sim.nodes[leader].core.log.committed
    run_checked(sim, leader, term, 6 * ET)
    for _ in range(40):     # and it catches up, as a follower of that leader
        if sim.nodes[victim].core.log.committed >= target:
            break
        run_checked(sim, leader, term, ET, writes=False)
    rejoined = sim.nodes[victim].core
    assert rejoined.lead == leader and rejoined.log.committed >= target


@pytest.mark.parametrize("writes", [False, True])
@pytest.mark.parametrize("unheard", [0, ET // 2, ET, 2 * ET, 5 * ET])
@pytest.mark.parametrize("seed", range(6))
def test_a_restarted_follower_does_not_depose_a_leader_the_others_hear(seed, unheard, writes):
    restart_follower(seed, down=2 * ET, unheard=unheard, writes=writes)


@pytest.mark.parametrize("unheard", [ET, 3 * ET])
@pytest.mark.parametrize("seed", range(6))
def test_in_five_nodes_too(seed, unheard):
    restart_follower(seed, down=3 * ET, unheard=unheard, n_nodes=5)


@pytest.mark.parametrize("seed", range(6))
def test_a_follower_that_restarts_with_an_older_term_does_not_depose_the_new_leader(seed):
    restart_follower(seed, down=ET, unheard=3 * ET, behind_term=True)


@pytest.mark.parametrize("pause", [ET // 2, 2 * ET, 10 * ET])
@pytest.mark.parametrize("seed", range(6))
def test_a_paused_follower_that_resumes_does_not_depose_the_leader(seed, pause):
    """SIGSTOP, then SIGCONT: it reads everything that waited for it at once, then ticks on."""
    sim, leader, term = settled(seed)
    victim = sorted(i for i in sim.nodes if i != leader)[seed % 2]
    sim.paused.add(victim)
    run_checked(sim, leader, term, pause)
    sim.resume(victim)
    run_checked(sim, leader, term, 6 * ET)


@pytest.mark.parametrize("late", [1, ET // 2, ET - 2])
@pytest.mark.parametrize("seed", range(6))
def test_a_leader_whose_heartbeats_are_late_by_less_than_an_election_timeout_keeps_its_term(seed, late):
    """A busy leader: its messages to the other follower are held `late` rounds at a time
    while a follower restarts."""
    sim, leader, term = settled(seed)
    victim, other = sorted(i for i in sim.nodes if i != leader)
    sim.nodes[victim].crash()
    run_checked(sim, leader, term, ET)
    sim.nodes[victim].restart()
    sim.cut.add((leader, victim))
    for _ in range(4):
        sim.cut.add((leader, other))
        run_checked(sim, leader, term, late)
        sim.cut.discard((leader, other))
        run_checked(sim, leader, term, 2)
    sim.cut.clear()
    run_checked(sim, leader, term, 6 * ET)


def slow_fsync_after_a_restart(seed: int, stall: int, shared_disk: bool,
                               liveness: bool) -> tuple[Simulation, int, int, int]:
    """The broker benchmark's case: a follower restarts, its timer runs before the leader's
    stream to it is back, and the leader's next fsync takes `stall` rounds (with `shared_disk`,
    the other follower's too). Returns (sim, leader, term, restarted node) as the stall begins."""
    sim, leader, term = settled(seed)
    sim.liveness_through_fsync = liveness
    victim, other = sorted(i for i in sim.nodes if i != leader)
    sim.nodes[victim].crash()
    run_checked(sim, leader, term, 2 * ET, writes=False)
    sim.nodes[victim].restart()
    sim.cut.add((leader, victim))
    run_checked(sim, leader, term, ET // 2, writes=False)
    sim.nodes[leader].stall = stall
    if shared_disk:
        sim.nodes[other].stall = stall
    return sim, leader, term, victim


@pytest.mark.parametrize("writes", [False, True])
@pytest.mark.parametrize("shared_disk", [False, True])
@pytest.mark.parametrize("stall", [2 * ET, 5 * ET])
@pytest.mark.parametrize("seed", range(5))
def test_a_leader_whose_fsync_is_slow_keeps_its_term_while_a_follower_restarts(seed, stall, shared_disk,
                                                                              writes):
    sim, leader, term, _ = slow_fsync_after_a_restart(seed, stall, shared_disk, liveness=True)
    run_checked(sim, leader, term, 2 * stall + ET, writes)
    sim.cut.clear()
    run_checked(sim, leader, term, 4 * ET)


# --- the checks can fail -----------------------------------------------------------------------

def test_without_the_followers_lease_a_restarted_follower_deposes_the_leader(monkeypatch):
    """Pre-vote alone does not stop it: the other follower's log is no newer than the restarted
    node's, so it grants the pre-vote; check-quorum's lease is what refuses it."""
    config = Simulation.config
    monkeypatch.setattr(Simulation, "config",
                        lambda self, node_id: Config(**{**vars(config(self, node_id)), "check_quorum": False}))
    deposed = 0
    for seed in range(8):
        try:
            restart_follower(seed, down=2 * ET, unheard=5 * ET, writes=False)
        except Deposed:
            deposed += 1
    assert deposed >= 6


@pytest.mark.parametrize("seed", range(4))
def test_a_leader_silent_to_the_others_for_an_election_timeout_is_deposed(seed):
    """What the lease cannot cover: the other follower has not heard from the leader for an
    election timeout, so it grants (pre-)votes, the restarted node's among them when its log is
    as up to date. The leader is then not healthy as Raft sees it, whatever its process does."""
    sim, leader, term = settled(seed)
    victim, other = sorted(i for i in sim.nodes if i != leader)
    sim.nodes[victim].crash()
    run_checked(sim, leader, term, ET, writes=False)
    sim.nodes[victim].restart()
    sim.cut.update({(leader, victim), (leader, other)})
    with pytest.raises(Deposed):
        run_checked(sim, leader, term, 5 * ET, writes=False)


@pytest.mark.parametrize("shared_disk", [False, True])
def test_without_heartbeats_during_a_slow_fsync_the_leader_is_deposed(shared_disk):
    """What the broker benchmark saw: the leader, silent while its fsync ran, lost its term,
    in some histories to the node that had just restarted."""
    won_by_restarted = 0
    for seed in range(10):
        sim, leader, term, restarted = slow_fsync_after_a_restart(seed, 3 * ET, shared_disk,
                                                                  liveness=False)
        with pytest.raises(Deposed):
            run_checked(sim, leader, term, 7 * ET, writes=False)
        for _ in range(10 * ET):
            sim.step_round(faults=False)
            won = [n.id for n in sim.leaders() if n.core.term > term]
            if won:
                won_by_restarted += won == [restarted]
                break
    assert won_by_restarted >= 2
