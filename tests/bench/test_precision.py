"""scripts/bench/precision.py runs on the shipped model and reports bounded differences."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_precision_report_on_the_shipped_model():
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench.precision", "--n", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    equal, max_levels = re.search(
        r"([\d.]+) % of pixels equal, max difference (\d+)", done.stdout
    ).groups()
    assert 50 < float(equal) < 100 and 0 < int(max_levels) <= 16
    mu_max = float(re.search(r"\|mu difference\| max ([\d.]+)", done.stdout).group(1))
    assert 0 < mu_max < 0.1
