"""Everything that faces the network: listeners that attach the node's services to a port.

The composition root (dcli_server.main) builds the domain services once (`Services`) and hands
them to each listener; a listener owns its socket, its framing and its error mapping, and calls
the same services as every other listener. Today: the client gRPC listener (client.py).
"""
