"""The report computes issue 17's ratios from one run's points and lays out the summary table."""

from scripts.bench.report import Figures, markdown, targets


def point(system: str, workload: str, c: int, rps: float, p50: float, p99: float) -> dict:
    return {"system": system, "workload": workload, "concurrency": c, "rps": rps,
            "p50_ms": p50, "p99_ms": p99, "errors": 0, "requests": 1}  # fmt: skip


def results() -> dict:
    points = []
    for c in (1, 8, 32, 128):
        points += [
            point("vae-serve", "sample16", c, 2000.0 + c, 5.0, 12.0),
            point("torchserve", "sample16", c, 1000.0, 6.0, 20.0),
            point("litserve", "sample16", c, 1500.0, 6.0, 20.0),
            point("inprocess-batched", "sample16", c, 4000.0, 1.0, 2.0),
        ]
    meta = {"started": "t0", "cpus": 2, "model": "m.pt", "torch": "2.13.0", "server_cpus": "0",
            "client_cpus": "1", "plan": {"repeats": 3, "duration_s": 2}}  # fmt: skip
    return {"meta": meta, "points": points, "cold_start_s": {"vae-serve": [1.0, 1.2, 1.1]},
            "failures": {}}  # fmt: skip


def find(all_targets: list[dict], name: str, c: int) -> dict:
    return next(t for t in all_targets if t["target"] == name and t["c"] == c)


def test_targets_are_ratios_of_the_same_run() -> None:
    found = targets(Figures(results()))
    assert find(found, "req/s, vae-serve / TorchServe", 32)["value"] == 2.03
    assert find(found, "req/s, vae-serve / TorchServe (c=1)", 1)["met"] is False  # 2.0 < 5
    assert find(found, "p99, vae-serve / TorchServe", 32)["value"] == 0.6
    assert find(found, "req/s, vae-serve / LitServe", 8)["value"] == 1.34
    assert find(found, "req/s, vae-serve / LitServe", 8)["met"] is False
    assert find(found, "req/s, vae-serve / BentoML", 32)["met"] is None  # not in this run
    assert find(found, "p99 / p50, vae-serve (c=128)", 128)["value"] == 2.4
    batched = find(found, "sample n=16 req/s, vae-serve / in-process batched", 32)
    assert (batched["value"], batched["met"]) == (0.51, False)
    assert find(found, "cold start, vae-serve (median)", None)["value"] == 1.1


def test_summary_has_a_column_per_system_and_a_row_per_concurrency() -> None:
    text = markdown(results())
    header = next(line for line in text.splitlines() if line.startswith("| workload | c |"))
    columns = ["vae-serve", "TorchServe", "LitServe", "in-process, batched by c |"]
    assert header.split(" | ")[2:6] == columns
    rows = [line for line in text.splitlines() if line.startswith("| `GET /sample?n=16` |")]
    assert [row.split(" | ")[1] for row in rows] == ["1", "8", "32", "128"]
    assert rows[2].split(" | ")[2] == "2,032 (12 ms)"


def test_two_workers_are_compared_per_core_of_cpu_they_got() -> None:
    run = results()
    for system, rps, cpu in (("vae-serve", 1000.0, 100.0), ("vae-serve-2w", 1500.0, 160.0)):
        run["points"].append({**point(system, "encode28", 32, rps, 5.0, 9.0), "cpu_percent": cpu})
    found = [t for t in targets(Figures(run)) if t["workload"] == "encode28"]
    per_core = find(found, "req/s per server core, 2 workers / 1 worker", 32)
    assert (per_core["value"], per_core["met"]) == (0.94, True)  # 937.5 / 1000 per core
    assert find(found, "req/s, 2 workers / 1 worker", 32)["value"] == 1.5
