"""The peer servers of the benchmark: LitServe, BentoML and Ray Serve, each serving the VAE.

Each runs in its own virtual environment (scripts/bench/setup_peers.sh) from the repository
root, and does the same work (work.py) as vae-serve and the TorchServe handler.
"""
