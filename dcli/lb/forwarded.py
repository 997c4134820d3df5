"""What a backend is told about a request's client: the request's headers as they are sent on.

Hop-by-hop headers and the client's framing go (h11 frames the body again). X-Forwarded-For,
X-Forwarded-Proto and X-Forwarded-Host say who the client is, so a client must not be able to
write them itself: from a client that is not a trusted proxy (`--trusted-proxy CIDR`, as nginx's
set_real_ip_from or Envoy's xff_num_trusted_hops) they are replaced, and Forwarded and X-Real-IP
dropped; from a trusted proxy they are kept and its address is appended to X-Forwarded-For.

    headers = backend_headers(request, "203.0.113.7", trusted=False, framing=[(b"content-length", b"5")])
"""
from __future__ import annotations

import h11

HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
              b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"}
FRAMING = {b"content-length", b"transfer-encoding"}
CLIENT_WRITTEN = {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-real-ip"}


def backend_headers(request: h11.Request, client_ip: str, trusted: bool,
                    framing: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client's headers as the backend gets them, ending with `framing` (Content-Length or
    Transfer-Encoding, as the body will be sent)."""
    out, forwarded_for = [], []
    host = proto = forwarded_host = None
    for name, value in request.headers:
        if name in HOP_BY_HOP or name in FRAMING:
            continue
        if name == b"host":
            host = value
        if name in CLIENT_WRITTEN:
            if not trusted:
                continue
            if name == b"x-forwarded-for":
                forwarded_for.append(value)
                continue
            if name == b"x-forwarded-proto":
                proto = value
                continue
            if name == b"x-forwarded-host":
                forwarded_host = value
                continue
        out.append((name, value))
    if host is None:
        host = b"backend"
        out.append((b"host", host))
    forwarded_for.append(client_ip.encode())
    out.append((b"x-forwarded-for", b", ".join(forwarded_for)))
    out.append((b"x-forwarded-proto", proto or b"http"))
    out.append((b"x-forwarded-host", forwarded_host or host))
    return out + framing


def response_headers(headers) -> list[tuple[bytes, bytes]]:
    """The backend's headers less hop-by-hop ones (h11 frames the body for the client)."""
    return [(n, v) for n, v in headers if n not in HOP_BY_HOP]
