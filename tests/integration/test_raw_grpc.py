"""Bad input from a raw gRPC client (not our library): clear errors, and the server keeps serving."""
from __future__ import annotations

import grpc
import pytest

from dcli.client import CoordClient
from dcli.v1 import coord_pb2 as pb
from dcli.v1 import coord_pb2_grpc as pb_grpc

WAIT_S = 30


def exchange(server, frames):
    with grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        return list(pb_grpc.CoordinationStub(ch).Session(iter(frames), timeout=WAIT_S))


def session_frames(*requests):
    return [pb.ClientFrame(connect=pb.Connect(timeout_ms=10000)),
            pb.ClientFrame(requests=list(requests)),
            pb.ClientFrame(requests=[pb.Request(xid=99, close_session=pb.CloseSessionRequest())])]


def responses(frames):
    return {i.response.xid: i.response for f in frames for i in f.items if i.WhichOneof("kind") == "response"}


def assert_still_serving(server):
    with CoordClient(server.address) as zk:
        assert zk.exists("/") is not None


def test_first_frame_without_connect_is_refused(server):
    out = exchange(server, [pb.ClientFrame(requests=[pb.Request(xid=1, ping=pb.PingRequest())])])
    assert out[-1].error.code == pb.BAD_ARGUMENTS
    assert_still_serving(server)


def test_bad_requests_get_errors_in_zookeepers_words(server):
    out = responses(exchange(server, session_frames(
        pb.Request(xid=1),                                                    # no operation
        pb.Request(xid=2, get_data=pb.GetDataRequest(path="no-slash")),
        pb.Request(xid=3, create=pb.CreateRequest(path="/a//b", data=b"")),
        pb.Request(xid=4, create=pb.CreateRequest(path="/big", data=b"x" * (1024 * 1024 + 1))),
        pb.Request(xid=5, delete=pb.DeleteRequest(path="/", version=-1)),
        pb.Request(xid=6, check=pb.CheckVersionRequest(path="/", version=0)),
        pb.Request(xid=7, create=pb.CreateRequest(path="/t", ttl_ms=1, ephemeral=True)),
        pb.Request(xid=8, create=pb.CreateRequest(path="/zookeeper/x")),
    )))
    assert out[1].error.code == pb.MARSHALLING_ERROR
    assert (out[2].error.code, out[2].error.message) == (pb.INVALID_PATH, "Path must start with / character")
    assert out[3].error.message == 'Invalid path string "/a//b" caused by empty node name specified @3'
    assert out[4].error.code == pb.DATA_TOO_LARGE
    assert (out[5].error.code, out[5].error.message) == (pb.BAD_ARGUMENTS, "Arguments are not valid : /")
    assert out[6].error.code == pb.BAD_ARGUMENTS
    assert out[7].error.message == "TTLs cannot be used with Ephemeral znodes"
    assert out[8].error.code != pb.OK
    assert out[99].HasField("empty")
    assert_still_serving(server)


def test_oversized_frame_is_refused_and_the_server_keeps_serving(server):
    big = [pb.Request(xid=i, create=pb.CreateRequest(path=f"/huge{i}", data=b"x" * (1 << 20))) for i in range(10)]
    with pytest.raises(grpc.RpcError) as e:
        exchange(server, [pb.ClientFrame(connect=pb.Connect(timeout_ms=10000)), pb.ClientFrame(requests=big)])
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server)
    with CoordClient(server.address) as zk:
        assert zk.exists("/huge0") is None


def test_garbage_bytes_are_refused_and_the_server_keeps_serving(server):
    with grpc.insecure_channel(server.address) as ch:
        call = ch.stream_stream("/dcli.v1.Coordination/Session", request_serializer=None,
                                response_deserializer=None)
        with pytest.raises(grpc.RpcError):
            list(call(iter([b"\xff\xfe\xfd garbage"]), timeout=WAIT_S))
    assert_still_serving(server)


def test_resume_with_a_newer_zxid_than_the_server_is_refused(server):
    out = exchange(server, [pb.ClientFrame(connect=pb.Connect(timeout_ms=10000, last_zxid_seen=1 << 60))])
    assert out[-1].error.code == pb.TOO_FAR_BEHIND
    assert_still_serving(server)


def _client_methods():
    from dcli.v1 import broker_pb2, cluster_pb2, coord_pb2, kv_pb2

    for module in (broker_pb2, cluster_pb2, coord_pb2, kv_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield f"/{service.full_name}/{method.name}", method.client_streaming, method.server_streaming


def test_every_method_answers_bytes_that_do_not_decode_with_invalid_argument(fresh_server):
    """Garbage to every method of the client port (a bounded fuzz: 3 payloads each): a clear
    INVALID_ARGUMENT naming the message it expected, one log line each, never a traceback."""
    import random

    rng = random.Random(20261207)
    payloads = [b"\xff\xff\xff\x07garbage", bytes([0x0a, 0x7f]) + b"short", rng.randbytes(64)]
    methods = list(_client_methods())
    assert len(methods) > 20
    with grpc.insecure_channel(fresh_server.address) as ch:
        for name, client_streaming, server_streaming in methods:
            for payload in payloads:
                if client_streaming:
                    call = ch.stream_stream(name)(iter([payload]), timeout=WAIT_S)
                elif server_streaming:
                    call = ch.unary_stream(name)(payload, timeout=WAIT_S)
                else:
                    call = None
                try:
                    if call is None:
                        ch.unary_unary(name)(payload, timeout=WAIT_S)
                    else:
                        list(call)
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                        assert "malformed" in (e.details() or "").lower(), (name, e.details())
                    else:   # bytes that happen to decode: an answer in the method's own terms
                        assert e.code() != grpc.StatusCode.UNKNOWN, (name, e.details())
    log = fresh_server.log()
    assert "Traceback" not in log
    assert "malformed request: not a dcli.v1." in log
    assert_still_serving(fresh_server)
