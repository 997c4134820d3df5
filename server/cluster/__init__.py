"""The coordination tree across nodes: the Raft core driven on the event loop, and its wires.

    replica.py    Replica: RaftNode + RaftStorage + Transport, the tick and the Ready loop
    transport.py  Transport: Raft messages to every peer over gRPC streams
    forward.py    ForwardLink: a follower's stream to the leader (writes, sync, session opens)
"""
