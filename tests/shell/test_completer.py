"""The completer as a pure function: text before the cursor -> suggestions.

The command tree is read from the real Typer apps; the znode children come from a dict."""
import pytest
import typer

from dcli.cli import main, zk
from dcli.shell.completer import CommandSpec, Suggestion, complete, current_word, shell_spec

TREE = {
    "/": ["parent", "pets", "zookeeper", "with space"],
    "/parent": ["child", "child2", "other"],
    "/parent/child": [],
    "/pets": ["cat", "dog"],
}


def root_command(typer_app=None):
    """The root click group with every (lazily loaded) group built, as the shell builds it."""
    command = typer.main.get_command(typer_app or main.app)
    if hasattr(command, "load_all"):
        command.load_all()
    return command


@pytest.fixture(scope="module")
def spec():
    return shell_spec(typer.main.get_command(zk.app), root_command())


def texts(before, spec, tree=TREE):
    return [s.text for s in complete(before, spec, tree.get)]


def test_empty_line_offers_every_command(spec):
    names = texts("", spec)
    for n in ("create", "get", "ls", "addWatch", "zk", "server", "help", "history", "redo",
              "printwatches", "connect", "close", "quit"):
        assert n in names
    assert names == sorted(names, key=str.lower)


@pytest.mark.parametrize("before, expected", [
    ("g", ["get", "getAcl", "getAllChildrenNumber", "getEphemerals"]),
    ("getE", ["getEphemerals"]),
    ("cl", ["close", "cluster"]),
    ("c", ["close", "cluster", "connect", "create"]),
    ("pr", ["printwatches"]),
    ("zk", ["zk"]),
    ("nope", []),
])
def test_command_names(spec, before, expected):
    assert texts(before, spec) == expected


def test_command_name_replaces_the_typed_prefix(spec):
    assert complete("getE", spec, TREE.get) == [Suggestion("getEphemerals", -4,
                                                           complete("getE", spec, TREE.get)[0].meta)]


@pytest.mark.parametrize("before, expected", [
    ("get -", ["-s", "-w", "--timeout"]),
    ("get -s -", ["-w", "--timeout"]),       # a flag already given is not offered again
    ("create -", ["-c", "-e", "-s", "-t", "--data-file"]),
    ("ls -R", ["-R"]),
    ("delete -", ["-v"]),
    ("addWatch -", ["-m", "--count", "--timeout"]),
    ("watch --r", ["--recursive"]),
])
def test_flags_come_from_the_click_commands(spec, before, expected):
    assert sorted(texts(before, spec)) == sorted(expected)


def test_help_flags_are_not_offered(spec):
    assert "--help" not in texts("get -", spec)
    assert "-h" not in texts("get -", spec)


@pytest.mark.parametrize("before, expected", [
    ("get /", ["/parent", "/pets", "/with space", "/zookeeper"]),
    ("get /p", ["/parent", "/pets"]),
    ("get /pa", ["/parent"]),
    ("get /parent/", ["/parent/child", "/parent/child2", "/parent/other"]),
    ("get /parent/ch", ["/parent/child", "/parent/child2"]),
    ("get -s -w /parent/o", ["/parent/other"]),
    ("ls -R /pe", ["/pets"]),
    ("delete -v 3 /pets/c", ["/pets/cat"]),
    ("get /parent/child/", []),             # known and empty
    ("get /x", []),
])
def test_paths_from_the_children_source(spec, before, expected):
    assert texts(before, spec) == expected


def test_path_suggestion_replaces_the_whole_word(spec):
    assert [(s.text, s.start) for s in complete("get /parent/ch", spec, TREE.get)] == [
        ("/parent/child", -10), ("/parent/child2", -10)]


def test_path_offered_for_an_empty_first_argument(spec):
    s = complete("get ", spec, TREE.get)
    assert [x.text for x in s] == ["/parent", "/pets", "/with space", "/zookeeper"]
    assert all(x.start == 0 for x in s)


def test_no_path_after_the_path_was_given(spec):
    assert texts("create /parent/new ", spec) == []
    assert texts("set /parent ", spec) == []


def test_no_completion_for_a_flag_value(spec):
    assert texts("delete -v ", spec) == []
    assert texts("create -t ", spec) == []


def test_unknown_parent_completes_nothing_and_asks_for_it(spec):
    asked = []

    def children_of(path):
        asked.append(path)
        return None
    assert complete("get /pets/d", spec, children_of) == []
    assert asked == ["/pets"]


def test_paths_in_a_group_command(spec):
    assert texts("zk get /pa", spec) == ["/parent"]
    assert "get" in texts("zk g", spec)
    assert texts("zk get -", spec) == texts("get -", spec)


def test_group_subcommands(spec):
    assert texts("zk ", spec) == sorted(texts("zk ", spec), key=str.lower)
    assert {"create", "get", "ls"} <= set(texts("zk ", spec))
    assert texts("zk cr", spec) == ["create"]


def test_shell_level_arguments(spec):
    assert texts("printwatches ", spec) == ["on", "off"]
    assert texts("printwatches o", spec) == ["on", "off"]
    assert texts("printwatches of", spec) == ["off"]
    assert texts("history ", spec) == []


def test_unknown_command_completes_nothing(spec):
    assert texts("frobnicate /p", spec) == []


def test_a_command_added_later_completes_without_changes():
    root = typer.Typer()
    kv = typer.Typer()

    @kv.command("put")
    def put(key: str, value: str, lease: int = typer.Option(0, "--lease")) -> None: ...

    @kv.command("get")
    def get(key: str, prefix: bool = typer.Option(False, "--prefix")) -> None: ...
    root.add_typer(kv, name="kv")
    zk_cmd = typer.main.get_command(zk.app)
    spec = shell_spec(zk_cmd, root_command(root))
    assert texts("k", spec) == ["kv"]
    assert texts("kv ", spec) == ["get", "put"]
    assert texts("kv put --l", spec) == ["--lease"]
    assert texts("kv get -", spec) == ["--prefix"]


def test_quoted_words_before_the_cursor(spec):
    assert current_word('create /a "x y" ') == (["create", "/a", "x y"], "", 0)
    assert current_word('set /a "half') == (["set", "/a"], "half", 5)
    assert texts('create "/pa', spec) == ["/parent"]
    assert complete('create "/pa', spec, TREE.get)[0].start == -4


def test_spec_from_click_reads_value_flags():
    s = CommandSpec.from_click(typer.main.get_command(zk.app).commands["create"])
    assert s.takes_path
    assert s.flags["-t"] is True and s.flags["-e"] is False


def test_topic_and_group_names_complete_from_the_server_source(spec):
    tree = {**TREE, "kafka:topics": ["chat", "chores", "orders"], "kafka:groups": ["readers"]}
    assert texts("kafka topics --describe --topic ch", spec, tree) == ["chat", "chores"]
    assert texts("kafka console-consumer --group r", spec, tree) == ["readers"]
    assert texts("kafka console-consumer --group r", spec, TREE) == []     # not fetched yet
