"""zkCli's line splitting: quotes group and are stripped; no backslash escapes."""
import pytest

from dcli.shell.parse import is_skipped, split_commands, split_words


@pytest.mark.parametrize("line, words", [
    ("get /a", ["get", "/a"]),
    ("  ls   -R    /  ", ["ls", "-R", "/"]),
    ('create /parent "parent znode"', ["create", "/parent", "parent znode"]),
    ("create /q2 'single quoted'", ["create", "/q2", "single quoted"]),
    ('create /q "it\'s"', ["create", "/q", "it's"]),
    ("create /q 'say \"hi\"'", ["create", "/q", 'say "hi"']),
    ('create /sp ""', ["create", "/sp", ""]),
    # zkCli has no backslash escapes: this is how it splits it (and then fails on the ACL)
    ('create /q3 "a \\"b\\" c"', ["create", "/q3", "a \\", 'b\\"', 'c"']),
    ("create /q4 unquoted words", ["create", "/q4", "unquoted", "words"]),
    ("set /a x\ty", ["set", "/a", "x", "y"]),
    ("", []),
    ("   ", []),
])
def test_split_words(line, words):
    assert split_words(line) == words


@pytest.mark.parametrize("text, commands", [
    ("create /a x; get /a", ["create /a x", "get /a"]),
    ("create /a 'x; y'; get /a", ["create /a 'x; y'", "get /a"]),
    ('create /a "x;y";get /a;;', ['create /a "x;y"', "get /a"]),
    ("get /a", ["get /a"]),
    (" ; ; ", []),
])
def test_split_commands(text, commands):
    assert split_commands(text) == commands


@pytest.mark.parametrize("line, skipped", [
    ("", True), ("   \n", True), ("# a comment", True), ("   # indented", True),
    ("get /a", False), ("get /a # not a comment mid-line", False),
])
def test_is_skipped(line, skipped):
    assert is_skipped(line) is skipped
