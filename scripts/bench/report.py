"""Results out: JSON, CSV, a Markdown report with the targets, and two plots."""

import csv
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scripts.bench.stats import CDF_PERCENTILES  # noqa: E402

TARGET_C = 32
CSV_FIELDS = (
    "system",
    "workload",
    "concurrency",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "errors",
    "requests",
    "cpu_percent",
    "client_cpu_percent",
    "rss_mib",
    "max_process_rss_mib",
    "repeats",
)


class Figures:
    """Look-ups into the points of one run."""

    def __init__(self, results: dict) -> None:
        self.results = results
        self.points = {(p["system"], p["workload"], p["concurrency"]): p for p in results["points"]}
        self.concurrency = sorted({p["concurrency"] for p in results["points"]})
        self.systems = list(dict.fromkeys(p["system"] for p in results["points"]))
        self.workloads = list(dict.fromkeys(p["workload"] for p in results["points"]))
        near = [c for c in self.concurrency if c <= TARGET_C] or self.concurrency or [TARGET_C]
        self.target_c = max(near)  # 32 in a full run; the largest below it in a quick one

    def get(self, system: str, workload: str, key: str, c: int | None = None) -> float | None:
        point = self.points.get((system, workload, c or self.target_c))
        return point.get(key) if point else None

    def ratio(self, a: str, b: str, workload: str, key: str = "rps", c: int | None = None):
        x, y = self.get(a, workload, key, c), self.get(b, workload, key, c)
        return round(x / y, 2) if x is not None and y else None

    def ratio_of(self, a: str, b: str, system: str = "vae-serve") -> float | None:
        """req/s of workload a / workload b on one system (same rows per request)."""
        x, y = self.get(system, a, "rps"), self.get(system, b, "rps")
        return round(x / y, 2) if x is not None and y else None


def target(name: str, value: float | None, goal: str, unit: str, c: int) -> dict:
    """One target: `goal` is '>= 3' or '<= 20'; met is None when the value was not measured."""
    op, limit = goal.split()
    met = None if value is None else value >= float(limit) if op == ">=" else value <= float(limit)
    return {"target": name, "goal": goal, "unit": unit, "value": value, "c": c, "met": met}


def targets(f: Figures) -> list[dict]:
    """The issue's targets, each with the figure this run reached."""
    starts = f.results["cold_start_s"].get("vae-serve")
    rss = [
        p["max_process_rss_mib"]
        for p in f.results["points"]
        if p["system"].startswith("vae-serve") and p.get("max_process_rss_mib")
    ]
    c = f.target_c
    return [
        target(
            "sample n=16 req/s, vae-serve / TorchServe",
            f.ratio("vae-serve", "torchserve", "sample16"),
            ">= 3",
            "x",
            c,
        ),
        target(
            "sample n=16 req/s, vae-serve / in-process limit",
            f.ratio("vae-serve", "inprocess", "sample16"),
            ">= 0.5",
            "x",
            c,
        ),
        target(
            "encode 28x28 p99, vae-serve",
            f.get("vae-serve", "encode28", "p99_ms"),
            "<= 20",
            "ms",
            c,
        ),
        target(
            "encode 28x28 req/s, vae-serve / TorchServe",
            f.ratio("vae-serve", "torchserve", "encode28"),
            ">= 2",
            "x",
            c,
        ),
        target(
            "v2 binary infer of 1 digit req/s / POST /encode (28x28 PNG)",
            f.ratio_of("v2_encode1_bin", "encode28"),
            ">= 0.9",
            "x",
            c,
        ),
        target(
            "v2 binary infer of 64 digits images/s / POST /encode of 64 PNGs",
            f.ratio_of("v2_encode64_bin", "encode64"),
            ">= 5",
            "x",
            c,
        ),
        target(
            "cold start, vae-serve (median)",
            round(statistics.median(starts), 2) if starts else None,
            "<= 2",
            "s",
            c,
        ),
        target(
            "RSS per worker, vae-serve (largest process, peak)",
            max(rss) if rss else None,
            "<= 400",
            "MiB",
            c,
        ),
    ]


