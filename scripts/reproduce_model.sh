#!/usr/bin/env bash
# Reproduce the shipped model: a long IWAE (k=5) run, then two short fine-tunings with
# tighter bounds (k=20, then k=50); evaluate (IWAE K=1000 on the 10k test set), export to
# model/vae_mnist.pt with its card and the heads of score/classify/conditional sampling
# (model/fit_heads.py), evaluate those (model/evaluate_heads.py), and draw the plots. One
# CPU thread: about 82 min of training plus ~11 min of evaluation, export and capability
# figures on a 2-core laptop (see model/MODEL_CARD.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export MNIST_DIR="${MNIST_DIR:-../shared/data/mnist}" OMP_NUM_THREADS=1
run="${1:-runs/iwae5}"
finetune=(--lr 1e-4 --min-lr 1e-5 --kl-warmup-epochs 0 --no-plots)

vae-train --epochs 220 --iw-samples 5 --out "$run" --no-plots
vae-train --init-from "$run/best.pt" --iw-samples 20 --epochs 10 --out "$run-ft" "${finetune[@]}"
vae-train --init-from "$run-ft/last.pt" --iw-samples 50 --epochs 8 --out "$run-ft50" "${finetune[@]}"
vae-eval "$run-ft50/last.pt" --k 1000 --threads 2 --out "$run-ft50/eval.json"
vae-export "$run-ft50/last.pt" --eval "$run-ft50/eval.json" --version 1.1.0 --out model/vae_mnist.pt  # + heads (5 min)
python -m model.evaluate_heads model/vae_mnist.pt                  # capability figures (~3 min)
python -m model.plots "$run"                                        # learning curves of the long run
python -m model.plots "$run-ft50" --checkpoint "$run-ft50/last.pt"  # pictures of the shipped model

# The dSprites beta-VAE beside it (docs/dsprites.md): images rendered from the factors, no
# download; 1.3 M images seen, ~1 h on one busy CPU thread, then ~15 min of export and figures.
vae-train --dataset dsprites --epochs 26 --epoch-images 50000 --val-size 2000 --out runs/dsprites
vae-export runs/dsprites/best.pt --out model/vae_dsprites.pt --score-k 50  # card + heads
python -m model.evaluate_dsprites model/vae_dsprites.pt  # figures into the card, docs/img/dsprites_*
