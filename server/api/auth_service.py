"""The Auth service: logging in (SCRAM), users, and the auth switch, over the Authenticator.

Who may call what is the client listener's interceptor's business (server/listeners/auth.py):
Authenticate and AuthStatus are open, the rest need an administrator while auth is on, except
UserChangePassword, which a user may call for their own name (checked here, where the name is).
"""
from __future__ import annotations

import grpc

from dcli.v1 import auth_pb2 as apb
from dcli.v1 import auth_pb2_grpc as apb_grpc
from dcli.wire.errors import BadArgumentsError, PermissionDeniedError
from dcli.wire.scram import Credential
from dcli_server.api.coord_service import client_host
from dcli_server.api.errors import guarded
from dcli_server.auth import Authenticator
from dcli_server.auth.tokens import caller


def _credential(msg: apb.ScramCredential) -> Credential:
    return Credential(msg.salt, msg.iterations, msg.stored_key, msg.server_key).check()


class AuthService(apb_grpc.AuthServicer):
    def __init__(self, auth: Authenticator):
        self._auth = auth
        self._store = auth.store

    def _status(self) -> apb.AuthStatusResponse:
        return apb.AuthStatusResponse(enabled=self._store.enabled(), revision=self._store.revision())

    @guarded
    async def Authenticate(self, request: apb.AuthenticateRequest, context) -> apb.AuthenticateResponse:
        if not self._auth.enabled:
            return apb.AuthenticateResponse()       # no token needed (etcd's "auth not enabled")
        host = client_host(context.peer() or "")
        step = request.WhichOneof("step")
        if step == "client_first":
            exchange_id, server_first = self._auth.begin(request.client_first, host)
            return apb.AuthenticateResponse(exchange_id=exchange_id, server_first=server_first)
        if step == "client_final":
            server_final, token = self._auth.finish(request.exchange_id, request.client_final, host)
            return apb.AuthenticateResponse(server_final=server_final, token=token, ttl_s=self._auth.token_ttl_s)
        raise BadArgumentsError("", "Authenticate needs client_first or client_final")

    @guarded
    async def UserAdd(self, request: apb.UserAddRequest, context) -> apb.UserResponse:
        await self._store.add_user(request.name, _credential(request.credential), tuple(request.roles))
        return apb.UserResponse(name=request.name)

    @guarded
    async def UserDelete(self, request: apb.UserDeleteRequest, context) -> apb.UserResponse:
        await self._store.delete_user(request.name)
        return apb.UserResponse(name=request.name)

    @guarded
    async def UserChangePassword(self, request: apb.UserChangePasswordRequest, context) -> apb.UserResponse:
        who = caller.get()
        if who is not None and not who.admin and who.name != request.name:
            raise PermissionDeniedError("", f"permission denied: {who.name} may change only its own password")
        await self._store.change_password(request.name, _credential(request.credential))
        return apb.UserResponse(name=request.name)

    @guarded
    async def UserList(self, request: apb.UserListRequest, context) -> apb.UserListResponse:
        return apb.UserListResponse(users=[apb.User(name=u.name, roles=list(u.roles))
                                           for u in sorted(self._store.users(), key=lambda u: u.name)])

    @guarded
    async def AuthEnable(self, request: apb.AuthEnableRequest, context) -> apb.AuthStatusResponse:
        await self._store.enable()
        return self._status()

    @guarded
    async def AuthDisable(self, request: apb.AuthDisableRequest, context) -> apb.AuthStatusResponse:
        await self._store.disable()
        return self._status()

    async def AuthStatus(self, request: apb.AuthStatusRequest, context: grpc.aio.ServicerContext):
        return self._status()
