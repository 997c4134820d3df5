"""ZooKeeper's jute codec: the generated records round-trip, agree byte for byte with kazoo's
own serialisation (requests kazoo sends, replies it reads), and every decoder is bounded:
random or mutated bytes either decode within the input or raise JuteError, nothing else."""
from __future__ import annotations

import dataclasses
import doctest
import importlib.util
import random
import subprocess
import sys
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcli.wire import jute, zk_protocol
from dcli.wire import zk_records as zr
from dcli.wire.jute import JuteError, Reader, Writer, decode, encode
from dcli.wire.zk_protocol import (MAX_PACKET, MULTI_REQUESTS, KeeperCode, OpCode, Perms,
                                   failed_multi_results, frame, frame_length,
                                   read_connect_request, read_multi, write_connect_response,
                                   write_multi_response)
from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("gen_jute", ROOT / "scripts" / "gen_jute.py")
gen_jute = importlib.util.module_from_spec(_spec)
sys.modules["gen_jute"] = gen_jute
_spec.loader.exec_module(gen_jute)
SPEC_TEXT = (ROOT / "proto" / "zookeeper.jute").read_text(encoding="utf-8")
CLASSES = gen_jute.resolve(gen_jute.Parser(SPEC_TEXT).spec())     # name -> fields with jute types
RECORDS = {cls.__name__: cls for cls in zr.RECORDS}
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT_MIN, INT_MAX, LONG_MIN, LONG_MAX = -2**31, 2**31 - 1, -2**63, 2**63 - 1
SEEDS = st.integers(0, 2**32)


# ---- the generated file ----------------------------------------------------------------------

