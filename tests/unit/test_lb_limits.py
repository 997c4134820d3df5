"""The balancer's limits and forwarded headers as pure functions: sizes and CIDRs as the flags
take them, which clients are trusted, the head limits, and the headers a backend gets
(dcli.lb.limits, dcli.lb.forwarded)."""
from __future__ import annotations

import h11
import pytest

from dcli.lb.forwarded import backend_headers
from dcli.lb.limits import Limits, parse_cidr, parse_size
from dcli.wire import errors


@pytest.mark.parametrize("text,size", [("0", 0), ("65536", 65536), ("64k", 65536), ("8M", 8 * 2**20),
                                       ("1g", 2**30)])
def test_sizes_are_written_as_nginx_writes_them(text, size):
    assert parse_size(text, "--flag") == size


@pytest.mark.parametrize("text", ["", "5x", "-1", "1.5m", "k"])
def test_a_bad_size_is_a_usage_error(text):
    with pytest.raises(errors.UsageError, match=f"invalid --flag '{text}'"):
        parse_size(text, "--flag")


def test_trusted_proxies_are_addresses_or_networks():
    limits = Limits(trusted_proxies=(parse_cidr("10.0.0.0/8"), parse_cidr("192.0.2.7"), parse_cidr("::1")))
    assert [limits.trusts(ip) for ip in ("10.1.2.3", "192.0.2.7", "192.0.2.8", "::1", "::ffff:10.0.0.1",
                                         "203.0.113.1", "", "garbage")] == \
        [True, True, False, True, True, False, False, False]
    assert not Limits().trusts("127.0.0.1")
    with pytest.raises(errors.UsageError, match="invalid --trusted-proxy '10.0.0.0/33'"):
        parse_cidr("10.0.0.0/33")


def test_head_limits_count_fields_and_bytes():
    limits = Limits(max_headers=3, max_header_size=100)
    assert limits.head_problem(20, [(b"a", b"1")] * 3) is None
    assert "4 header fields, more than the 3 allowed" in limits.head_problem(20, [(b"a", b"1")] * 4)
    assert "more than the 100 allowed" in limits.head_problem(20, [(b"a", b"v" * 80)])
    assert Limits(client_max_body_size=0).body_too_large(10**12) is False
    assert Limits(client_max_body_size=10).body_too_large(11) is True


def request(*headers: tuple[str, str]) -> h11.Request:
    return h11.Request(method="POST", target="/", headers=[("Host", "shop.example"), *headers])


def names_values(headers) -> dict:
    return {n.decode(): v.decode() for n, v in headers}


def test_an_untrusted_client_cannot_say_who_it_is():
    got = names_values(backend_headers(request(("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
                                               ("X-Forwarded-Host", "evil"), ("Forwarded", "for=6.6.6.6"),
                                               ("X-Real-IP", "6.6.6.6"), ("Connection", "close"),
                                               ("Content-Length", "5"), ("X-Other", "kept")),
                                       "203.0.113.1", trusted=False, framing=[(b"content-length", b"5")]))
    assert got == {"host": "shop.example", "x-other": "kept", "x-forwarded-for": "203.0.113.1",
                   "x-forwarded-proto": "http", "x-forwarded-host": "shop.example", "content-length": "5"}


def test_a_trusted_proxy_keeps_its_headers_and_is_appended():
    got = names_values(backend_headers(request(("X-Forwarded-For", "6.6.6.6, 10.0.0.9"),
                                               ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "front")),
                                       "10.0.0.1", trusted=True, framing=[(b"transfer-encoding", b"chunked")]))
    assert got["x-forwarded-for"] == "6.6.6.6, 10.0.0.9, 10.0.0.1"
    assert (got["x-forwarded-proto"], got["x-forwarded-host"], got["transfer-encoding"]) == \
        ("https", "front", "chunked")
