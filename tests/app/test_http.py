"""TCP_NODELAY on connections accepted from a socket bound as uvicorn binds one for workers."""

import asyncio
import socket

from app.http import set_nodelay


def test_nodelay_is_set_even_where_asyncio_leaves_nagle_on():
    async def accept_one() -> tuple[int, int]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as uvicorn's
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        seen: list[int] = []

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                set_nodelay(transport)
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        return seen[0], seen[1]

    before, after = asyncio.run(accept_one())
    assert before == 0  # what the standard event loop left it at
    assert after != 0
