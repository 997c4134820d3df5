"""Four-letter words back to back: the same word on a new connection to each server. Counters,
zxids, node counts, latencies and connection lists are the server's own state, so what is compared
is the answer's structure (its lines' keys, in order) and the formats clients parse: kazoo's
`server_version()` reads `zookeeper.version=` from `envi`; monitoring reads `srvr`.
"""
from __future__ import annotations

import re

import pytest
from kazoo.client import KazooClient

from benchmarks.bench_servers import four_letter

FULL_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)-(\S+), built on (\d{4}-\d\d-\d\d \d\d:\d\d) UTC$")
ANY_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)-(\S+), built on (.+)$")
COMMON_ENVI = ("zookeeper.version", "host.name", "os.name", "os.arch", "os.version", "user.name", "user.home",
               "user.dir")


def word(address: str, w: bytes) -> str:
    return four_letter(int(address.rsplit(":", 1)[1]), w, timeout=10).decode()


def answers(addresses, w: bytes) -> dict[str, str]:
    return {name: word(address, w) for name, address in addresses.items()}


def keys(text: str) -> list[str]:
    return [line.split(":", 1)[0] if ":" in line else line for line in text.splitlines()]


def version_of(srvr: str) -> str:
    return srvr.splitlines()[0].removeprefix("Zookeeper version: ")


def test_ruok_isro_and_a_word_that_is_no_word(addresses):
    for w in (b"ruok", b"isro", b"xxxx"):
        got = answers(addresses, w)
        assert got["dcli"] == got["zookeeper"], w


@pytest.mark.parametrize("w", [b"srvr", b"stat"])
def test_srvr_and_stat_have_zookeepers_lines_in_order(addresses, w):
    got = answers(addresses, w)
    # stat's client list has one line per connection: compared on its own below
    strip = [k for k in keys(got["zookeeper"]) if not k.startswith(" /")]
    assert [k for k in keys(got["dcli"]) if not k.startswith(" /")] == strip
    for name, text in got.items():
        assert text.endswith("\n"), name
        assert ANY_VERSION.match(version_of(text)), (name, text)
        assert re.search(r"^Latency min/avg/max: \d+/\d+\.\d+/\d+$", text, re.M), (name, text)
        assert re.search(r"^Zxid: 0x[0-9a-f]+$", text, re.M), (name, text)
        assert "\nMode: standalone\n" in text, (name, text)


def test_stat_lists_the_connections(addresses):
    got = answers(addresses, b"stat")
    conns = {name: [line for line in text.splitlines() if line.startswith(" /")] for name, text in got.items()}
    pattern = re.compile(r"^ /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+.*\)$")
    assert conns["zookeeper"] and all(pattern.match(c) for c in conns["zookeeper"])
    assert conns["dcli"] and all(pattern.match(c) for c in conns["dcli"]), conns


def test_envi_zookeeper_version_is_what_kazoo_parses(addresses, connect):
    for name, address in addresses.items():
        text = word(address, b"envi")
        assert text.startswith("Environment:\nzookeeper.version="), (name, text)
        line = next(x for x in text.splitlines() if x.startswith("zookeeper.version="))
        assert ANY_VERSION.match(line.removeprefix("zookeeper.version=")), (name, line)
        assert connect(address).server_version()[:2] == (3, 8), name


def test_the_version_string_has_a_build_date(addresses):
    for name, text in answers(addresses, b"srvr").items():
        assert FULL_VERSION.match(version_of(text)), (name, version_of(text))


def test_envi_has_zookeepers_host_and_os_lines(addresses):
    got = answers(addresses, b"envi")
    envi = {name: dict(line.split("=", 1) for line in text.splitlines()[1:] if "=" in line)
            for name, text in got.items()}
    assert [k for k in COMMON_ENVI if k in envi["dcli"]] == list(COMMON_ENVI)
    for k in ("os.name", "os.arch", "os.version"):
        assert envi["dcli"][k] == envi["zookeeper"][k], k
