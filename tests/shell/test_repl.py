"""The REPL end to end in a pseudo-terminal, against a real server."""
import re

from dcli.client import CoordClient

PROMPT = r"\[dcli: 127\.0\.0\.1:\d+\(CONNECTED\) {n}\] ?"


def test_type_commands_and_read_their_output(terminal, root_path):
    t = terminal()
    t.expect(r"WatchedEvent state:SyncConnected type:None path:null")
    t.expect(PROMPT.format(n=0))
    t.send(f'create {root_path} "hello world"\r')
    t.expect(f"Created {root_path}")
    t.expect(PROMPT.format(n=1))
    t.send(f"get {root_path}\r")
    t.expect("hello world")
    t.expect(PROMPT.format(n=2))
    t.send("quit\r")
    t.expect("WatchedEvent state:Closed type:None path:null")
    assert t.wait_exit() == 0


def test_watch_event_appears_above_a_half_typed_line(terminal, server, root_path):
    with CoordClient(server.address) as other:
        other.create(root_path, b"x")
        other.create(f"{root_path}/kid", b"k")
        t = terminal()
        t.expect(PROMPT.format(n=0))
        t.send(f"get -w {root_path}\r")
        t.expect(PROMPT.format(n=1))
        t.send(f"ls {root_path}")                 # half-typed: no Enter yet
        t.expect(re.escape(f"ls {root_path}"))
        other.set(root_path, b"y")
        t.expect(f"WATCHER::\\s+WatchedEvent state:SyncConnected type:NodeDataChanged path:{root_path}")
        # the prompt and the half-typed line are drawn again below the event ...
        t.expect(PROMPT.format(n=1) + re.escape(f"ls {root_path}"))
        t.send("\r")                               # ... and the line is still there to run
        t.expect(r"\[kid\]")
        t.expect(PROMPT.format(n=2))


def test_ctrl_c_ends_a_blocking_command_not_the_shell(terminal, root_path):
    t = terminal()
    t.expect(PROMPT.format(n=0))
    t.send(f"create {root_path} x\r")
    t.expect(PROMPT.format(n=1))
    t.send(f"watch {root_path}\r")
    t.expect(f"Watching {root_path}")
    t.send("\x03")
    t.expect(PROMPT.format(n=2))
    t.send(f"get {root_path}\r")                  # still connected, same shell
    t.expect(r"\nx\n")
    t.expect(PROMPT.format(n=3))


def test_ctrl_c_cancels_the_line_and_ctrl_d_quits(terminal, server, root_path):
    t = terminal()
    t.expect(PROMPT.format(n=0))
    t.send(f"create {root_path} never")
    t.expect("never")
    t.send("\x03")
    t.expect(PROMPT.format(n=0))                  # no command ran: the counter did not move
    # between two prompts the terminal is briefly in cooked mode, where the tty driver itself
    # swallows a ^D: send it again until the new prompt has it (bounded)
    for _ in range(20):
        t.send("\x04")
        try:
            code = t.wait_exit(timeout=1.5)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("the shell did not exit on Ctrl-D")
    assert code == 0
    with CoordClient(server.address) as c:
        assert c.exists(root_path) is None       # the cancelled line never ran


def test_close_shows_in_the_prompt(terminal):
    t = terminal()
    t.expect(PROMPT.format(n=0))
    t.send("close\r")
    t.expect(r"\[dcli: 127\.0\.0\.1:\d+\(CLOSED\) 1\]")
    t.send("ls /\r")
    t.expect("Not connected")


def test_tab_completes_a_path_from_the_cache(terminal, server, root_path):
    with CoordClient(server.address) as other:
        other.create(root_path, b"")
        other.create(f"{root_path}/zebra-unique", b"")
    t = terminal()
    t.expect(PROMPT.format(n=0))
    # the first Tab finds nothing cached and asks the refresher; typing never waits for it.
    # Once cached, Tab completes `/z` to the child, and the `ls` of the child prints `[]`.
    for attempt in range(30):
        t.send(f"ls {root_path}/z\t")
        try:
            t.expect("ebra-unique", timeout=1)
            break
        except AssertionError:
            t.send("\x15")              # Ctrl-U: clear the line, try again
    else:
        raise AssertionError("the path never completed")
    t.send("\r")
    t.expect(r"\[\]")                   # the completed path was run: it exists and is empty
