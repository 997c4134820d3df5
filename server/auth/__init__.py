"""Users, credentials, tokens and who may do what: the identity store every listener of a node
authenticates against. Domain code: no grpc here (server/api/auth_service.py and
server/listeners/auth.py face the network).

    store = AuthStore(node, LocalSession(node))     # users and the switch, in the replicated tree
    auth = Authenticator(store, token_ttl_s=300)    # SCRAM exchanges, tokens, the guessing limit
"""
from dcli_server.auth.authenticator import Authenticator
from dcli_server.auth.store import AuthStore, UserRecord
from dcli_server.auth.tokens import Principal

__all__ = ["AuthStore", "Authenticator", "Principal", "UserRecord"]
