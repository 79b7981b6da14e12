"""What slow uploads cost the server's memory: N clients each send most of a large multipart
body, pause, then finish.

Starts `vae-serve` on a free port (the shipped model unless --model; VAE_MAX_INFLIGHT_BYTES
from --budget-mib, else the server's default), warms it up with two uploads, then opens N
raw sockets, one after the other. Each sends its headers with `Expect: 100-continue` (as
curl does over 1 MB): an admitted one gets `100 Continue` and sends all of its body but the
last --tail-bytes, then pauses; a refused one gets its 503 `memory_budget` at once. Once the
server has every byte sent so far (nothing left unacknowledged in any socket's send queue),
it checks GET /readyz, reads the budget's gauge, then every client finishes and reads its
answer. Reports the server's RSS (VmRSS of /proc/PID/status) at ready, after the warm-up
(the baseline), its peak during the burst (VmHWM, reset before it) and after the burst, and
the slowest GET /healthz (one every 5 ms) in between, while the server trims its heap
(--no-trim: a server without app.memory's malloc_trim, to compare).

    OMP_NUM_THREADS=1 python scripts/slow_uploads.py --clients 60 --mib 9
"""

import argparse
import fcntl
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.memory import TRIM_EVERY_S  # noqa: E402
from scripts.readiness import free_port, http_status, wait_ready  # noqa: E402

SIOCOUTQ = 0x5411  # bytes a TCP socket has sent that its peer has not acknowledged (Linux)
BOUNDARY = "slowuploadboundary"


