"""Smoke test of the serving benchmark: `python -m scripts.bench --quick` end to end.

Tiny model, in-process limit and vae-serve only, c=1 and 4, 1 s per point. Needs wrk
(.ci/bench-tools.sh installs it).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.bench.config import WORKLOADS
from tests.helpers import require_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    require_tool("wrk", "run .ci/bench-tools.sh")
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--quick", "--out", str(tmp_path / "out")]
        + ["--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {"meta", "points", "cold_start_s", "failures", "targets"} <= results.keys()
    assert results["failures"] == {}
    measured = {(p["system"], p["workload"], p["concurrency"]): p for p in results["points"]}
    for workload in WORKLOADS:
        systems = ("vae-serve",) if workload.vae_serve_only else ("inprocess", "vae-serve")
        for system in systems:
            for c in (1, 4):
                point = measured[(system, workload.name, c)]
                assert point["rps"] > 0, point
                assert point["p99_ms"] > 0, point
                assert {"p50_ms", "p95_ms", "errors", "cpu_percent"} <= point.keys()
    assert all(p["errors"] == 0 for p in results["points"])
    assert results["cold_start_s"]["vae-serve"][0] > 0
    assert measured[("vae-serve", "sample16", 4)]["max_process_rss_mib"] > 0
    for name in ("report.md", "results.csv", "throughput.png", "latency_cdf.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert "| vae-serve |" in (tmp_path / "out" / "report.md").read_text()
