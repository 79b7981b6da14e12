"""The load generator: wrk (C, one thread, closed loop) driven by wrk.lua.

wrk's own CPU use is recorded with each point (from the rusage of the finished child),
so a point where the load generator neared a full core can be told apart.
"""

import json
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

from scripts.bench.stats import CDF_PERCENTILES

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (see .ci/bench-tools.sh)")
    return path


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str,
    method: str,
    headers: dict[str, str],
    body: Path | None,
    connections: int,
    duration_s: int,
    timeout_s: int,
    cpus: str | None,
) -> dict:
    """One closed-loop run: `connections` requests in flight for `duration_s` seconds."""
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        out = Path(tmp) / "summary.json"
        env = {
            **os.environ,
            "BENCH_METHOD": method,
            "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
            "BENCH_BODY": str(body or ""),
            "BENCH_PERCENTILES": ",".join(str(p) for p in CDF_PERCENTILES),
            "BENCH_OUT": str(out),
        }
        command = [wrk_path(), "-t1", f"-c{connections}", f"-d{duration_s}s"]
        command += [f"--timeout={timeout_s}s", "-s", str(SCRIPT), url]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        cpu0 = children_cpu_s()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        raw = json.loads(out.read_text())
    seconds = raw["duration_s"]
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    cdf = raw["cdf_ms"] if raw["requests"] else []
    return {
        "rps": round((raw["requests"] - raw["status"]) / seconds, 1),
        "requests": raw["requests"],
        "errors": errors,
        "timeouts": raw["timeout"],
        "client_cpu_percent": round(100 * (children_cpu_s() - cpu0) / seconds, 1),
        "p50_ms": cdf[49] if cdf else None,
        "p95_ms": cdf[94] if cdf else None,
        "p99_ms": cdf[98] if cdf else None,
        "cdf_ms": cdf,
        "seconds": seconds,
    }
