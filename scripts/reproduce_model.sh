#!/usr/bin/env bash
# Reproduce the shipped model: train, evaluate (IWAE K=1000 on the 10k test set), export
# to model/vae_mnist.pt with its card, and draw the plots. One CPU thread: about 1.5 h of
# training plus ~10 min of evaluation on a 2-core laptop (see model/MODEL_CARD.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export MNIST_DIR="${MNIST_DIR:-../shared/data/mnist}" OMP_NUM_THREADS=1
run="${1:-runs/iwae5}"

vae-train --epochs 220 --iw-samples 5 --out "$run" --no-plots
vae-eval "$run/best.pt" --k 1000 --out "$run/eval.json"
vae-export "$run/best.pt" --eval "$run/eval.json" --out model/vae_mnist.pt
python -m model.plots "$run"