def cell(value: object) -> str:
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def markdown(results: dict) -> str:
    f = Figures(results)
    meta = results["meta"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {meta['started']} to {meta.get('finished', '?')} on {meta['cpus']} CPUs, "
        f"model `{meta['model']}`, torch {meta['torch']}; server on CPUs "
        f"{meta['server_cpus'] or 'all'}, wrk on CPUs {meta['client_cpus'] or 'all'}. "
        f"Medians of {meta['plan']['repeats']} repeats of {meta['plan']['duration_s']} s. "
        f"Server logs: `{meta.get('workdir', '?')}`.",
        "",
        f"## Targets (c={f.target_c})",
        "",
        "| target | goal | reached | met |",
        "|---|---|---|---|",
    ]
    for t in targets(f):
        met = "not measured" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['goal']} {t['unit']} | {cell(t['value'])} | {met} |")
    for workload in f.workloads:
        lines += ["", f"## {workload}: req/s (p99 ms) by concurrency", ""]
        lines += ["| system | " + " | ".join(f"c={c}" for c in f.concurrency) + " |"]
        lines += ["|---|" + "---|" * len(f.concurrency)]
        for system in f.systems:
            cells = [
                f"{cell(f.get(system, workload, 'rps', c))} "
                f"({cell(f.get(system, workload, 'p99_ms', c))})"
                for c in f.concurrency
            ]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if "vae-serve-nobatch" in f.systems or "vae-serve-2w" in f.systems:
        lines += ["", "## Batching on/off and 2/1 workers (ratios of vae-serve variants)", ""]
        lines += ["| workload | c | req/s on/off | p99 on/off | req/s 2w/1w | p99 2w/1w |"]
        lines += ["|---|---|---|---|---|---|"]
        for workload in f.workloads:
            for c in f.concurrency:
                figures = [
                    f.ratio("vae-serve", "vae-serve-nobatch", workload, "rps", c),
                    f.ratio("vae-serve", "vae-serve-nobatch", workload, "p99_ms", c),
                    f.ratio("vae-serve-2w", "vae-serve", workload, "rps", c),
                    f.ratio("vae-serve-2w", "vae-serve", workload, "p99_ms", c),
                ]
                lines.append(f"| {workload} | {c} | " + " | ".join(map(cell, figures)) + " |")
    lines += ["", "## Cold start, memory, CPU", ""]
    lines += [
        "| system | cold start s (median; runs) | peak RSS MiB total / largest process "
        f"| server CPU % at c={f.target_c} (first workload) |",
        "|---|---|---|---|",
    ]
    for system in f.systems:
        starts = results["cold_start_s"].get(system)
        own = [p for p in results["points"] if p["system"] == system]
        rss = max((p.get("rss_mib") or 0 for p in own), default=0)
        largest = max((p.get("max_process_rss_mib") or 0 for p in own), default=0)
        start = f"{statistics.median(starts):.2f}; {len(starts)}" if starts else "n/a"
        memory = f"{rss:g} / {largest:g}" if rss else "n/a"
        cpu = cell(f.get(system, f.workloads[0], "cpu_percent")) if f.workloads else "n/a"
        lines.append(f"| {system} | {start} | {memory} | {cpu} |")
    for system, error in results["failures"].items():
        lines += ["", f"**{system} failed**: `{error.splitlines()[0]}` (full text in results.json)"]
    return "\n".join(lines) + "\n"


def plots(results: dict, out: Path) -> None:
    """throughput.png (req/s vs concurrency) and latency_cdf.png (at the target concurrency)."""
    f = Figures(results)
    width = 4 * max(1, len(f.workloads))
    fig, axes = plt.subplots(1, len(f.workloads), figsize=(width, 3.6), squeeze=False)
    for ax, workload in zip(axes[0], f.workloads, strict=True):
        for system in f.systems:
            xs = [c for c in f.concurrency if f.get(system, workload, "rps", c) is not None]
            ax.plot(xs, [f.get(system, workload, "rps", c) for c in xs], marker="o", label=system)
        ax.set(title=workload, xscale="log", yscale="log", xlabel="concurrency", ylabel="req/s")
        ax.set_xticks(f.concurrency, [str(c) for c in f.concurrency])
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    fig, axes = plt.subplots(1, len(f.workloads), figsize=(width, 3.6), squeeze=False)
    for ax, workload in zip(axes[0], f.workloads, strict=True):
        for system in f.systems:
            cdf = f.get(system, workload, "cdf_ms")
            if cdf:
                ax.plot(cdf, CDF_PERCENTILES, label=system)
        ax.set(title=f"{workload}, c={f.target_c}", xscale="log", xlabel="latency (ms)")
        ax.set_ylabel("percentile")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "latency_cdf.png", dpi=110)
    plt.close("all")


def write_all(results: dict, out: Path) -> str:
    """results.json, results.csv, report.md, the plots; returns the Markdown."""
    results["targets"] = targets(Figures(results))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    with (out / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results["points"])
    text = markdown(results)
    (out / "report.md").write_text(text)
    if results["points"]:
        plots(results, out)
    return text
