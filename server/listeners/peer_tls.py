"""PeerTLS: mutual TLS on the peer listener, from the node's certificate files (etcd's peer flags).

Each node presents its certificate (`--peer-cert-file`, `--peer-key-file`) both when it dials a
peer and when it accepts one, and checks the other side's against the cluster's CA
(`--peer-trusted-ca-file`): the dialling side always (and the certificate must name the host it
dials, as a client checks a server), the accepting side when `--peer-client-cert-auth` is on,
which it is by default whenever the peer listener has certificates (as in etcd, whose listener
requires a verified certificate from the other side as soon as it has a trusted CA file).
Without a certificate signed by that CA a connection ends in the TLS handshake, before any
frame is read. TLS 1.2 at least.

    tls = PeerTLS(cert, key, ca)
    accept, dial = tls.contexts()                 # ssl.SSLError / OSError if a file is bad
    stream = await open_frame_stream(host, port, tls=dial)          # the host name is checked
    await stream.start_tls(accept, server_side=True)                 # on an accepted connection

`describe(e)` turns what a failed handshake raises into a line for the log.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PeerTLS:
    cert_file: Path
    key_file: Path
    trusted_ca_file: Path
    client_cert_auth: bool = True

    def accept_context(self) -> ssl.SSLContext:
        """For connections this node accepts: its certificate, and the dialler's checked."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.trusted_ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        context.verify_mode = ssl.CERT_REQUIRED if self.client_cert_auth else ssl.CERT_NONE
        return context

    def dial_context(self) -> ssl.SSLContext:
        """For connections this node dials: the listener's certificate checked (host name too),
        and this node's own presented."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.trusted_ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def contexts(self) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        """(accept, dial): both built once, at start, so that a bad file stops the node there."""
        return self.accept_context(), self.dial_context()


def describe(e: BaseException) -> str:
    """A failed TLS handshake, as one line that says what is likely wrong."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS: its certificate is not accepted ({e.verify_message or e.reason}): not signed by this cluster's CA?"
    if isinstance(e, ssl.SSLError):
        reason = e.reason or str(e)
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "UNEXPECTED_MESSAGE",
                      "RECORD_LAYER_FAILURE"):
            return f"TLS: it does not speak TLS ({reason}): a peer without certificates?"
        if reason.startswith(("TLSV1_ALERT", "SSLV3_ALERT")):
            return f"TLS: the other side ended the handshake ({reason}): it does not trust this node's certificate?"
        if "CERTIFICATE" in reason:
            return f"TLS: certificate refused ({reason}): not signed by this cluster's CA?"
        return f"TLS handshake failed ({reason})"
    return str(e) or type(e).__name__
