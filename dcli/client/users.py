"""AuthClient: users and the auth switch (the calls `dcli user` and `dcli auth` make).

    from dcli.client.users import AuthClient

    with AuthClient("127.0.0.1:7181") as auth:
        auth.user_add("root", "secret")
        auth.enable()                       # refused until root exists
        auth.user_add("alice", "pw", roles=["admin"])
        auth.users()                        # [("alice", ["admin"]), ("root", [])]

Passwords are turned into SCRAM credentials (salt, iterations, StoredKey, ServerKey) here, so a
password is never sent, not even to add a user. The calls carry the process's token like every
other client's (dcli.client.auth); each goes to the first server that answers.
"""
from __future__ import annotations

import grpc

from dcli.client.rpc import error_from_rpc
from dcli.client.tls import open_channel
from dcli.v1 import auth_pb2 as apb
from dcli.v1 import auth_pb2_grpc as apb_grpc
from dcli.wire import errors
from dcli.wire.scram import DEFAULT_ITERATIONS, Credential

CHANNEL_OPTIONS = [("grpc.enable_retries", 0)]


def _credential(password: str, iterations: int) -> apb.ScramCredential:
    if not password:
        raise errors.UsageError("a password must not be empty")
    c = Credential.from_password(password, iterations=iterations)
    return apb.ScramCredential(salt=c.salt, iterations=c.iterations, stored_key=c.stored_key, server_key=c.server_key)


class AuthClient:
    def __init__(self, servers: str = "127.0.0.1:7181", timeout: float = 10.0):
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.timeout = timeout
        self._channels: dict[str, grpc.Channel] = {}

    def __enter__(self) -> AuthClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def _call(self, method: str, request):
        """`method` on the first server that answers; a refusal is raised as the server's error."""
        last: errors.DcliError | None = None
        for server in self.servers:
            channel = self._channels.get(server)
            if channel is None:
                channel = self._channels[server] = open_channel(server, CHANNEL_OPTIONS)
            try:
                return getattr(apb_grpc.AuthStub(channel), method)(request, timeout=self.timeout)
            except grpc.RpcError as e:
                last = error_from_rpc(e, server)
                if not isinstance(last, errors.UnavailableError):
                    raise last from None
        raise last or errors.UnavailableError(",".join(self.servers))

    def user_add(self, name: str, password: str, roles=(), iterations: int = DEFAULT_ITERATIONS) -> None:
        self._call("UserAdd", apb.UserAddRequest(name=name, credential=_credential(password, iterations),
                                                 roles=list(roles)))

    def user_delete(self, name: str) -> None:
        self._call("UserDelete", apb.UserDeleteRequest(name=name))

    def change_password(self, name: str, password: str, iterations: int = DEFAULT_ITERATIONS) -> None:
        self._call("UserChangePassword", apb.UserChangePasswordRequest(
            name=name, credential=_credential(password, iterations)))

    def users(self) -> list[tuple[str, list[str]]]:
        return [(u.name, list(u.roles)) for u in self._call("UserList", apb.UserListRequest()).users]

    def enable(self) -> bool:
        return self._call("AuthEnable", apb.AuthEnableRequest()).enabled

    def disable(self) -> bool:
        return self._call("AuthDisable", apb.AuthDisableRequest()).enabled

    def status(self) -> tuple[bool, int]:
        """(enabled, revision)."""
        reply = self._call("AuthStatus", apb.AuthStatusRequest())
        return reply.enabled, reply.revision
