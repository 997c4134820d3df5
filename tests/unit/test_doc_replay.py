"""The transcript replayer's parts that need no server: markers, commands, normalising, matching."""
from __future__ import annotations

import pytest

from tests.doc_replay import Target, matches, normalise, parse, with_exit

PAGE = """Intro.

<!-- replay -->
```console
$ dcli zk create /a x
Created /a
$ printf 'a\\nb\\n' | kafka-console-producer --bootstrap-server localhost:7181 \\
      --topic chat
$ dcli zk get /nope
Node does not exist: /nope                                                (exit 3)
```

```
$ not replayed
```

````
<!-- replay -->
```console
$ an example of the convention, inside a fence
```
````

<!-- replay cluster=3 leader=1 -->
```console
$ dcli cluster status
```
"""


def test_parse_finds_the_marked_blocks_only():
    blocks = parse(PAGE)
    assert [(b.nodes, b.leader, len(b.commands)) for b in blocks] == [(0, None, 3), (3, 1, 1)]
    create, produce, get = blocks[0].commands
    assert (create.text, create.expected, create.exit_code) == ("dcli zk create /a x", ["Created /a"], 0)
    assert produce.text.endswith("\\\n      --topic chat") and produce.expected == []
    assert (get.expected, get.exit_code) == (["Node does not exist: /nope"], 3)


def test_a_marker_must_stand_above_a_console_fence():
    with pytest.raises(ValueError, match="line 1"):
        parse("<!-- replay -->\n```\n$ x\n```\n")


def test_normalise_takes_out_what_differs_between_honest_runs():
    assert normalise("ctime = Wed Nov 25 01:35:28 UTC 2026") == normalise("ctime = Mon Dec 07 11:02:03 UTC 2026")
    assert normalise("cZxid = 0x2") == normalise("cZxid = 0x1a2")
    assert normalise("node 2 started on 127.0.0.1:7182 (pid 21395)") == normalise(
        "node 2 started on 127.0.0.1:7182 (pid 7)")
    assert normalise("1     127.0.0.1:7181  leader       2       1      20       0x14   3  17  2  up") == normalise(
        "1 127.0.0.1:7181 follower 3 3 29 0x1d 3 19 1 up")
    assert normalise("2 127.0.0.1:7182 - - - - - - - - down") != normalise("2 127.0.0.1:7182 follower 3 3 1 0x1 3 1 1 up")
    racy = "W met: 2 of 3 stored it · replicas: 1 stored (coordinator), 2 stored, 3 pending"
    assert normalise(racy) == normalise("W met: 3 of 3 stored it · replicas: 1 stored (coordinator), 3 stored, 2 stored")
    assert normalise("replicas: 1 current, 3 failed") == normalise("replicas: 1 current, 3 late")
    assert normalise("Quorum not reached: R=3 of N=3 needed, 2 replica(s) answered (1 ok, 2 ok, 3 failed)") != \
        normalise("Quorum not reached: R=3 of N=3 needed, 2 replica(s) answered (1 ok, 2 ok, 3 late)")
    assert normalise("Created /parent") != normalise("Created /parnt")


def test_matches_with_ellipsis_lines():
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "d"], ["a", "d"])
    assert not matches(["a", "...", "d"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])
    assert matches(["a", ""], ["a"])


def test_addresses_move_between_the_page_and_the_real_ports():
    t = Target(["127.0.0.1:43093", "127.0.0.1:40001"])
    assert t.to_real("x --bootstrap-server localhost:7181 --server 127.0.0.1:7182") == \
        "x --bootstrap-server localhost:43093 --server 127.0.0.1:40001"
    assert t.to_doc("│ 127.0.0.1:43093 │ up") == "│ 127.0.0.1:7181  │ up"
    assert t.to_doc("node 2 started on 127.0.0.1:40001 (pid 3)") == "node 2 started on 127.0.0.1:7182 (pid 3)"


def test_with_exit_writes_the_exit_code_after_the_last_line():
    assert with_exit(["Node not empty: /parent"], 4)[-1].endswith("   (exit 4)")
    assert with_exit([], 5) == ["(exit 5)"]
    assert with_exit(["ok"], 0) == ["ok"]
