"""Merging repeats into one point."""

from scripts.bench.stats import median_of_repeats


def repeat(rps: float, p99: float | None) -> dict:
    cdf = [] if p99 is None else [p99] * 99
    return {"rps": rps, "requests": int(rps), "errors": 0, "p99_ms": p99, "cdf_ms": cdf}


def test_a_repeat_without_finished_requests_keeps_every_key():
    merged = median_of_repeats([repeat(0.0, None), repeat(10.0, 90.0), repeat(12.0, 80.0)])
    assert merged["p99_ms"] == 85.0  # the median of the repeats that have one
    assert merged["rps"] == 10.0 and merged["requests"] == 22


def test_no_finished_request_at_all_gives_none_not_a_missing_key():
    merged = median_of_repeats([repeat(0.0, None), repeat(0.0, None)])
    assert merged["p99_ms"] is None and merged["rps"] == 0.0
