"""AuthStore: users, their credentials and roles, the auth switch and the token signing key, all
kept in the replicated tree so that every node sees the same ones and they survive restarts.

    /dcli/auth/users/NAME     {"credential": {salt, iterations, stored_key, server_key}, "roles": [...]}
    /dcli/auth/enabled        b"true" or b"false" (absent: off, the default)
    /dcli/auth/key            32 random bytes: the HMAC key of tokens, replaced on every enable

Reads are synchronous, from this node's replica of the tree (every call on the client port asks
whether auth is on; no round trip for that). Writes go through the node's in-process session
(LocalSession), so they are proposed to the leader and replicated like any client's. Only a
salted SCRAM credential is stored, never a password. Client sessions cannot touch these znodes
while auth is on, unless they are administrators (`refuse_reserved`): the store is changed
through the Auth service.

    store = AuthStore(node, LocalSession(node))
    await store.add_user("root", Credential.from_password("secret"), roles=())
    store.enabled(), store.user("root")
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from dcli.v1 import coord_pb2 as pb
from dcli.wire.errors import (AuthStateError, BadArgumentsError, DcliError, NoAuthError, NodeExistsError, NoNodeError,
                              UserExistsError, UserNotFoundError, from_proto)
from dcli.wire.scram import Credential

ROOT = "/dcli/auth"
USERS = f"{ROOT}/users"
ENABLED = f"{ROOT}/enabled"
KEY = f"{ROOT}/key"
ROOT_USER = "root"
ADMIN = "admin"
ROLES = (ADMIN,)
KEY_BYTES = 32
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
TIMEOUT_S = 10.0


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or name in (".", ".."):
        raise BadArgumentsError("", f"invalid user name {name[:80]!r}: 1-64 of [A-Za-z0-9._-]")
    return name


def reserved(path: str) -> bool:
    """A path of the identity store, which client sessions may not read or change."""
    return path == ROOT or path.startswith(ROOT + "/")


def _paths(request: pb.Request):
    op = request.WhichOneof("op")
    if op == "multi":
        for inner in request.multi.ops:
            yield from _paths(inner)
    elif op is not None:
        body = getattr(request, op)
        yield getattr(body, "path", "") or getattr(body, "prefix", "")


def refuse_reserved(requests, caller) -> NoAuthError | None:
    """ZooKeeper's NoAuth for a request of a client session on the identity store, while auth is
    on (`caller` set) and the caller is not an administrator."""
    if caller is None or caller.admin:
        return None
    for request in requests:
        for path in _paths(request):
            if reserved(path):
                return NoAuthError(path)
    return None


@dataclass(frozen=True)
class UserRecord:
    name: str
    credential: Credential
    roles: tuple[str, ...]
    generation: int         # the record's mzxid: changes with every password change

    @property
    def admin(self) -> bool:
        return self.name == ROOT_USER or ADMIN in self.roles


def _encode(credential: Credential, roles) -> bytes:
    return json.dumps({"credential": credential.to_json(), "roles": sorted(set(roles))},
                      sort_keys=True).encode()


class AuthStore:
    def __init__(self, node, tree):
        """`node`: the CoordNode whose replica is read; `tree`: a LocalSession on it, for writes."""
        self._node = node
        self._tree = tree

    # -- reads: this node's replica -----------------------------------------------------------

    def _get(self, path: str):
        return self._node.coordinator.tree.get(path)

    def enabled(self) -> bool:
        znode = self._get(ENABLED)
        return znode is not None and znode.data == b"true"

    def key(self) -> bytes | None:
        znode = self._get(KEY)
        return znode.data if znode is not None and znode.data and len(znode.data) == KEY_BYTES else None

    def user(self, name: str) -> UserRecord | None:
        if not NAME.fullmatch(name):
            return None
        znode = self._get(f"{USERS}/{name}")
        if znode is None or not znode.data:
            return None
        try:
            doc = json.loads(znode.data)
            return UserRecord(name, Credential.from_json(doc["credential"]),
                              tuple(r for r in doc.get("roles", ()) if r in ROLES), znode.mzxid)
        except (ValueError, KeyError, TypeError, DcliError):
            return None         # not ours: treated as no such user

    def users(self) -> list[UserRecord]:
        tree = self._node.coordinator.tree
        if USERS not in tree:
            return []
        return [u for u in (self.user(n) for n in tree.children(USERS)) if u is not None]

    def revision(self) -> int:
        """Moves with every change to users, the key or the switch (etcd's auth revision)."""
        found = [self._get(p) for p in (USERS, ENABLED, KEY)]
        marks = [max(z.mzxid, z.pzxid) for z in found if z is not None]
        return max(marks + [u.generation for u in self.users()], default=0)

    # -- writes: proposed through the node's own session ----------------------------------------

    async def _ok(self, request: pb.Request) -> pb.Response:
        response = await self._tree.call(request, TIMEOUT_S)
        if response.HasField("error"):
            raise from_proto(response.error)
        return response

    async def _put(self, path: str, data: bytes) -> None:
        """Set `path`, creating it (and its parents) when absent."""
        try:
            await self._ok(pb.Request(set_data=pb.SetDataRequest(path=path, data=data, version=-1)))
        except NoNodeError:
            await self._tree.create(path, data, parents=True, timeout=TIMEOUT_S)

    async def add_user(self, name: str, credential: Credential, roles=()) -> None:
        check_name(name)
        credential.check()
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise BadArgumentsError("", f"unknown role {sorted(unknown)[0]!r}: the roles are {', '.join(ROLES)}")
        try:
            await self._tree.create(f"{USERS}/{name}", _encode(credential, roles), parents=True, timeout=TIMEOUT_S)
        except NodeExistsError:
            raise UserExistsError("", f"user name already exists: {name}") from None

    async def change_password(self, name: str, credential: Credential) -> None:
        credential.check()
        record = self.user(check_name(name))
        if record is None:
            raise UserNotFoundError("", f"user name not found: {name}")
        try:
            await self._ok(pb.Request(set_data=pb.SetDataRequest(
                path=f"{USERS}/{name}", data=_encode(credential, record.roles), version=-1)))
        except NoNodeError:
            raise UserNotFoundError("", f"user name not found: {name}") from None

    async def delete_user(self, name: str) -> None:
        check_name(name)
        if name == ROOT_USER and self.enabled():
            raise AuthStateError("", "cannot delete root while authentication is enabled")
        try:
            await self._ok(pb.Request(delete=pb.DeleteRequest(path=f"{USERS}/{name}", version=-1)))
        except NoNodeError:
            raise UserNotFoundError("", f"user name not found: {name}") from None

    async def enable(self) -> None:
        """etcd's rule: refused until a root user exists. A fresh signing key each time, so no
        token (nor a key read while auth was off) outlives a disable and enable."""
        if self.user(ROOT_USER) is None:
            raise AuthStateError("", "root user does not exist: add it first (dcli user add root)")
        await self._put(KEY, secrets.token_bytes(KEY_BYTES))
        await self._put(ENABLED, b"true")

    async def disable(self) -> None:
        if self._get(ENABLED) is not None:
            await self._put(ENABLED, b"false")

    async def close(self) -> None:
        await self._tree.close()
