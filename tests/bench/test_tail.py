"""The second load generator of scripts/bench/tail.py, against a tiny HTTP server."""

import socketserver
import threading

from scripts.bench.tail import asyncio_run, retransmissions, summary


class KeepAlive(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while self.rfile.readline():  # request line, then headers up to the blank line
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_asyncio_load_generator_measures_every_request():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), KeepAlive)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        latencies = asyncio_run(f"http://127.0.0.1:{port}/sample?n=1", 4, 0.5)
    finally:
        server.shutdown()
    assert len(latencies) > 20 and all(0 < ms < 1000 for ms in latencies)
    line = summary("asyncio", latencies, 0.5, 0)
    assert "p99/p50" in line and "TCP retransmissions 0" in line


def test_summary_of_nothing_says_so_and_the_counter_is_a_count():
    assert summary("wrk", [], 1.0, None) == "wrk: no request finished"
    count = retransmissions()
    assert count is None or count >= 0
