"""Who a ZooKeeper connection is: the ids ZooKeeper's `addauth` gives it.

Every connection starts as `ip:<its address>` (ZooKeeper gives each connection its IP id);
`auth digest user:password` adds `digest:user:base64(sha1(user:password))` (and `super:` when
that is the node's --zk-super-digest), `auth ip` the IP id again. Any well-formed digest credential is accepted, as ZooKeeper accepts it: a wrong password
shows later, as NOAUTH where an ACL names the right one. Another scheme is AUTHFAILED, and
ZooKeeper then closes the connection.

    auth = ConnectionAuth("127.0.0.1")
    auth.add("digest", b"alice:secret")     # Err.OK
    auth.who_am_i()                         # whoAmI's reply body
"""
from __future__ import annotations

import base64
import hashlib

from dcli.wire.jute import Writer
from dcli.wire.zk_protocol import KeeperCode as Err

MAX_IDS = 64        # ids one connection may hold: addauth in a loop must not grow without end


def digest_id(credential: bytes) -> str:
    """ZooKeeper's DigestAuthenticationProvider.generateDigest: user:base64(sha1(user:password))."""
    user = credential.split(b":", 1)[0].decode("utf-8", errors="replace")
    return f"{user}:{base64.b64encode(hashlib.sha1(credential).digest()).decode()}"


class ConnectionAuth:
    def __init__(self, host: str, super_digest: str | None = None):
        self.ids: list[tuple[str, str]] = [("ip", host)]
        self._super = super_digest

    def add(self, scheme: str | None, credential: bytes | None) -> int:
        if scheme == "digest" and credential and b":" in credential:
            entries = [("digest", digest_id(credential))]
            if self._super is not None and entries[0][1] == self._super:
                entries.append(("super", ""))     # ZooKeeper's superDigest: every ACL gives way
        elif scheme == "ip":
            entries = [self.ids[0]]
        else:
            return Err.AUTH_FAILED
        for entry in entries:
            if entry not in self.ids:
                if len(self.ids) >= MAX_IDS:
                    return Err.AUTH_FAILED
                self.ids.append(entry)
        return Err.OK

    def who_am_i(self) -> bytes:
        """WhoAmIResponse: one ClientInfo (scheme, user) per id; a digest id shows its user."""
        w = Writer()
        w.int(len(self.ids))
        for scheme, ident in self.ids:
            w.ustring(scheme)
            w.ustring(ident.split(":", 1)[0] if scheme == "digest" else ident)
        return w.getvalue()
