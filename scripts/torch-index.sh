# Sourced by serve.sh and test.sh: TORCH_INDEX, the pip arguments that make `pip install
# torch==...` take the CPU build. PyTorch's CPU index is an extra index, so pip picks
# 2.13.0+cpu over PyPI's 2.13.0 (a local version sorts higher) and still finds every other
# package, and a pip configured with a local wheel of torch keeps working where that index
# cannot be reached (pip warns, retries for ~10 s, and goes on). Choose another build with
# TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cu128); empty means PyPI's default.
TORCH_INDEX_URL="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
TORCH_INDEX=()
if [ -n "$TORCH_INDEX_URL" ]; then
    TORCH_INDEX=(--extra-index-url "$TORCH_INDEX_URL")
fi
