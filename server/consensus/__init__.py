"""Replication of the coordination tree across nodes: Raft.

This package is the pure consensus core (no network, no clock), driven by the caller through
`RaftNode`'s inputs and its `Ready` outputs, and the storage of what a Ready says to persist;
server/cluster drives it on the event loop with a gRPC transport.

    messages.py   entries, messages, hard/soft state, snapshots, and their byte encoding
    log.py        RaftLog: the in-memory log after a snapshot, and which part is persisted
    membership.py Membership: voters and learners, and when a learner is caught up to vote
    progress.py   Progress: the leader's view of one follower's log (probe, replicate, snapshot)
    raft.py       RaftNode: elections, replication, commit, snapshots, transfer, membership
    storage.py    RaftStorage: entries, hard state and snapshots on disk
"""
from dcli_server.consensus.messages import (
    NONE, ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message,
    MessageType, Role, Snapshot, SoftState, decode, encode)
from dcli_server.consensus.raft import Config, PersistedState, ProposalDropped, RaftNode, Ready

__all__ = [
    "NONE", "Config", "ConfChange", "ConfChangeType", "ConfState", "Entry", "EntryType",
    "HardState", "Message", "MessageType", "PersistedState", "ProposalDropped", "RaftNode",
    "Ready", "Role", "Snapshot", "SoftState", "decode", "encode",
]
