"""Where a c=128 tail comes from: one closed-loop run of wrk and one of a second load
generator (asyncio streams, one connection per task) against the same server, each with
the kernel's TCP retransmission count over the run (nstat TcpRetransSegs).

    taskset -c 0 vae-serve --port 8765 &          # or VAE_LOOP=uvloop vae-serve ...
    taskset -c 1 python -m scripts.bench.tail http://127.0.0.1:8765/sample?n=1 -c 128

A tail that only wrk sees, with retransmissions, is in the TCP path, not in the server's
handling (compare with the server's own durations in its access log).
"""

import argparse
import asyncio
import re
import subprocess
import time
from urllib.parse import urlsplit

from scripts.bench.loadgen import run_wrk
from scripts.bench.stats import latency_summary

TIMEOUT_S = 10  # a request slower than this counts as an error, as in the benchmark


def difference(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def retransmissions() -> int | None:
    """The kernel's TcpRetransSegs counter (nstat -az), or None without nstat."""
    try:
        out = subprocess.run(["nstat", "-az", "TcpRetransSegs"], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    found = re.search(r"TcpRetransSegs\s+(\d+)", out.stdout)
    return int(found.group(1)) if found else None


def line(name: str, rps: float, figures: dict, retrans: int | None) -> str:
    """One run as a line; `figures` as stats.latency_summary or loadgen.run_wrk give them."""
    p50, p99, cdf = figures["p50_ms"], figures["p99_ms"], figures["cdf_ms"]  # cdf[-2]: 99.9
    # (not cdf[-1]: wrk reports 0 for its 100th percentile)
    if p50 is None:
        return f"{name}: no request finished"
    return (
        f"{name:8} {rps:8.1f} req/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms "
        f"(p99/p50 {p99 / p50:.2f})  p99.9 {cdf[-2]:7.1f} ms  TCP retransmissions {retrans}"
    )


def summary(name: str, latencies_ms: list[float], seconds: float, retrans: int | None) -> str:
    return line(name, len(latencies_ms) / seconds, latency_summary(latencies_ms), retrans)


async def one_connection(host: str, port: int, request: bytes, stop: float, out: list) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < stop:
        sent = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        out.append((time.perf_counter() - sent) * 1000)
    writer.close()


def asyncio_run(url: str, connections: int, seconds: float) -> list[float]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    latencies: list[float] = []

    async def main() -> None:
        stop = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                one_connection(parts.hostname, parts.port or 80, request, stop, latencies)
                for _ in range(connections)
            )
        )

    asyncio.run(main())
    return latencies


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url", help="a GET URL, e.g. http://127.0.0.1:8765/sample?n=1")
    p.add_argument("-c", "--connections", type=int, default=128)
    p.add_argument("-d", "--duration", type=int, default=8, help="seconds per run")
    args = p.parse_args(argv)
    before = retransmissions()
    wrk = run_wrk(args.url, "GET", {}, None, args.connections, args.duration, TIMEOUT_S, None)
    print(line("wrk", wrk["rps"], wrk, difference(before, retransmissions())))
    before = retransmissions()
    latencies = asyncio_run(args.url, args.connections, args.duration)
    print(summary("asyncio", latencies, args.duration, difference(before, retransmissions())))


if __name__ == "__main__":
    main()
