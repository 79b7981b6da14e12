"""`python -m scripts.bench`: run the benchmark and write results, report and plots to --out."""

import argparse
import sys
import tempfile
from pathlib import Path

from model import artifact
from scripts.bench.config import SYSTEM_NAMES, WORKLOAD_NAMES, make_plan
from scripts.bench.inputs import SHIPPED_MODEL, resolve_model, write_bodies
from scripts.bench.report import write_all
from scripts.bench.run import run


def names(allowed: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = set(chosen) - set(allowed)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {sorted(unknown)}; choose from {allowed}")
        return chosen

    return parse


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("docs/bench"), help="default: %(default)s")
    p.add_argument("--quick", action="store_true", help="tiny smoke configuration (~30 s)")
    p.add_argument(
        "--reduced",
        action="store_true",
        help="the 5 shared workloads, every system at c=8,32 (+ c=1 for vae-serve and"
        " TorchServe), 1 cold start (~14 min)",
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"TorchScript file, or 'tiny'/'untrained' (exported now); default: {SHIPPED_MODEL}"
        " (tiny with --quick)",
    )
    p.add_argument("--systems", type=names(SYSTEM_NAMES), help=f"subset of {SYSTEM_NAMES}")
    p.add_argument("--workloads", type=names(WORKLOAD_NAMES), help=f"subset of {WORKLOAD_NAMES}")
    p.add_argument("--concurrency", type=lambda s: tuple(int(c) for c in s.split(",")))
    p.add_argument("--duration", dest="duration_s", type=int, help="seconds per repeat")
    p.add_argument("--repeats", type=int)
    p.add_argument("--cold-starts", dest="cold_starts", type=int, help="starts per server")
    p.add_argument("--workdir", type=Path, help="models, bodies, logs (default: a new temp dir)")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset pinning")
    args = p.parse_args(argv)
    plan = make_plan(
        args.quick,
        args.reduced,
        systems=args.systems,
        workloads=args.workloads,
        concurrency=args.concurrency,
        duration_s=args.duration_s,
        repeats=args.repeats,
        cold_starts=args.cold_starts,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vae-bench-"))  # kept after the run
    workdir.mkdir(parents=True, exist_ok=True)
    model = resolve_model(args.model or ("tiny" if args.quick else str(SHIPPED_MODEL)), workdir)
    latent_dim = int(artifact.load(model)[0].latent_dim)
    results = run(plan, model, write_bodies(workdir, latent_dim), workdir, args.pin)
    results["meta"]["workdir"] = str(workdir)
    print(write_all(results, args.out))
    sys.exit(1 if results["failures"] and args.quick else 0)


if __name__ == "__main__":
    main()
