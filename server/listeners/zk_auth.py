"""Who a ZooKeeper connection is: the ids ZooKeeper's `addauth` gives it.

Every connection starts as `ip:<its address>` (ZooKeeper gives each connection its IP id);
`auth digest user:password` adds `digest:user:base64(sha1(user:password))` (and `super:` when
that is the node's --zk-super-digest), `auth ip` the IP id again (server/coord/acl.py). Any
well-formed digest credential is accepted, as ZooKeeper accepts it: a wrong password shows
later, as NOAUTH where an ACL names the right one. Another scheme is AUTHFAILED, and ZooKeeper
then closes the connection.

    auth = ConnectionAuth("127.0.0.1")
    auth.add("digest", b"alice:secret")     # Err.OK
    auth.who_am_i()                         # whoAmI's reply body
"""
from __future__ import annotations

from dcli.wire.jute import Writer
from dcli.wire.zk_protocol import KeeperCode as Err
from dcli_server.coord.acl import add_auth, client_info


class ConnectionAuth:
    def __init__(self, host: str, super_digest: str | None = None):
        self.ids: list[tuple[str, str]] = [("ip", host)]
        self._super = super_digest

    def add(self, scheme: str | None, credential: bytes | None) -> int:
        return Err.OK if add_auth(self.ids, scheme, credential, self._super) else Err.AUTH_FAILED

    def who_am_i(self) -> bytes:
        """WhoAmIResponse: one ClientInfo (scheme, user) per id; a digest id shows its user."""
        w = Writer()
        info = client_info(self.ids)
        w.int(len(info))
        for scheme, user in info:
            w.ustring(scheme)
            w.ustring(user)
        return w.getvalue()
