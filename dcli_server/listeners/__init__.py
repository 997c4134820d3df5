"""Everything that faces the network. So far: the peer transport, not yet wired into the server.

    peer_frames.py      the wire format: the frame header, FrameDecoder (checks before it allocates)
    peer_stream.py      FrameStream: frames over one TCP connection (an asyncio BufferedProtocol)
    peer_handshake.py   Handshake: who is on the other end (node id, cluster id, cluster secret)
    peer_connection.py  PeerConnection: one peer's frame stream, one-way and request/response
    peer_transport.py   PeerTransport: the peer listener, a PeerLink (dial, redial) per peer
"""
