"""What abandoned requests cost the server: N requests awaited, then N abandoned.

Starts `vae-serve` on a free port (the shipped model unless --model), sends N requests of
GET /sample?n=256 at once, each whole on its own raw socket, and reads every response; then
sends the same N requests and closes each socket --close-after-ms after sending it. For each
phase it reports the server's CPU time (utime + stime from /proc/PID/stat) and the rows it
decoded (vae_images_decoded_total), and for the abandoned one the 499s and
vae_failures_total{reason="abandoned"}; then, for scale, N awaited GET /healthz (what
receiving and answering a request costs at all). Goal: abandoned <= 10 % of the awaited work.

    OMP_NUM_THREADS=1 python scripts/abandon.py --requests 100 --close-after-ms 50
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.readiness import free_port, wait_ready  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def metrics(url: str) -> dict[str, float]:
    """Every sample of /metrics, by series name with labels."""
    samples = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


DECODED = "vae_images_decoded_total"
ABANDONED = 'vae_failures_total{reason="abandoned"}'
ANSWERED_499 = 'vae_http_requests_total{method="GET",protocol="rest",route="/sample",status="499"}'


def request_bytes(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


def send_all(port: int, path: str, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request_bytes(path, port))
        sockets.append(s)
    return sockets


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    s.close()
    return b"".join(chunks)


def settled(url: str, timeout: float = 120) -> tuple[dict[str, float], int]:
    """/metrics once no model call is queued or running and it is the only request, and the
    number of scrapes that took (polled every 0.2 s: each costs the server some CPU)."""
    deadline = time.monotonic() + timeout
    scrapes = 0
    while time.monotonic() < deadline:
        samples = metrics(url)
        scrapes += 1
        if samples["vae_queue_depth"] == 0 and samples["vae_requests_in_flight"] <= 1:
            return samples, scrapes
        time.sleep(0.2)
    raise SystemExit("the server did not settle")


def scrape_cpu(url: str, pid: int, count: int = 20) -> float:
    """The server's CPU seconds per /metrics scrape."""
    cpu = cpu_seconds(pid)
    for _ in range(count):
        metrics(url)
    return (cpu_seconds(pid) - cpu) / count


def phase(url, pid, port, path, count, close_after_s, per_scrape):
    """(server CPU seconds net of our /metrics scrapes, /metrics deltas, wall seconds) of
    `count` requests, awaited (close_after_s None) or closed after close_after_s."""
    before, cpu = metrics(url), cpu_seconds(pid)
    started = time.perf_counter()
    sockets = send_all(port, path, count)
    if close_after_s is None:
        statuses = [read_all(s).split(b" ", 2)[1] for s in sockets]
        assert statuses == [b"200"] * count, set(statuses)
    else:
        time.sleep(close_after_s)
        for s in sockets:
            s.close()
    after, scrapes = settled(url)
    elapsed = time.perf_counter() - started
    deltas = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    return cpu_seconds(pid) - cpu - scrapes * per_scrape, deltas, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="N (default 100)")
    parser.add_argument("--n", type=int, default=256, help="images per /sample (default 256)")
    parser.add_argument("--close-after-ms", type=float, default=50, help="default 50")
    parser.add_argument("--model", default=None, help="VAE_MODEL_PATH (default: shipped)")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VAE_PORT": str(port), "VAE_LOG_LEVEL": "WARNING"}
    if args.model:
        env["VAE_MODEL_PATH"] = args.model
    server = subprocess.Popen([sys.executable, "-m", "app.cli"], cwd=ROOT, env=env)
    try:
        wait_ready(url, server)
        path = f"/sample?n={args.n}"
        phase(url, server.pid, port, path, 4, None, 0)  # warm-up
        per_scrape = scrape_cpu(url, server.pid)
        awaited = phase(url, server.pid, port, path, args.requests, None, per_scrape)
        close_after_s = args.close_after_ms / 1000
        gone = phase(url, server.pid, port, path, args.requests, close_after_s, per_scrape)
        floor = phase(url, server.pid, port, "/healthz", args.requests, None, per_scrape)
        ready = httpx.get(f"{url}/readyz", timeout=10).status_code
    finally:
        server.terminate()
        server.wait(timeout=30)
    requested = args.requests * args.n
    print(f"{args.requests} x GET {path}, closed {args.close_after_ms:g} ms after sending")
    print(f"server CPU per /metrics scrape {per_scrape * 1000:.1f} ms (subtracted)")
    print("phase      server CPU s   rows decoded   wall s")
    for name, (cpu, deltas, wall) in (("awaited", awaited), ("abandoned", gone)):
        print(f"{name:<10} {cpu:12.2f}   {deltas[DECODED]:8.0f} / {requested}   {wall:6.2f}")
    print(
        f"abandoned / awaited: CPU {gone[0] / awaited[0]:.1%}, "
        f"rows {gone[1][DECODED] / awaited[1][DECODED]:.1%}; "
        f"counted abandoned {gone[1].get(ABANDONED, 0):.0f}, "
        f"access status 499 {gone[1].get(ANSWERED_499, 0):.0f}; /readyz {ready}"
    )
    print(
        f"for scale: {args.requests} x GET /healthz awaited took {floor[0]:.2f} CPU s "
        f"({floor[0] / awaited[0]:.1%} of the awaited samples): receiving a request at all"
    )


if __name__ == "__main__":
    main()
