"""ServerConfig: defaults, a TOML file, DCLI_* variables and flags, in that order; one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from dcli.wire.errors import ExitCode, UsageError
from dcli.wire.peers import Member
from dcli_server.config import SETTINGS, ServerConfig, load, to_toml

PEERS = "1=127.0.0.1:7181,2=127.0.0.1:7182,3=127.0.0.1:7183"


def config(*argv: str, env: dict | None = None) -> ServerConfig:
    return load(list(argv), env or {})[0]


def test_defaults_are_the_documented_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    c = config()
    assert c.listen == "127.0.0.1:7181"
    assert c.data_dir == (tmp_path / "dcli" / "node-1").resolve()
    assert (c.fsync, c.node_id, c.peers, c.join, c.peer_listen) == ("always", 1, {}, False, None)
    assert c.node_config().limits.max_data_bytes == 1024 * 1024


def test_flags_beat_the_environment_which_beats_the_file(tmp_path):
    f = tmp_path / "node.toml"
    f.write_text('fsync = "off"\nsnapshot-every = 10\nmax_data_bytes = 5\nlisten = "127.0.0.1:1"\n')
    env = {"DCLI_SNAPSHOT_EVERY": "20", "DCLI_LISTEN": "127.0.0.1:2"}
    c = config("--config", str(f), "--listen", "127.0.0.1:3", env=env)
    assert c.fsync == "off"                # only in the file
    assert c.max_data_bytes == 5           # the file may spell a name with underscores
    assert c.snapshot_every == 20          # the environment over the file
    assert c.listen == "127.0.0.1:3"       # the flag over both
    assert config(env={"DCLI_CONFIG": str(f)}).fsync == "off"


def test_a_node_of_a_cluster_listens_on_its_own_address_and_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    c = config("--node-id", "2", "--peers", PEERS)
    assert (c.listen, c.peer_listen) == ("127.0.0.1:7182", "127.0.0.1:8182")     # peer port: client + 1000
    assert c.data_dir.name == "node-2"
    assert c.peers == {i: Member(f"127.0.0.1:718{i}", f"127.0.0.1:818{i}") for i in (1, 2, 3)}
    assert c.kv_config().peers == c.node_config().peers == {i: f"127.0.0.1:718{i}" for i in (1, 2, 3)}
    assert c.node_config().peer_addresses == {i: f"127.0.0.1:818{i}" for i in (1, 2, 3)}


def test_peer_addresses_may_be_given_whole_or_as_a_port():
    c = config("--node-id", "1", "--peers", "1=a:7181/b:9001,2=a:7182/9002,3=c:7183")
    assert c.peers == {1: Member("a:7181", "b:9001"), 2: Member("a:7182", "a:9002"), 3: Member("c:7183", "c:8183")}
    assert c.peer_listen == "b:9001"
    assert config("--node-id", "1", "--peers", PEERS, "--peer-listen", "127.0.0.1:0").peer_listen == "127.0.0.1:0"
    assert config("--peer-listen", "none").peer_listen is None


def test_the_file_takes_tables_for_peers_weights_and_broker_overrides(tmp_path):
    f = tmp_path / "node.toml"
    f.write_text('node-id = 3\n[peers]\n1 = "h:1"\n2 = "h:2"\n3 = "h:3"\n'
                 '[kv-weights]\n3 = 2.5\n[override]\n"num.partitions" = 4\n"auto.create.topics.enable" = false\n')
    c = config("--config", str(f))
    assert c.peers == {i: Member(f"h:{i}", f"h:{1000 + i}") for i in (1, 2, 3)} and c.listen == "h:3"
    assert c.kv_weights == {3: 2.5}
    broker, unknown = c.broker()
    assert (broker.num_partitions, broker.auto_create_topics_enable, unknown) == (4, False, [])


def test_broker_settings_stack_file_overrides_then_flags(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("num.partitions=2\nlog.retention.ms=1000\nno.such.thing=1\n")
    c = config("--broker-config", str(props), "--override", "num.partitions=5", "--num-partitions", "7",
               "--no-auto-create-topics")
    broker, unknown = c.broker()
    assert broker.num_partitions == 7 and broker.auto_create_topics_enable is False
    assert unknown == ["no.such.thing"]


def test_a_cluster_nodes_broker_id_is_its_node_id():
    with pytest.raises(UsageError, match="broker.id 7 is not --node-id 2: in a cluster"):
        config("--node-id", "2", "--peers", PEERS, "--override", "broker.id=7").broker()
    assert config("--override", "broker.id=7").broker()[0].broker_id == 7       # alone, any id


def test_printed_configuration_reads_back_to_the_same_settings(tmp_path):
    first = config("--node-id", "2", "--peers", PEERS, "--fsync", "batch", "--unsafe-fsync", "--override", "a.b=c",
                   "--kv-weights", "1=2,3=0.5", "--data-dir", str(tmp_path / "d"), "--join")
    f = tmp_path / "again.toml"
    f.write_text(to_toml(first))
    assert config("--config", str(f)) == first


def test_every_setting_has_a_flag_an_environment_variable_and_a_field():
    fields = set(ServerConfig.__dataclass_fields__)
    assert {s.field for s in SETTINGS} == fields
    assert all(s.env == "DCLI_" + s.name.replace("-", "_").upper() for s in SETTINGS)


@pytest.mark.parametrize("argv,env,file_text,message", [
    (["--fsync", "sometimes"], {}, None, "invalid --fsync 'sometimes': choose always, batch or off"),
    ([], {"DCLI_FSYNC": "sometimes"}, None, "invalid DCLI_FSYNC 'sometimes': choose always, batch or off"),
    ([], {}, 'fsync = "sometimes"\n', "invalid fsync in {file} 'sometimes': choose always, batch or off"),
    (["--listen", "nonsense"], {}, None, "invalid --listen 'nonsense': expected host:port"),
    (["--listen", "h:70000"], {}, None, "invalid --listen 'h:70000': expected host:port"),
    (["--max-data-bytes", "0"], {}, None, "invalid --max-data-bytes '0': must be positive"),
    (["--snapshot-every", "ten"], {}, None, "invalid --snapshot-every 'ten': expected a whole number"),
    (["--kv-vnodes", "5000"], {}, None, "invalid --kv-vnodes '5000': must be 1 to 4096"),
    (["--node-id", "300"], {}, None, "invalid --node-id '300': expected a number from 1 to 255"),
    (["--node-id", "4", "--peers", PEERS], {}, None, "--node-id 4 is not in --peers"),
    (["--peers", "1=h:1,1=h:2"], {}, None, "peer 1 is listed twice"),
    (["--peers", "1=h:1/h:2,2=h:2"], {}, None, "address h:2 is listed twice"),
    (["--peers", "1=h:1/h:1"], {}, None, "invalid peer address 'h:1/h:1': the peer address must differ"),
    (["--peers", "1=h:65000"], {}, None, "invalid peer address 'h:65000': give the peer address too"),
    (["--peers", "1=h:1/x"], {}, None, "invalid peer address in peer address 'x': expected host:port"),
    (["--peer-listen", "nowhere"], {}, None, "invalid --peer-listen 'nowhere': expected host:port"),
    (["--node-id", "1", "--peers", PEERS, "--peer-listen", "none"], {}, None,
     "--peer-listen none: a node of a cluster needs its peer listener"),
    (["--override", "nonsense"], {}, None, "invalid --override 'nonsense': expected NAME=VALUE"),
    (["--log-level", "loud"], {}, None, "invalid --log-level 'loud': choose debug, info, warning, error or critical"),
    (["--no-such-flag"], {}, None, "Unrecognized option: --no-such-flag"),
    (["--fsync"], {}, None, "argument --fsync: expected one argument"),
    ([], {}, "fsink = 1\n", "invalid --config {file}: unknown setting 'fsink'"),
    ([], {}, "fsync = \n", "invalid --config {file}: "),
    ([], {}, 'max-data-bytes = "x"\n', "invalid max-data-bytes in {file} 'x': expected a whole number"),
    ([], {}, "max-data-bytes = true\n", "invalid max-data-bytes in {file} True: expected a whole number"),
])
def test_bad_settings_are_refused_with_one_line(tmp_path, argv, env, file_text, message):
    f = tmp_path / "node.toml"
    if file_text is not None:
        f.write_text(file_text)
        argv = [*argv, "--config", str(f)]
    with pytest.raises(UsageError) as e:
        load(argv, env)
    assert str(e.value).startswith(message.format(file=f))
    assert "\n" not in str(e.value) and e.value.exit_code == ExitCode.USAGE


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(UsageError, match=f"cannot read --config {tmp_path / 'nope.toml'}: No such file"):
        load(["--config", str(tmp_path / "nope.toml")], {})


def test_data_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config("--data-dir", "rel").data_dir == Path(tmp_path / "rel").resolve()


def test_a_cluster_node_refuses_fsync_batch_or_off_unless_told_it_is_unsafe():
    for mode in ("batch", "off"):
        with pytest.raises(UsageError, match=f"--fsync {mode} in a cluster: .* give --unsafe-fsync"):
            config("--node-id", "2", "--peers", PEERS, "--fsync", mode)
        assert config("--node-id", "2", "--peers", PEERS, "--fsync", mode, "--unsafe-fsync").fsync == mode
        assert config("--fsync", mode).fsync == mode                      # a node alone: its own choice


def test_the_cluster_secret_file_is_read_and_checked(tmp_path):
    assert config().cluster_secret() is None
    good = tmp_path / "secret"
    good.write_text("0123456789abcdef0123\n")
    assert config("--cluster-secret-file", str(good)).cluster_secret() == b"0123456789abcdef0123"
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(UsageError, match="the secret must be at least 16 bytes"):
        config("--cluster-secret-file", str(short)).cluster_secret()
    with pytest.raises(UsageError, match="cannot read --cluster-secret-file .*missing: No such file"):
        config("--cluster-secret-file", str(tmp_path / "missing")).cluster_secret()
