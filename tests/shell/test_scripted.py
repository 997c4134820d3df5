"""Scripted sessions through the real CLI in a subprocess, against a real server."""
from dcli.client import CoordClient

from tests.shell.conftest import popen_shell, read_until, run_shell


def test_dash_c_runs_commands_in_one_session(server, root_path):
    r = run_shell("-c", f'create {root_path} "hello world"; get {root_path}; ls {root_path}',
                  server=server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == f"Created {root_path}\nhello world\n[]\n"
    assert r.stderr == b""


def test_semicolons_inside_quotes_are_data(server, root_path):
    r = run_shell("-c", f"create {root_path} 'a; b'; get {root_path}", server=server)
    assert r.stdout.decode().splitlines() == [f"Created {root_path}", "a; b"]


def test_script_on_stdin_with_comments_and_errors(server, root_path):
    script = (f"# set up\n\ncreate {root_path} x\n   # indented comment\n"
              f"get {root_path}/missing\nget {root_path}\n").encode()
    r = run_shell(server=server, input=script)
    assert r.stdout.decode() == f"Created {root_path}\nx\n"
    assert r.stderr.decode() == f"Node does not exist: {root_path}/missing\n"
    assert r.returncode == 3          # the last failure's code, though later commands succeeded


def test_exit_code_is_the_last_failures(server, root_path):
    script = f"get {root_path}/missing\ncreate {root_path} x\ncreate {root_path} y\nget {root_path}\n"
    r = run_shell(server=server, input=script.encode())
    assert r.returncode == 4          # Node already exists came after Node does not exist
    assert r.stderr.decode().splitlines() == [f"Node does not exist: {root_path}/missing",
                                              f"Node already exists: {root_path}"]
    assert r.stdout.decode() == f"Created {root_path}\nx\n"


def test_no_failure_exits_zero(server, root_path):
    r = run_shell(server=server, input=f"create {root_path} x\n# done\n".encode())
    assert r.returncode == 0 and r.stderr == b""


def test_stop_on_error(server, root_path):
    script = f"create {root_path} x\nget {root_path}/missing\ncreate {root_path}/after y\n"
    r = run_shell("--stop-on-error", server=server, input=script.encode())
    assert r.returncode == 3
    assert r.stdout.decode() == f"Created {root_path}\n"
    check = run_shell("-c", f"stat {root_path}/after", server=server)
    assert check.returncode == 3          # the command after the failure never ran


def test_stop_on_error_with_dash_c(server, root_path):
    r = run_shell("--stop-on-error", "-c", f"ls {root_path}; create {root_path} x", server=server)
    assert r.returncode == 3
    assert run_shell("-c", f"stat {root_path}", server=server).returncode == 3


def test_unknown_command_prints_usage(server):
    r = run_shell("-c", "foo /x", server=server)
    err = r.stderr.decode()
    assert err.endswith("Command not found: Command not found foo\n")
    assert "\tget [-s] [-w] path\n" in err and "\tprintwatches on|off\n" in err
    assert r.returncode == 2


def test_missing_argument_prints_the_usage_line(server):
    r = run_shell("-c", "get", server=server)
    assert r.stderr.decode() == "get [-s] [-w] path\n"


def test_help_history_and_redo(server, root_path):
    r = run_shell("-c", f"create {root_path} x; help; get {root_path}; history; redo 2", server=server)
    out = r.stdout.decode()
    assert "\tconnect host:port\n" in out and "\tredo cmdno\n" in out
    assert out.endswith(f"0 - create {root_path} x\n1 - help\n2 - get {root_path}\n3 - history\nx\n")
    assert r.returncode == 0


def test_history_shows_the_last_eleven(server):
    cmds = [f"printwatches {'on' if i % 2 else 'off'}" for i in range(14)] + ["history"]
    r = run_shell("-c", "; ".join(cmds), server=server)
    lines = r.stdout.decode().splitlines()
    assert [ln.split(" - ")[0] for ln in lines] == [str(i) for i in range(4, 15)]
    assert lines[-1] == "14 - history"


def test_bad_redo(server):
    r = run_shell("-c", "history; redo 7; redo 1", server=server)
    assert r.stderr.decode().splitlines() == ["Command index out of range", "No redoing redos"]


def test_root_groups_dispatch_through_the_root_app(server, root_path):
    r = run_shell("-c", f"zk create {root_path} x; zk get {root_path}", server=server)
    assert r.stdout.decode() == f"Created {root_path}\nx\n", r.stderr


def test_close_then_not_connected_then_connect(server, root_path):
    r = run_shell("-c", f"create -e {root_path} x; close; ls /; connect {server.address}; "
                        f"stat {root_path}", server=server)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert "WatchedEvent state:Closed type:None path:null" in out
    assert "WatchedEvent state:SyncConnected type:None path:null" in out
    assert out.index("state:Closed") < out.index("state:SyncConnected")
    # the new session is a new session: the old one's ephemeral went with it
    assert err.splitlines() == ["Not connected", f"Node does not exist: {root_path}"]
    assert r.returncode == 3


def test_watch_events_print_in_scripts(server, root_path):
    """`get -w` returns at once in the shell; the event prints when another client changes it."""
    p = popen_shell(server=server)
    try:
        p.stdin.write(f"create {root_path} x\nget -w {root_path}\n".encode())
        p.stdin.flush()
        read_until(p.stdout, b"x\n")
        with CoordClient(server.address) as other:
            other.set(root_path, b"y")
        got = read_until(p.stdout, f"path:{root_path}\n".encode()).decode()
        assert got == f"\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:{root_path}\n"
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()


def test_printwatches_off(server, root_path):
    with CoordClient(server.address) as other:
        other.create(root_path, b"x")
    p = popen_shell(server=server)
    try:
        p.stdin.write(f"printwatches off\nget -w {root_path}\nwatch {root_path} --count 1\n".encode())
        p.stdin.flush()
        read_until(p.stderr, b"Watching")
        with CoordClient(server.address) as other:
            other.set(root_path, b"y")
        p.stdin.close()
        assert p.wait(timeout=30) == 0
        out = p.stdout.read().decode()
        # the `watch` command's own event prints; the -w watch's does not
        assert out.count("WATCHER::") == 1, out
    finally:
        p.kill()


def test_ephemeral_lives_while_the_shell_runs_and_goes_at_quit(server, root_path):
    p = popen_shell(server=server)
    try:
        p.stdin.write(f"create {root_path} x\ncreate -e {root_path}/eph e\n"
                      f"watch {root_path}/done --count 1\n".encode())
        p.stdin.flush()
        read_until(p.stderr, b"Watching")              # the shell waits in `watch`
        with CoordClient(server.address) as other:
            st = other.exists(f"{root_path}/eph")
            assert st is not None and st.ephemeralOwner != 0
            other.create(f"{root_path}/done")          # ends the `watch`
            read_until(p.stdout, b"NodeCreated")
            # the ended `watch` took its watch with it: nothing is left to remove
            p.stdin.write(f"removewatches {root_path}/done\n".encode())
            p.stdin.flush()
            read_until(p.stderr, f"No such watcher for {root_path}/done".encode())
            p.stdin.write(b"quit\n")
            p.stdin.close()
            assert p.wait(timeout=30) == 3          # the last failure: removewatches, not found
            assert other.exists(f"{root_path}/eph") is None   # at once: the session was closed
    finally:
        p.kill()
