"""TLS for the clients: every channel to a dcli server is opened here.

The files come from `--cacert`, `--cert` and `--key` (every dcli command) or `DCLI_CACERT`,
`DCLI_CERT` and `DCLI_KEY` (etcdctl's names and meaning): with a CA file the channel is TLS and
the server's certificate must be signed by it; with a certificate and key too, the client proves
who it is (the server's `--client-cert-auth`). Without a CA file the channel is plaintext.

    channel = open_channel("127.0.0.1:7181", options)     # TLS when DCLI_CACERT is set

When a connection fails, `explain(address)` looks at what the server speaks (one TCP connection,
an HTTP/2 preface, the first bytes of the answer) so that a plaintext client of a TLS server, or
the other way round, hears that instead of "connection refused" or a timeout.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dcli.wire import errors

ENV = {"cacert": "DCLI_CACERT", "cert": "DCLI_CERT", "key": "DCLI_KEY"}
_SETTINGS = 0x04                 # an HTTP/2 SETTINGS frame's type: a plaintext gRPC server's answer
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass(frozen=True)
class TlsFiles:
    cacert: str = ""
    cert: str = ""
    key: str = ""

    @classmethod
    def from_env(cls) -> TlsFiles:
        return cls(**{name: os.environ.get(var, "") for name, var in ENV.items()})

    @property
    def enabled(self) -> bool:
        return bool(self.cacert)

    def check(self) -> None:
        """UsageError for files that cannot work together."""
        if (self.cert or self.key) and not (self.cert and self.key):
            raise errors.UsageError("--cert and --key go together (DCLI_CERT, DCLI_KEY)")
        if self.cert and not self.cacert:
            raise errors.UsageError("--cert needs --cacert: the server's CA (DCLI_CACERT)")
        for path, flag in ((self.cacert, "--cacert"), (self.cert, "--cert"), (self.key, "--key")):
            if path:
                _read(path, flag)

    def credentials(self):
        import grpc

        self.check()
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.cacert, "--cacert"),
            private_key=_read(self.key, "--key") if self.key else None,
            certificate_chain=_read(self.cert, "--cert") if self.cert else None)


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise errors.UsageError(f"cannot read {flag} {path}: {e.strerror or e}") from None


def open_channel(address: str, options=(), tls: TlsFiles | None = None):
    """A gRPC channel to `address`: TLS with the configured files, else plaintext; logged in
    when the process has credentials (dcli.client.auth)."""
    import grpc

    from dcli.client.auth import wrap

    tls = tls if tls is not None else TlsFiles.from_env()
    if tls.enabled:
        channel = grpc.secure_channel(address, tls.credentials(), options=list(options))
    else:
        channel = grpc.insecure_channel(address, options=list(options))
    return wrap(channel)        # the auth token on every call, when there are credentials


def explain(address: str, tls: TlsFiles | None = None, timeout: float = 2.0) -> str:
    """Why a connection to `address` may have failed for want of (or despite) TLS; "" when the
    server's answer says nothing of the kind. A plaintext client tries a TLS handshake (with no
    checks: only whether the server speaks TLS at all); a TLS client sends HTTP/2's preface,
    which a plaintext gRPC server answers with a SETTINGS frame."""
    import ssl

    tls = tls if tls is not None else TlsFiles.from_env()
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            if not tls.enabled:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                try:
                    with context.wrap_socket(s):
                        return f"the server at {address} speaks TLS: give its CA with --cacert (DCLI_CACERT)"
                except (ssl.SSLError, OSError):
                    return ""
            s.sendall(_PREFACE)
            first = s.recv(9)
    except (OSError, ValueError):
        return ""
    if len(first) >= 4 and first[3] == _SETTINGS:
        return f"the server at {address} does not speak TLS: leave out --cacert (DCLI_CACERT)"
    return ""