def noise_png(nbytes: int, seed: int = 0) -> bytes:
    """An RGB PNG of about `nbytes`: light random pixels (they hardly compress) and a dark
    bar, so the digit finder has a mark to find (the answer is a 200)."""

    def png(side: int) -> bytes:
        pixels = np.random.default_rng(seed).integers(200, 256, (side, side, 3), dtype=np.uint8)
        pixels[side // 4 : 3 * side // 4, side // 2 - side // 16 : side // 2 + side // 16] = 0
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
        return out.getvalue()

    side = max(32, int((nbytes / 3) ** 0.5))
    first = png(side)  # then sized again by what this one compressed to
    return png(max(32, int(side * (nbytes / len(first)) ** 0.5)))


def multipart(png: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of process `pid`, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def unacknowledged(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response on a `Connection: close` socket (status, headers, body); an interim
    100 is returned as it is, without waiting for more."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines[0] else 0
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if status == 100:
        return status, headers, rest
    while chunk := sock.recv(65536):
        rest += chunk
    return status, headers, rest


@dataclass
class Upload:
    """One client: admitted (it got 100 Continue) or answered at once."""

    sock: socket.socket
    body: bytes
    sent: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    answer: bytes = b""

    @property
    def admitted(self) -> bool:
        return self.status == 100

    def finish(self) -> None:
        """Send the rest of the body (if admitted) and read the final answer."""
        if self.admitted:
            self.sock.sendall(self.body[self.sent :])
            self.status, self.headers, self.answer = read_response(self.sock)
        self.sock.close()


def start_upload(
    port: int, path: str, body: bytes, tail: int, content_type: str | None = None
) -> Upload:
    """Headers with Expect: 100-continue; admitted: all of the body but `tail` bytes. The
    body is multipart, unless `content_type` names another (image/png: a raw body)."""
    content_type = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
    )
    upload = Upload(sock, body)
    upload.status, upload.headers, upload.answer = read_response(sock)
    if upload.admitted:
        upload.sent = len(body) - tail
        sock.sendall(body[: upload.sent])
    return upload


def wait_until(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def burst(
    port: int, pid: int, path: str, body: bytes, clients: int, tail: int, content_type: str
) -> dict:
    """The slow uploads: their statuses, /readyz and the gauge while paused, and RSS."""
    baseline = rss(pid)["VmRSS"]
    reset_peak(pid)
    uploads = [start_upload(port, path, body, tail, content_type) for _ in range(clients)]
    admitted = [u for u in uploads if u.admitted]
    wait_until(lambda: all(unacknowledged(u.sock) == 0 for u in admitted), what="the bodies")
    paused = {
        "rss": rss(pid)["VmRSS"],
        "readyz": http_status(f"http://127.0.0.1:{port}/readyz"),
        "inflight_bytes": metric(port, "vae_inflight_bytes"),
    }
    for upload in uploads:
        upload.finish()
    peak = rss(pid)["VmHWM"]
    probe = HealthProbe(port)  # the event loop's stalls while the server trims its heap
    wait_until(lambda: metric(port, "vae_inflight_bytes") == 0, what="the budget to empty")
    time.sleep(TRIM_EVERY_S + 0.5)  # the server trims its heap at most once a second
    return {
        "stall": probe.stop(),
        "uploads": uploads,
        "baseline": baseline,
        "paused": paused,
        "peak": peak,
        "after": rss(pid)["VmRSS"],
    }


class HealthProbe:
    """GET /healthz every 5 ms on one connection, on a thread: the slowest answer."""

    def __init__(self, port: int) -> None:
        self.url, self.slowest, self.running = f"http://127.0.0.1:{port}/healthz", 0.0, True
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        while self.running:
            started = time.perf_counter()
            urllib.request.urlopen(self.url, timeout=10).read()
            self.slowest = max(self.slowest, time.perf_counter() - started)
            time.sleep(0.005)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return self.slowest


def describe(result: dict) -> str:
    mib = 2**-20
    statuses: dict[int, int] = {}
    for upload in result["uploads"]:
        statuses[upload.status] = statuses.get(upload.status, 0) + 1
    refused = [u for u in result["uploads"] if u.status == 503]
    codes = {json.loads(u.answer).get("error") for u in refused}
    retry = {u.headers.get("retry-after") for u in refused}
    paused = result["paused"]
    return "\n".join(
        [
            f"statuses: {dict(sorted(statuses.items()))}; 503 codes {codes or '-'}, "
            f"Retry-After {retry or '-'}",
            f"while paused: /readyz {paused['readyz']}, vae_inflight_bytes "
            f"{paused['inflight_bytes'] * mib:.1f} MiB, RSS {paused['rss'] * mib:.0f} MiB",
            f"RSS baseline {result['baseline'] * mib:.0f} MiB, peak {result['peak'] * mib:.0f} "
            f"MiB, after {result['after'] * mib:.0f} MiB; slowest /healthz after the burst "
            f"{result['stall'] * 1000:.0f} ms",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=60, help="N (default 60)")
    parser.add_argument("--mib", type=float, default=9, help="body size in MiB (default 9)")
    parser.add_argument("--tail-bytes", type=int, default=1024, help="held back (default 1024)")
    parser.add_argument("--budget-mib", type=float, help="VAE_MAX_INFLIGHT_BYTES in MiB")
    parser.add_argument("--rounds", type=int, default=1, help="bursts, one after another")
    parser.add_argument("--path", default="/encode", help="default /encode")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="send image/png bodies: buffered in memory as they come (a multipart file over "
        "1 MiB is spooled to a temporary file: /tmp, a tmpfs in docker-compose.yml)",
    )
    parser.add_argument("--model", default=None, help="VAE_MODEL_PATH (default: shipped)")
    parser.add_argument("--no-trim", action="store_true", help="the server without malloc_trim")
    args = parser.parse_args()
    port = free_port()
    env = {"VAE_LOG_LEVEL": "WARNING", **os.environ, "OMP_NUM_THREADS": "1", "VAE_PORT": str(port)}
    if args.budget_mib:
        env["VAE_MAX_INFLIGHT_BYTES"] = str(int(args.budget_mib * 2**20))
    if args.model:
        env["VAE_MODEL_PATH"] = args.model
    png = noise_png(int(args.mib * 2**20) - 200)
    body, content_type = (png, "image/png") if args.raw else (multipart(png), None)
    command = "from app.cli import main; main([])"
    if args.no_trim:
        command = "import app.memory; app.memory.malloc_trim = None; " + command
    server = subprocess.Popen([sys.executable, "-c", command], cwd=ROOT, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        ready = rss(server.pid)["VmRSS"]
        for _ in range(2):  # warm-up
            start_upload(port, args.path, body, 0, content_type).finish()
        kind = "raw image/png" if args.raw else "multipart"
        print(f"{args.clients} x POST {args.path}, {len(body) / 2**20:.2f} MiB {kind} each")
        budget = env.get("VAE_MAX_INFLIGHT_BYTES", "the default")
        print(f"RSS at ready {ready / 2**20:.0f} MiB; VAE_MAX_INFLIGHT_BYTES {budget}")
        for round_ in range(args.rounds):
            result = burst(
                port, server.pid, args.path, body, args.clients, args.tail_bytes, content_type
            )
            print(f"-- round {round_ + 1}\n{describe(result)}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
