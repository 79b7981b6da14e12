"""Latency percentiles and medians over repeats, shared by every measurement."""

import statistics

import numpy as np

CDF_PERCENTILES = (*range(1, 100), 99.5, 99.9, 100)  # the points of a latency CDF


def latency_summary(latencies_ms: list[float]) -> dict:
    """p50/p95/p99 and the CDF points (ms) of a list of latencies."""
    if not latencies_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "cdf_ms": []}
    cdf = np.percentile(np.asarray(latencies_ms), CDF_PERCENTILES).round(3).tolist()
    return {"p50_ms": cdf[49], "p95_ms": cdf[94], "p99_ms": cdf[98], "cdf_ms": cdf}


def median_of_repeats(repeats: list[dict]) -> dict:
    """One point from several repeats: the median of each figure; the CDF of the median run."""
    rps = [r["rps"] for r in repeats]
    middle = repeats[rps.index(statistics.median_low(rps))]
    merged = {"repeats": len(repeats), "cdf_ms": middle["cdf_ms"]}
    for key, value in repeats[0].items():
        # None: a repeat in which no request finished has no percentiles (the others may)
        if key != "cdf_ms" and (value is None or isinstance(value, int | float)):
            values = [r[key] for r in repeats if r.get(key) is not None]
            merged[key] = round(statistics.median(values), 3) if values else None
    merged["errors"] = sum(r["errors"] for r in repeats)  # every error counts, not the median
    merged["requests"] = sum(r["requests"] for r in repeats)
    return merged
