"""Replication of the coordination tree across nodes: Raft.

This package is the pure consensus core (no I/O), driven by the caller through `RaftNode`'s
inputs and its `Ready` outputs; the transport and the durable log wrap it elsewhere.

    messages.py  entries, messages, hard/soft state, snapshots, and their byte encoding
    log.py       RaftLog: the in-memory log after a snapshot, and which part is persisted
    raft.py      RaftNode: elections, replication, commit, snapshots, transfer, membership
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
