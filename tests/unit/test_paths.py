"""ZooKeeper's path rules, with zkCli's messages (reference §3.6)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcli.wire.errors import InvalidPathError
from dcli.wire.paths import join, name_of, parent_of, path_problem, validate_path


@pytest.mark.parametrize("path,message", [
    ("noslash", "Path must start with / character"),
    ("", "Path length must be > 0"),
    ("/trailing/", "Path must not end with / character"),
    ("//double", 'Invalid path string "//double" caused by empty node name specified @1'),
    ("/parent//x", 'Invalid path string "/parent//x" caused by empty node name specified @8'),
    ("/parent/./x", 'Invalid path string "/parent/./x" caused by relative paths not allowed @8'),
    ("/parent/../x", 'Invalid path string "/parent/../x" caused by relative paths not allowed @9'),
    ("/.", 'Invalid path string "/." caused by relative paths not allowed @1'),
    ("/..", 'Invalid path string "/.." caused by relative paths not allowed @2'),
    ("/a\x00b", 'Invalid path string "/a\x00b" caused by null character not allowed @2'),
    ("/a\x07", 'Invalid path string "/a\x07" caused by invalid character @2'),
])
def test_invalid_paths_have_zkclis_message(path, message):
    assert path_problem(path) == message
    with pytest.raises(InvalidPathError) as e:
        validate_path(path)
    assert str(e.value) == message


@pytest.mark.parametrize("path", ["/", "/a", "/with space", "/héllo", "/a.b", "/...", "/a/.b", "/0000000001"])
def test_valid_paths(path):
    assert path_problem(path) is None


def test_sequential_create_may_end_with_a_slash():
    assert path_problem("/parent/", sequential=True) is None
    assert path_problem("/parent/") == "Path must not end with / character"


def test_helpers():
    assert parent_of("/a/b") == "/a" and parent_of("/a") == "/"
    assert name_of("/a/b") == "b"
    assert join("/", "a") == "/a" and join("/a", "b") == "/a/b"


def test_error_codes_match_the_wire_contract():
    from dcli.v1 import coord_pb2 as pb
    from dcli.wire.errors import Code

    assert {c.name: c.value for c in Code} == dict(pb.ErrorCode.items())


def test_watched_event_prints_as_zkcli():
    from dcli.client import EventType, KeeperState, WatchedEvent

    assert str(WatchedEvent(EventType.NONE, KeeperState.SYNC_CONNECTED, None)) == \
        "WatchedEvent state:SyncConnected type:None path:null"
    assert str(WatchedEvent(EventType.NODE_DATA_CHANGED, KeeperState.SYNC_CONNECTED, "/p")) == \
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/p"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "/", ".", "\x00", "\x1f", "\x7f", "\x9f", "\xa0", "\ud800", "\uf8ff",
                                         "\uf900", "\ufff0", "\U0001F600", "é", " "]), max_size=10),
       st.booleans())
def test_the_fast_path_agrees_with_the_full_check(text, sequential):
    """Valid paths are recognised by one regular expression; every answer must be the one the
    character-by-character check (ZooKeeper's) gives."""
    import re

    from dcli.wire import paths

    for candidate in (text, "/" + text):
        fast = paths.path_problem(candidate, sequential)
        saved, paths._PLAIN = paths._PLAIN, re.compile("(?!)")
        try:
            full = paths.path_problem(candidate, sequential)
        finally:
            paths._PLAIN = saved
        assert fast == full, repr(candidate)