def test_generated_records_are_fresh():
    assert gen_jute.generate(SPEC_TEXT) == (ROOT / "dcli/wire/zk_records.py").read_text("utf-8")
    check = subprocess.run([sys.executable, str(ROOT / "scripts/gen_jute.py"), "--check"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_docstring_examples():
    for module in (jute, zk_protocol, zr):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_one_class_per_jute_class():
    assert list(RECORDS) == list(CLASSES)
    for name, jc in CLASSES.items():
        assert [f.name for f in dataclasses.fields(RECORDS[name])] == [f.name for f in jc.fields]
    assert zr.Stat.MIN_SIZE == 68 and zr.ConnectRequest.MIN_SIZE == 28


# ---- values of each jute type ----------------------------------------------------------------

def strategy(t) -> st.SearchStrategy:
    if t.kind == "int":
        return st.integers(INT_MIN, INT_MAX) | st.sampled_from([-1, 0, INT_MAX, INT_MIN])
    if t.kind == "long":
        return st.integers(LONG_MIN, LONG_MAX) | st.sampled_from([-1, 0, LONG_MAX, LONG_MIN])
    if t.kind == "boolean":
        return st.booleans()
    if t.kind == "buffer":
        return st.none() | st.binary(max_size=24)
    if t.kind == "ustring":
        return st.none() | st.text(max_size=12)
    if t.kind == "vector":
        return st.none() | st.lists(strategy(t.item), max_size=3)
    return record_strategy(t.ref)


def record_strategy(name: str) -> st.SearchStrategy:
    return st.builds(RECORDS[name], *(strategy(f.type) for f in CLASSES[name].fields))


EDGES = {  # per variant: null, empty, extreme values
    "int": (-1, 0, INT_MAX), "long": (-1, LONG_MIN, LONG_MAX), "boolean": (False, False, True),
    "buffer": (None, b"", b"\x00\xff"), "ustring": (None, "", "/\u00e9\u221a\U0001f600"),
}
VARIANTS = ("null", "empty", "extreme")


def edge(t, variant: str):
    """One value of jute type `t`: null vs empty buffers, strings and vectors, -1 and max."""
    if t.kind == "record":
        return RECORDS[t.ref](*(edge(f.type, variant) for f in CLASSES[t.ref].fields))
    if t.kind == "vector":
        return {"null": None, "empty": []}.get(variant, [edge(t.item, variant)])
    return EDGES[t.kind][VARIANTS.index(variant)]


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("variant", VARIANTS)
def test_edge_values_round_trip(name, variant):
    rec = edge(gen_jute.JType("record", ref=name), variant)
    data = encode(rec)
    back = decode(RECORDS[name], data)
    assert back == rec and encode(back) == data


@pytest.mark.parametrize("name", list(CLASSES))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_random_values_round_trip(name, data):
    rec = data.draw(record_strategy(name))
    assert decode(RECORDS[name], encode(rec)) == rec


def test_null_and_empty_stay_apart():
    null, empty = zr.GetDataResponse(None, edge_stat()), zr.GetDataResponse(b"", edge_stat())
    assert encode(null)[:4] == b"\xff\xff\xff\xff" and encode(empty)[:4] == bytes(4)
    assert decode(zr.GetDataResponse, encode(null)) == null
    assert encode(zr.SyncRequest(None)) == b"\xff\xff\xff\xff"
    assert encode(zr.SyncRequest("")) == b"\x00\x00\x00\x00"
    assert decode(zr.GetChildrenResponse, b"\xff\xff\xff\xff").children is None
    assert decode(zr.GetChildrenResponse, b"\x00\x00\x00\x00").children == []


def edge_stat() -> zr.Stat:
    return zr.Stat(1, 2, 3, 4, -1, -1, 0, LONG_MAX, 0, 0, LONG_MIN)


def test_reader_takes_any_bytes_like():
    rec = zr.GetDataResponse(b"\x00data", edge_stat())
    data = encode(zr.SyncResponse("/\u00e9")) + encode(rec)
    for view in (data, bytearray(data), memoryview(data)):
        r = Reader(view)
        assert zr.SyncResponse.read(r).path == "/\u00e9"
        assert zr.GetDataResponse.read(r) == rec and r.done()
    r = Reader(data, offset=len(data) - 4)
    assert r.remaining() == 4 and r.int() == LONG_MIN & 0xFFFFFFFF


def test_booleans_read_like_zookeeper():
    # DataInput.readBoolean: any nonzero byte is true; we always write 0 or 1
    assert decode(zr.GetDataRequest, b"\x00\x00\x00\x01/\x02").watch is True
    assert decode(zr.GetDataRequest, b"\x00\x00\x00\x01/\x00").watch is False
    assert encode(zr.GetDataRequest("/", 7)) == b"\x00\x00\x00\x01/\x01"


def test_strings_are_utf8_and_java_surrogates_join():
    assert decode(zr.SyncRequest, b"\x00\x00\x00\x02\xc3\xa9").path == "\u00e9"
    # Java's jute writer sends U+1F600 as two 3-byte surrogates (CESU-8), not 4-byte UTF-8
    assert decode(zr.SyncRequest, b"\x00\x00\x00\x06\xed\xa0\xbd\xed\xb8\x80").path == "\U0001f600"
    assert encode(zr.SyncRequest("\U0001f600")) == b"\x00\x00\x00\x04\xf0\x9f\x98\x80"
    for bad in (b"\xff", b"\xc3", b"\xed\xa0\xbd"):       # not UTF-8; a lone surrogate
        with pytest.raises(JuteError, match="not UTF-8"):
            decode(zr.SyncRequest, len(bad).to_bytes(4, "big") + bad)


# ---- bounds ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CLASSES))
def test_hostile_lengths_fail_at_once(name):
    cls = RECORDS[name]
    tracemalloc.start()
    try:
        for prefix in (b"\x7f\xff\xff\xff", b"\xff\xff\xff\xfe", b"\x80\x00\x00\x00"):
            with pytest.raises(JuteError):
                decode(cls, prefix * 5 + b"\x00")       # 21 bytes claiming up to 2 GiB
        with pytest.raises(JuteError):
            decode(cls, encode(edge(gen_jute.JType("record", ref=name), "extreme"))[:-1])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_lengths_checked_against_what_is_left():
    with pytest.raises(JuteError, match="buffer length 5 at offset 0 exceeds"):
        Reader(b"\x00\x00\x00\x05abcd").buffer()
    assert Reader(b"\x00\x00\x00\x04abcd").buffer() == b"abcd"
    with pytest.raises(JuteError, match="negative string length -2"):
        Reader(b"\xff\xff\xff\xfe").ustring()
    # a vector of ints: 2 fit in 8 bytes, 3 do not
    assert Reader(b"\x00\x00\x00\x02" + bytes(8)).vector(Reader.int, 4) == [0, 0]
    with pytest.raises(JuteError, match="vector length 3"):
        Reader(b"\x00\x00\x00\x03" + bytes(11)).vector(Reader.int, 4)
    with pytest.raises(JuteError, match="negative vector length"):
        Reader(b"\xff\xff\xff\x00").vector(Reader.int, 4)
    with pytest.raises(JuteError, match="needs 8 bytes, 3 left"):
        Reader(b"abc").long()
    with pytest.raises(JuteError, match="1 unread bytes"):
        decode(zr.SyncRequest, b"\xff\xff\xff\xff\x00")
    with pytest.raises(JuteError, match="SyncRequest: packet ends inside an int"):
        decode(zr.SyncRequest, b"\x00")
    with pytest.raises(JuteError, match="cannot encode"):
        encode(zr.DeleteRequest("/a", 2**31))


def mutate(data: bytes, seed: int) -> bytes:
    """A few bytes changed, hostile 4-byte lengths planted, maybe cut short (seeded, so that
    hypothesis can replay it; cheaper than drawing each choice)."""
    rnd = random.Random(seed)
    out = bytearray(data)
    for _ in range(rnd.randint(0, 4) if out else 0):
        i = rnd.randrange(len(out))
        if rnd.random() < 0.5:
            out[i] = rnd.randrange(256)
        else:
            big = rnd.choice([INT_MAX, -2, INT_MIN, len(out), len(out) + 1, 65536])
            out[i:i + 4] = big.to_bytes(4, "big", signed=True)
    return bytes(out[:rnd.randint(0, len(out))] if rnd.random() < 0.3 else out)


def decodes_within(read, data: bytes):
    """(value, bytes read) when `read(reader)` decodes, None when it raises JuteError."""
    r = Reader(data)
    try:
        value = read(r)
    except JuteError:
        return None
    assert r.offset <= len(data)
    return value, r.offset


# what a client can send or be sent gets the full budget; quorum and txn records, the server's
# own, use the same generated code and get less
CLIENT_MODULES = ("org.apache.zookeeper.data", "org.apache.zookeeper.proto")


@pytest.mark.parametrize("name", list(CLASSES))
def test_any_bytes_decode_or_raise_jute_error(name):
    cls = RECORDS[name]

    @settings(BOUNDED, max_examples=200 if CLASSES[name].module in CLIENT_MODULES else 40)
    @given(st.binary(max_size=96) | st.builds(mutate, record_strategy(name).map(encode), SEEDS))
    def check(raw):
        got = decodes_within(cls.read, raw)
        if got is not None:
            rec, used = got
            assert len(encode(rec)) <= used           # never built more than it read

    check()


def multi_bytes(ops) -> bytes:
    w = Writer()
    for op, rec in ops:
        zr.MultiHeader(op, False, -1).write(w)
        rec.write(w)
    zr.MultiHeader(-1, True, -1).write(w)
    return w.getvalue()


WRITE_OPS = [op for op in MULTI_REQUESTS if op not in (OpCode.GET_DATA, OpCode.GET_CHILDREN)]
multi_op = st.sampled_from(WRITE_OPS).flatmap(
    lambda op: record_strategy(MULTI_REQUESTS[op].__name__).map(lambda rec: (op, rec)))


@BOUNDED
@given(data=st.data())
def test_multi_and_connect_decode_or_raise_jute_error(data):
    ops = data.draw(st.lists(multi_op, max_size=4))
    raw = multi_bytes(ops)
    assert read_multi(Reader(raw)) == ops
    mutated = mutate(raw, data.draw(SEEDS))
    got = decodes_within(read_multi, mutated)
    if got is not None:
        assert len(got[0]) <= len(mutated) // 14
    connect = encode(data.draw(record_strategy("ConnectRequest"))) + b"\x01"
    try:
        read_connect_request(mutate(connect, data.draw(SEEDS)))
    except JuteError:
        pass


def test_multi_rules():
    get = (OpCode.GET_DATA, zr.GetDataRequest("/a", False))
    delete = (OpCode.DELETE, zr.DeleteRequest("/a", -1))
    assert read_multi(Reader(multi_bytes([]))) == []
    assert read_multi(Reader(multi_bytes([get, get]))) == [get, get]
    with pytest.raises(JuteError, match="mixes reads and writes"):
        read_multi(Reader(multi_bytes([delete, get])))
    with pytest.raises(JuteError, match="invalid op type 3"):
        read_multi(Reader(multi_bytes([(OpCode.EXISTS, zr.ExistsRequest("/a", False))])))
    with pytest.raises(JuteError, match="packet ends"):           # no terminator
        read_multi(Reader(multi_bytes([delete])[:-9]))


def test_framing():
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert MAX_PACKET == 1_048_575
    assert frame_length(frame(b"")[:4]) == 0
    assert frame_length(MAX_PACKET.to_bytes(4, "big")) == MAX_PACKET
    for bad in (MAX_PACKET + 1, -1):
        with pytest.raises(JuteError, match="outside 0..1048575"):
            frame_length(bad.to_bytes(4, "big", signed=True))


# ---- against kazoo's own serialisation -------------------------------------------------------

@pytest.fixture
def kz():
    from kazoo.protocol import serialization

    return serialization


def kazoo_acl(perms, scheme, ident):
    from kazoo.security import ACL, Id
    return ACL(perms, Id(scheme, ident))


def test_connect_handshake_against_kazoo(kz):
    sent = bytes(kz.Connect(0, 0x1234, 15000, 0, b"\x00" * 16, False).serialize())
    assert len(sent) == 45
    assert read_connect_request(sent) == (zr.ConnectRequest(0, 0x1234, 15000, 0, bytes(16)), False)
    sent = bytes(kz.Connect(0, 7, 30000, 99, b"pw", True).serialize())
    assert read_connect_request(sent) == (zr.ConnectRequest(0, 7, 30000, 99, b"pw"), True)
    assert read_connect_request(sent[:-1])[1] is None              # a client without the byte
    resp = zr.ConnectResponse(0, 10000, 0x1_0000_0001, b"p" * 16)
    for read_only in (True, False, None):
        data = write_connect_response(resp, read_only)
        assert len(data) == (36 if read_only is None else 37)
        got, _ = kz.Connect.deserialize(data, 0)
        assert (got.time_out, got.session_id, got.passwd) == (10000, 0x1_0000_0001, b"p" * 16)
        assert got.read_only is bool(read_only)


def test_requests_kazoo_sends(kz):
    acl = [kazoo_acl(31, "world", "anyone"), kazoo_acl(1, "digest", "u:h")]
    ours = [zr.ACL(31, zr.Id("world", "anyone")), zr.ACL(1, zr.Id("digest", "u:h"))]
    cases = [
        (kz.Create("/a", b"v", acl, 3), zr.CreateRequest("/a", b"v", ours, 3)),
        (kz.Create("/n", None, acl, 0), zr.CreateRequest("/n", None, ours, 0)),
        (kz.Create2("/e", b"", acl, 1), zr.CreateRequest("/e", b"", ours, 1)),
        (kz.Delete("/a", -1), zr.DeleteRequest("/a", -1)),
        (kz.Exists("/a", True), zr.ExistsRequest("/a", True)),
        (kz.GetData("/a", False), zr.GetDataRequest("/a", False)),
        (kz.SetData("/a", b"x" * 300, 7), zr.SetDataRequest("/a", b"x" * 300, 7)),
        (kz.GetACL("/a"), zr.GetACLRequest("/a")),
        (kz.SetACL("/a", acl, 2), zr.SetACLRequest("/a", ours, 2)),
        (kz.GetChildren("/a", True), zr.GetChildrenRequest("/a", True)),
        (kz.GetChildren2("/a", False), zr.GetChildren2Request("/a", False)),
        (kz.Sync("/a"), zr.SyncRequest("/a")),
        (kz.Reconfig("s1", "", None, -1), zr.ReconfigRequest("s1", None, None, -1)),
        (kz.Auth(0, "digest", "u:p"), zr.AuthPacket(0, "digest", b"u:p")),
        (kz.SASL(b"tok"), zr.GetSASLRequest(b"tok")),
    ]
    for xid, (theirs, expected) in enumerate(cases, start=1):
        # kazoo's _submit: xid, type, body (kazoo sends "" strings as null)
        packet = xid.to_bytes(4, "big") + theirs.type.to_bytes(4, "big", signed=True) \
            + bytes(theirs.serialize())
        r = Reader(packet)
        assert zr.RequestHeader.read(r) == zr.RequestHeader(xid, theirs.type)
        assert OpCode(theirs.type).name                          # every kazoo opcode is known
        assert type(expected).read(r) == expected
        r.expect_end()
        assert encode(expected) == bytes(theirs.serialize())


def stat(n: int = 1) -> zr.Stat:
    return zr.Stat(n, n + 1, 1700000000000, 1700000000001, 3, 4, 0, 0x1_0000_0002, 5, 6, LONG_MAX)


def test_replies_kazoo_reads(kz):
    from kazoo.protocol.states import ZnodeStat
    zs = ZnodeStat(*dataclasses.astuple(stat()))
    header = encode(zr.ReplyHeader(5, LONG_MAX, 0))
    assert kz.ReplyHeader.deserialize(header, 0) == (kz.ReplyHeader(5, LONG_MAX, 0), 16)
    acl = [zr.ACL(Perms.READ | Perms.WRITE, zr.Id("digest", "u:h"))]
    cases = [
        (kz.Create, zr.CreateResponse("/a0000000001"), "/a0000000001"),
        (kz.Create2, zr.Create2Response("/a", stat()), ("/a", zs)),
        (kz.Exists, zr.ExistsResponse(stat()), zs),
        (kz.GetData, zr.GetDataResponse(None, stat()), (None, zs)),
        (kz.GetData, zr.GetDataResponse(b"", stat()), (b"", zs)),
        (kz.SetData, zr.SetDataResponse(stat()), zs),
        (kz.GetACL, zr.GetACLResponse(acl, stat()), ([kazoo_acl(3, "digest", "u:h")], zs)),
        (kz.SetACL, zr.SetACLResponse(stat()), zs),
        (kz.GetChildren, zr.GetChildrenResponse(["a", "b\u00e9"]), ["a", "b\u00e9"]),
        (kz.GetChildren, zr.GetChildrenResponse([]), []),
        (kz.GetChildren2, zr.GetChildren2Response(["x"], stat()), (["x"], zs)),
        (kz.Sync, zr.SyncResponse("/not_there"), "/not_there"),
        (kz.Reconfig, zr.GetDataResponse(b"server.1=...", stat()), (b"server.1=...", zs)),
    ]
    for theirs, ours, expected in cases:
        assert theirs.deserialize(header + encode(ours), 16) == expected
    assert kz.SASL.deserialize(encode(zr.SetSASLResponse(b"ch")), 0) == (b"ch", 6)
    event = zr.WatcherEvent(4, 3, "/a")
    assert kz.Watch.deserialize(encode(event), 0) == (kz.Watch(4, 3, "/a"), 14)


def test_multi_against_kazoo(kz):
    acl = [kazoo_acl(31, "world", "anyone")]
    txn = kz.Transaction([kz.Create("/t", b"v", acl, 2), kz.Delete("/d", 3),
                          kz.SetData("/s", None, -1), kz.CheckVersion("/c", 0)])
    ops = read_multi(Reader(bytes(txn.serialize())))
    world = [zr.ACL(31, zr.Id("world", "anyone"))]
    assert ops == [(OpCode.CREATE, zr.CreateRequest("/t", b"v", world, 2)),
                   (OpCode.DELETE, zr.DeleteRequest("/d", 3)),
                   (OpCode.SET_DATA, zr.SetDataRequest("/s", None, -1)),
                   (OpCode.CHECK, zr.CheckVersionRequest("/c", 0))]

    w = Writer()
    write_multi_response(w, [(OpCode.CREATE, zr.CreateResponse("/t0000000000"), 0),
                             (OpCode.DELETE, None, 0),
                             (OpCode.SET_DATA, zr.SetDataResponse(stat()), 0),
                             (OpCode.CHECK, None, 0)])
    from kazoo.protocol.states import ZnodeStat
    assert kz.Transaction.deserialize(w.getvalue(), 0) == \
        ["/t0000000000", True, ZnodeStat(*dataclasses.astuple(stat())), True]

    from kazoo.exceptions import NoNodeError, RolledBackError, RuntimeInconsistency
    w = Writer()
    write_multi_response(w, failed_multi_results(4, 1, KeeperCode.NO_NODE))
    got = kz.Transaction.deserialize(w.getvalue(), 0)
    assert [type(e) for e in got] == [RolledBackError, NoNodeError, RuntimeInconsistency,
                                      RuntimeInconsistency]


def test_multi_results_follow_zookeeper():
    w = Writer()
    write_multi_response(w, [(OpCode.CREATE_CONTAINER, zr.Create2Response("/c", stat()), 0),
                             (OpCode.GET_DATA, None, KeeperCode.NO_NODE)])
    r = Reader(w.getvalue())
    assert zr.MultiHeader.read(r) == zr.MultiHeader(OpCode.CREATE2, False, 0)
    assert zr.Create2Response.read(r) == zr.Create2Response("/c", stat())
    assert zr.MultiHeader.read(r) == zr.MultiHeader(OpCode.ERROR, False, -101)
    assert zr.ErrorResponse.read(r) == zr.ErrorResponse(-101)
    assert zr.MultiHeader.read(r) == zr.MultiHeader(-1, True, -1)
    r.expect_end()
    with pytest.raises(JuteError, match="needs SetDataResponse"):
        write_multi_response(Writer(), [(OpCode.SET_DATA, None, 0)])


def test_codes_match_kazoo(kz):
    from kazoo.exceptions import EXCEPTIONS
    assert set(EXCEPTIONS) == {int(c) for c in KeeperCode}
    for cls in vars(kz).values():
        if isinstance(cls, type) and isinstance(getattr(cls, "type", None), int):
            assert OpCode(cls.type)
