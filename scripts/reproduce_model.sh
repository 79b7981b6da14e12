#!/usr/bin/env bash
# Reproduce the shipped model: a long IWAE (k=5) run, then a short fine-tuning with a tighter
# bound (k=20) from its best checkpoint; evaluate (IWAE K=1000 on the 10k test set), export
# to model/vae_mnist.pt with its card, and draw the plots. One CPU thread: about 65 min of
# training plus ~4 min of evaluation on a 2-core laptop (see model/MODEL_CARD.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export MNIST_DIR="${MNIST_DIR:-../shared/data/mnist}" OMP_NUM_THREADS=1
run="${1:-runs/iwae5}"

vae-train --epochs 220 --iw-samples 5 --out "$run" --no-plots
vae-train --init-from "$run/best.pt" --iw-samples 20 --epochs 10 --lr 1e-4 --min-lr 1e-5 \
    --kl-warmup-epochs 0 --out "$run-ft" --no-plots
vae-eval "$run-ft/last.pt" --k 1000 --threads 2 --out "$run-ft/eval.json"
vae-export "$run-ft/last.pt" --eval "$run-ft/eval.json" --out model/vae_mnist.pt
python -m model.plots "$run"                                     # learning curves of the long run
python -m model.plots "$run-ft" --checkpoint "$run-ft/last.pt"  # pictures of the shipped model
