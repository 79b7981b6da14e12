"""Results out: JSON, CSV, a Markdown report with the targets, and two plots."""

import csv
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scripts.bench.config import WORKLOADS  # noqa: E402
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
        self.compared = [w for w in self.workloads if w in COMPARED]
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


PEERS = ("litserve", "bentoml", "ray-serve")
COMPARED = tuple(w.name for w in WORKLOADS if not w.vae_serve_only)  # run by every system
SUMMARY_ORDER = (  # the columns of the summary table, when measured
    "vae-serve",
    "vae-serve-granian",
    "torchserve",
    "litserve",
    "bentoml",
    "ray-serve",
    "naive-fastapi",
    "vae-serve-nobatch",
    "vae-serve-2w",
    "inprocess",
    "inprocess-batched",
)
LABELS = {
    "vae-serve-granian": "vae-serve on Granian",
    "torchserve": "TorchServe",
    "litserve": "LitServe",
    "bentoml": "BentoML",
    "ray-serve": "Ray Serve",
    "naive-fastapi": "naive FastAPI",
    "vae-serve-nobatch": "vae-serve, batching off",
    "vae-serve-2w": "vae-serve, 2 workers",
    "inprocess": "in-process limit",
    "inprocess-batched": "in-process, batched by c",
}
COLOURS = plt.get_cmap("tab20").colors  # 20: more systems than matplotlib's default 10
WORKLOAD_LABELS = {
    "sample16": "`GET /sample?n=16`",
    "sample1": "`GET /sample?n=1`",
    "encode28": "`POST /encode` 28x28 PNG",
    "encode_photo": "`POST /encode` 640x480 JPEG",
    "reconstruct": "`POST /reconstruct` 28x28 PNG",
}


def target(
    name: str, value: float | None, goal: str, unit: str, c: int | None, workload: str = ""
) -> dict:
    """One target: `goal` is '>= 3' or '<= 20'; met is None when the value was not measured."""
    op, limit = goal.split()
    met = None if value is None else value >= float(limit) if op == ">=" else value <= float(limit)
    return {
        "target": name,
        "workload": workload,
        "goal": goal,
        "unit": unit,
        "value": value,
        "c": c,
        "met": met,
    }


def tail_ratio(f: Figures, system: str, workload: str, c: int) -> float | None:
    p99, p50 = f.get(system, workload, "p99_ms", c), f.get(system, workload, "p50_ms", c)
    return round(p99 / p50, 2) if p99 is not None and p50 else None


def per_core(f: Figures, system: str, workload: str, c: int) -> float | None:
    """req/s per server CPU core: rps / (CPU% / 100)."""
    rps, cpu = f.get(system, workload, "rps", c), f.get(system, workload, "cpu_percent", c)
    return rps / (cpu / 100) if rps and cpu else None


def per_core_ratio(f: Figures, workload: str, c: int) -> float | None:
    """Two workers' req/s per core over one worker's. With 2 cores and the load generator
    sharing them, 2 workers cannot get 2 whole cores here, so their scaling is measured per
    core of CPU they did get: 0.9 means 2 whole cores would give ~1.8x."""
    two, one = per_core(f, "vae-serve-2w", workload, c), per_core(f, "vae-serve", workload, c)
    return round(two / one, 2) if two and one else None


