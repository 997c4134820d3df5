"""Everything that faces the network: listeners that attach the node's services to a port.

The composition root (dcli_server.main) builds the domain services once (`Services`) and hands
them to each listener; a listener owns its socket, its framing and its error mapping, and calls
the same services as every other listener.

    client.py           the client gRPC listener (dcli's own API)
    peer.py             the peer listener: Raft, forwarding and the brokers' replication on frames
    peer_methods.py     the peer listener's method numbers, one table
    peer_kv.py          the key-value store's calls between nodes on frames (both ends)
    peer_frames.py      the peer wire format: the frame header, FrameDecoder (checks before it allocates)
    peer_stream.py      FrameStream: frames over one TCP connection (an asyncio BufferedProtocol)
    peer_handshake.py   Handshake: who is on the other end (node id, cluster id, cluster secret)
    peer_tls.py         PeerTLS: mutual TLS on the peer port (etcd's --peer-* files)
    peer_identity.py    the cluster id: given once, remembered by the data dir, carried in the handshake
    peer_connection.py  PeerConnection: one peer's frame stream, one-way and request/response
    peer_transport.py   PeerTransport: the peer listener, a PeerLink (dial, redial) per peer
    zk.py               the ZooKeeper protocol listener: jute over TCP, the node's sessions and watches
    zk_ops.py           ZooKeeper's requests as the node's own, and its answers back as ZooKeeper's
    zk_auth.py          a ZooKeeper connection's ids (ip, digest) and whoAmI
    zk_words.py         the four-letter words (ruok, srvr, stat, envi, isro)
    ratelimit.py        RateLimitedLog: one log line per kind of bad or failed traffic
"""
