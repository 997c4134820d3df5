"""The peer listener's method numbers: one per kind of exchange, in one table so that no number is
ever given a second meaning (a node of an older build answers an unknown number with an error).

One-way messages and requests share the numbering; which is which is said beside each.
"""
from __future__ import annotations

RAFT = 1                # one-way: a Raft message (consensus/messages.py encoding)
FORWARD = 2             # one-way, follower -> leader: a ForwardFrame
FORWARD_REPLIES = 3     # one-way, leader -> follower: a ForwardReplies

BROKER_FETCH = 10       # request: a follower's FetchRequest -> FetchResponse
BROKER_EPOCH_END = 11   # request: OffsetForLeaderEpochRequest -> OffsetForLeaderEpochResponse
BROKER_ELECT = 12       # request: an ElectLeadersRequest handed to the controller -> ElectLeadersResponse

# the key-value store (listeners/peer_kv.py): requests of kv.proto's messages, every answer a
# KVPeerReply (peer.proto) holding the named response or the error the node raised
KV_PING = 20            # KVPingRequest -> KVPingResponse: heartbeat (failure detection), with the ring epoch
# 21: retired, never to be reused (it pushed and pulled the ring document between nodes; the ring
# lives in the tree's /dcli/kv/ring now, kv/ring_znode.py)
KV_STATUS = 22          # KVStatusRequest -> NodeStats
KV_APPLY = 23           # ReplicaApplyRequest -> ReplicaApplyResponse: a replica (or hinted) write
KV_READ = 24            # ReplicaReadRequest -> ReplicaReadResponse
KV_SCAN = 25            # ScanRequest -> ReplicaScanResponse: the replica's own rows, tombstones too
KV_MERKLE = 26          # SpansRequest -> MerkleTreesResponse: anti-entropy, step 1
KV_HASHES = 27          # SpansRequest -> RangeHashesResponse: anti-entropy, step 2
KV_RANGE_PAGE = 28      # RangePageRequest -> RangePage: one page of a moved range
KV_PULL = 29            # PullRangesRequest -> PullRangesStatus: start or poll a new owner's pull
KV_PUT = 30             # PutRequest -> WriteResponse: a write forwarded to one of the key's replicas
KV_DELETE = 31          # KVDeleteRequest -> WriteResponse: the same for a delete
