"""The client gRPC listener: dcli's own API (coordination, broker, cluster, key-value, auth) on one
port, behind the authentication interceptor (listeners/auth.py).

    listener = ClientListener(services, "127.0.0.1:0")
    host, port = listener.bind()        # OSError when the address is taken
    await listener.start()
    ...
    await listener.stop()
"""
from __future__ import annotations

import grpc

from dcli.v1 import auth_pb2_grpc, broker_pb2_grpc, cluster_pb2_grpc, coord_pb2_grpc, kv_pb2_grpc
from dcli.wire.addresses import split_host_port
from dcli_server.api.auth_service import AuthService
from dcli_server.api.broker_service import BrokerService
from dcli_server.api.cluster_service import ClusterService
from dcli_server.api.coord_service import CoordinationService
from dcli_server.api.kv_service import KVService
from dcli_server.listeners.auth import AuthInterceptor
from dcli_server.listeners.guard import GuardedRegistry

MAX_REQUEST_BYTES = 8 * 1024 * 1024     # one client frame; a znode's data is capped lower (Limits)
# one gRPC message of any kind: a snapshot on its way to a lagging follower, a Produce request
# of many batches (Kafka's socket.request.max.bytes is 100 MiB); each service caps its own below
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# HTTP/2 on the client port: streams per connection, and keepalive both ways. A client may ping
# every 5 s (dcli's own clients ping every 10 s while a stream is open), not more often, and
# only while it has a call; the server pings an idle connection every minute and drops one
# that does not answer in 20 s.
GRPC_OPTIONS = [
    ("grpc.max_concurrent_streams", 1000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
]


class ClientListener:
    def __init__(self, services, listen: str, *, max_request_bytes: int = MAX_REQUEST_BYTES):
        self.listen = listen
        self._credentials = services.settings.client_tls()      # None: plaintext
        self._server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", max(MAX_MESSAGE_BYTES, max_request_bytes)),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            *GRPC_OPTIONS,
        ], interceptors=[AuthInterceptor(services.auth)])      # tokens and admin rights, when auth is on
        s = GuardedRegistry(self._server)       # a request that does not decode: INVALID_ARGUMENT
        coord_pb2_grpc.add_CoordinationServicer_to_server(
            CoordinationService(services.node, max_frame_bytes=max_request_bytes,
                                max_client_cnxns=services.settings.max_client_cnxns), s)
        broker_pb2_grpc.add_BrokerServicer_to_server(BrokerService(services.broker, services.groups), s)
        cluster_pb2_grpc.add_ClusterServicer_to_server(ClusterService(services.node), s)
        kv_pb2_grpc.add_KVServicer_to_server(KVService(services.kv), s)
        auth_pb2_grpc.add_AuthServicer_to_server(AuthService(services.auth), s)

    def bind(self) -> tuple[str, int]:
        """(host, port) bound; OSError if the address is taken or not this machine's."""
        host, _ = split_host_port(self.listen, "--listen", allow_zero=True)
        try:
            if self._credentials is None:
                bound = self._server.add_insecure_port(self.listen)
            else:
                bound = self._server.add_secure_port(self.listen, self._credentials)
        except RuntimeError:        # grpc's way of saying the port is taken or the host is wrong
            bound = 0
        if bound == 0:
            raise OSError(f"address {self.listen} is in use or not available")
        return host, bound

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float = 1.0) -> None:
        await self._server.stop(grace=grace)
