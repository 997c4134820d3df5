"""Group membership (kazoo's Party): each member is an ephemeral sequential znode under the
party's path holding the member's identifier; the members are whoever's sessions are alive.

    party = Party(client, "/parties/workers", "worker-1")
    party.join()
    print(party.members())     # ['worker-1', 'worker-2']
"""
from __future__ import annotations

from dcli.client import CoordClient
from dcli.recipes._sequential import create_own, delete_quietly, ordered
from dcli.wire import errors

PREFIX = "member-"


class Party:
    def __init__(self, client: CoordClient, path: str, identifier: str = ""):
        self.client = client
        self.path = path.rstrip("/") or "/"
        self.identifier = identifier
        self.znode: str | None = None

    def join(self) -> None:
        if self.znode is None:
            self.znode = create_own(self.client, self.path, PREFIX, self.identifier.encode())

    def leave(self) -> None:
        znode, self.znode = self.znode, None
        if znode:
            delete_quietly(self.client, znode)

    @property
    def participating(self) -> bool:
        """Whether this member's znode still exists (it goes with the session)."""
        return self.znode is not None and self.client.exists(self.znode) is not None

    def members(self, watch=None) -> list[str]:
        """The members' identifiers, in the order they joined (`watch`: a children watch)."""
        try:
            names = ordered(self.client.get_children(self.path, watch=watch), (PREFIX,))
        except errors.NoNodeError:
            return []
        futures = [self.client.get_async(f"{self.path}/{n}") for n in names]
        out = []
        for fut in futures:
            try:
                data, _ = fut.result()
            except errors.NoNodeError:
                continue
            out.append((data or b"").decode(errors="replace"))
        return out

    def __len__(self) -> int:
        return len(self.members())

    def __iter__(self):
        return iter(self.members())
