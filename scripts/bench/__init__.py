"""Serving benchmark: vae-serve against the in-process limit, a naive FastAPI app and TorchServe.

    python -m scripts.bench --out docs/bench            # full run (~15 min on 2 cores)
    python -m scripts.bench --quick --out /tmp/bench    # tiny smoke configuration (~30 s)

See docs/benchmarks.md for the method, the systems and their configuration.
"""