def targets(f: Figures) -> list[dict]:
    """Issue 17's targets (and the earlier ones it did not replace), each with this run's figure.

    Concurrencies the run did not measure give value None ("not measured")."""
    c, out = f.target_c, []
    for w in f.compared:
        out += [
            target("req/s, vae-serve / TorchServe", f.ratio("vae-serve", "torchserve", w),
                   ">= 1.0", "x", c, w),
            target("req/s, vae-serve / TorchServe (c=1)",
                   f.ratio("vae-serve", "torchserve", w, c=1), ">= 5", "x", 1, w),
            target("p99, vae-serve / TorchServe", f.ratio("vae-serve", "torchserve", w, "p99_ms"),
                   "<= 1.0", "x", c, w),
        ]  # fmt: skip
        for peer in PEERS:
            name = f"req/s, vae-serve / {LABELS[peer]}"
            for at in sorted({8, c}):
                out.append(target(name, f.ratio("vae-serve", peer, w, c=at), ">= 1.5", "x", at, w))
        for at in sorted({8, c}):  # a lever, not a target: keep Granian if it wins
            ratio = f.ratio("vae-serve-granian", "vae-serve", w, c=at)
            out.append(target("lever: req/s, Granian / uvicorn", ratio, ">= 1.0", "x", at, w))
        out.append(
            target("p99 / p50, vae-serve (c=128)", tail_ratio(f, "vae-serve", w, 128), "<= 3",
                   "x", 128, w)
        )  # fmt: skip
        out.append(
            target("req/s, 2 workers / 1 worker", f.ratio("vae-serve-2w", "vae-serve", w),
                   ">= 1.8", "x", c, w)
        )  # fmt: skip
        out.append(
            target("req/s per server core, 2 workers / 1 worker", per_core_ratio(f, w, c),
                   ">= 0.9", "x", c, w)
        )  # fmt: skip
    out.append(
        target("sample n=16 req/s, vae-serve / in-process batched",
               f.ratio("vae-serve", "inprocess-batched", "sample16"), ">= 0.75", "x", c, "sample16")
    )  # fmt: skip
    starts = f.results["cold_start_s"].get("vae-serve")
    rss = [
        p["max_process_rss_mib"]
        for p in f.results["points"]
        if p["system"].startswith("vae-serve") and p.get("max_process_rss_mib")
    ]
    out += [
        target("encode 28x28 p99, vae-serve", f.get("vae-serve", "encode28", "p99_ms"), "<= 20",
               "ms", c, "encode28"),
        target("v2 binary infer of 1 digit req/s / POST /encode (28x28 PNG)",
               f.ratio_of("v2_encode1_bin", "encode28"), ">= 0.9", "x", c),
        target("v2 binary infer of 64 digits images/s / POST /encode of 64 PNGs",
               f.ratio_of("v2_encode64_bin", "encode64"), ">= 5", "x", c),
        target("cold start, vae-serve (median)",
               round(statistics.median(starts), 2) if starts else None, "<= 2", "s", None),
        target("RSS per worker, vae-serve (largest process, peak)", max(rss) if rss else None,
               "<= 400", "MiB", None),
    ]  # fmt: skip
    return out


def figure(value: float | None, unit: str = "") -> str:
    """A figure as the docs write it: thousands separated, 3 significant digits below 100."""
    if value is None:
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return text + unit


def verdict(t: dict) -> str:
    if t["met"] is None:
        return "not measured"
    return f"{cell(t['value'])} {'yes' if t['met'] else '**no**'}"


def target_tables(f: Figures) -> list[str]:
    """The per-workload targets as one matrix (target x workload), then the others."""
    rows: dict[tuple[str, int | None, str], dict[str, dict]] = {}
    single = []
    for t in targets(f):
        if t["workload"] and t["c"] is not None and t["target"] != "encode 28x28 p99, vae-serve":
            key = (t["target"], t["c"], f"{t['goal']} {t['unit']}")
            rows.setdefault(key, {})[t["workload"]] = t
        else:
            single.append(t)
    workloads = f.compared
    lines = ["| target | c | goal | " + " | ".join(WORKLOAD_LABELS.get(w, w) for w in workloads)]
    lines[0] += " |"
    lines.append("|---|---|---|" + "---|" * len(workloads))
    for (name, c, goal), by in rows.items():
        cells = [verdict(by[w]) if w in by else "—" for w in workloads]
        lines.append(f"| {name} | {c} | {goal} | " + " | ".join(cells) + " |")
    lines += ["", "| target | goal | reached |", "|---|---|---|"]
    for t in single:
        lines.append(f"| {t['target']} | {t['goal']} {t['unit']} | {verdict(t)} |")
    return lines


def summary(f: Figures) -> list[str]:
    """The README table: one row per workload and concurrency, one column per system."""
    systems = [s for s in SUMMARY_ORDER if s in f.systems]
    systems += [s for s in f.systems if s not in systems]
    lines = ["| workload | c | " + " | ".join(LABELS.get(s, s) for s in systems) + " |"]
    lines.append("|---|---|" + "---|" * len(systems))
    for w in f.compared:
        for c in f.concurrency:
            cells = [
                f"{figure(f.get(s, w, 'rps', c))} ({figure(f.get(s, w, 'p99_ms', c), ' ms')})"
                if f.get(s, w, "rps", c) is not None
                else "—"
                for s in systems
            ]
            lines.append(f"| {WORKLOAD_LABELS.get(w, w)} | {c} | " + " | ".join(cells) + " |")
    return lines


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
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items() if v[0].isdigit())
        + ".",
        "",
        "## All systems: req/s (p99)",
        "",
        *summary(f),
        "",
        f"## Targets (ratios within this run; c={f.target_c} unless given)",
        "",
        *target_tables(f),
    ]
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
        ax.set_prop_cycle(color=COLOURS)  # one colour per system, the same in every panel
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
        ax.set_prop_cycle(color=COLOURS)  # one colour per system, the same in every panel
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
