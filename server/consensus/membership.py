"""Membership: who votes and who only learns, as the committed membership changes say, and since
which index; and when a learner has caught up enough to become a voter.

A new member joins as a learner (etcd's model): the leader sends it the log and snapshots like
to any follower, but it never votes, never campaigns, and its acknowledgements count toward
neither a commit nor the leader's quorum check. So adding a member that never answers (a wrong
address, a machine not started yet) cannot take the quorum away; the leader promotes it to voter
once its log is within reach of the leader's (`caught_up`), one membership change at a time.

    members = Membership(0, ConfState(frozenset({1, 2, 3})))
    members.check(ConfChange(ConfChangeType.ADD_LEARNER_NODE, 4))   # ValueError if it cannot be
    members.apply(7, ConfChange(ConfChangeType.ADD_LEARNER_NODE, 4)) # once entry 7 commits
    members.learners                  # frozenset({4})
    members.at(6)                     # ConfState(voters={1, 2, 3}): what a snapshot at 6 carries

`check` refuses, before it is proposed, a change that makes no sense against the committed
membership; `apply` never refuses, since every node must reach the same membership from the
same log: a change that no longer fits (an old leader's, say) leaves the membership as it is.
"""
from __future__ import annotations

from dcli_server.consensus.messages import ConfChange, ConfChangeType as CC, ConfState


class Membership:
    __slots__ = ("voters", "learners", "_history")

    def __init__(self, index: int, conf: ConfState):
        self.voters: frozenset[int] = conf.voters
        self.learners: frozenset[int] = conf.learners - conf.voters
        self._history: list[tuple[int, ConfState]] = [(index, self.conf)]

    @property
    def conf(self) -> ConfState:
        return ConfState(self.voters, self.learners)

    @property
    def all(self) -> frozenset[int]:
        """Every member: the nodes the leader replicates to."""
        return self.voters | self.learners

    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def check(self, cc: ConfChange) -> None:
        """Raise ValueError if `cc` cannot be made to the current membership."""
        node = cc.node_id
        if cc.type == CC.ADD_NODE and node in self.voters:
            raise ValueError(f"node {node} is already a voter")
        if cc.type == CC.ADD_LEARNER_NODE and node in self.all:
            raise ValueError(f"node {node} is already a {'voter' if node in self.voters else 'learner'}")
        if cc.type == CC.PROMOTE_LEARNER and node not in self.learners:
            raise ValueError(f"node {node} is not a learner")
        if cc.type == CC.REMOVE_NODE:
            if node not in self.all:
                raise ValueError(f"node {node} is not a member")
            if self.voters == {node}:
                raise ValueError("cannot remove the last voter")

    def apply(self, index: int, cc: ConfChange) -> None:
        """The change committed at `index` takes effect."""
        voters, learners, node = set(self.voters), set(self.learners), cc.node_id
        if cc.type == CC.ADD_NODE or (cc.type == CC.PROMOTE_LEARNER and node in learners):
            voters.add(node)
            learners.discard(node)
        elif cc.type == CC.ADD_LEARNER_NODE and node not in voters:
            learners.add(node)      # a voter is never demoted this way
        elif cc.type == CC.REMOVE_NODE:
            voters.discard(node)
            learners.discard(node)
        self.voters, self.learners = frozenset(voters), frozenset(learners)
        self._history.append((index, self.conf))

    def at(self, index: int) -> ConfState:
        """The membership as of `index` (not before the oldest index kept: see `compact`)."""
        conf = self._history[0][1]
        for at, c in self._history:
            if at <= index:
                conf = c
        return conf

    def compact(self, index: int) -> None:
        """Nothing will ask for the membership before `index` any more."""
        keep = 0
        for i, (at, _) in enumerate(self._history):
            if at <= index:
                keep = i
        del self._history[:keep]

    def restore(self, index: int, conf: ConfState) -> None:
        """A snapshot from the leader replaced the log."""
        self.voters, self.learners = conf.voters, conf.learners - conf.voters
        self._history = [(index, self.conf)]


def caught_up(match: int, last_index: int, since: int, within: int) -> bool:
    """Whether a learner whose log matches the leader's up to `match` is ready to vote: it holds
    the entries since `since` (the leader's first of its term, or its latest membership change:
    the learner has heard from this leader and knows the membership it joins) and is at most
    `within` entries behind the leader's last. Within the entries in flight to a follower in
    step: a voter that far behind catches up as fast as any follower, where one that still needs
    most of the log would leave a cluster that loses another node without a quorum while it
    copies (etcd promotes at 90% of the leader's log for the same reason)."""
    return match >= since and match >= last_index - within
