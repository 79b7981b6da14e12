"""Serving benchmark: vae-serve against the in-process limit, a naive FastAPI app, TorchServe,
LitServe, BentoML and Ray Serve (the peers: scripts/bench/peers, scripts/bench/setup_peers.sh).

    python -m scripts.bench --out docs/bench            # full run (~30 min on 2 cores)
    python -m scripts.bench --reduced --out docs/bench  # c=8,32 (+1 for two systems), ~14 min
    python -m scripts.bench --quick --out /tmp/bench    # tiny smoke configuration (~30 s)

See docs/benchmarks.md for the method, the systems and their configuration.
"""
