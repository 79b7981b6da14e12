"""uvicorn's HTTP protocol (httptools), with TCP_NODELAY on every connection.

asyncio's own event loop sets TCP_NODELAY only on sockets whose `proto` is IPPROTO_TCP, and
the socket uvicorn binds for several workers has proto 0: with VAE_WORKERS=2 every
connection kept Nagle's algorithm, so a response written as headers, then body, waited for
the client's delayed ACK, 48 ms per request at c=1 (21 req/s, against 478 under uvloop,
which always sets it). vae-serve serves with this protocol on either loop.
"""

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP transport (other transports are left alone)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
