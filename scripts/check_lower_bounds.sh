#!/usr/bin/env bash
# Checks that the lower bounds of pyproject.toml's [project] dependencies are true: builds a
# scratch venv outside the repository (LOWVENV, /tmp/lowvenv by default; made anew each run)
# holding the oldest version of each direct dependency that the bounds allow (uv's
# --resolution lowest-direct; their own dependencies at the newest allowed) plus the test tools
# at their requirements/dev.lock versions, then runs the fast tests of the service and model
# with it:
#   ./scripts/check_lower_bounds.sh                 tests/app tests/oip tests/reliability tests/model
#   ./scripts/check_lower_bounds.sh tests/app -k x  other pytest arguments
# torch is the exact pin from pyproject.toml, installed first by pip from the index that
# torch-index.sh chooses (the CPU build); uv never sees it (uv would fetch PyPI's CUDA build),
# and the run stops if anything replaced it. The venv finds the project through a .pth file
# (subprocesses that tests start with a bare environment too), so nothing is written into the
# repository (no egg-info). matplotlib (the train extra, for tests/model) is at its locked
# version. Needs python3 and PyPI.
# Raise a bound in pyproject.toml when this fails; scripts/lock.sh's locks must still satisfy it
# (tests/packaging checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
VENV="${LOWVENV:-/tmp/lowvenv}"
TOOLS="${VENV}-tools"
case "$(realpath -m "$VENV")/" in
"$repo"/*) echo "LOWVENV must be outside the repository: $VENV" >&2 && exit 2 ;;
esac
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MNIST_DIR="${MNIST_DIR:-$repo/../shared/data/mnist}"

# shellcheck source=scripts/torch-index.sh
source scripts/torch-index.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# pyproject's dependencies (torch apart) and the locked test tools, as requirement files.
python3 - "$work" <<'EOF'
import re, sys, tomllib
from pathlib import Path

work = Path(sys.argv[1])
deps = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
torch = [d for d in deps if re.match(r"torch\b", d)]
assert len(torch) == 1 and "==" in torch[0], torch
(work / "torch.txt").write_text(torch[0].replace(" ", "") + "\n")
(work / "deps.txt").write_text("".join(d + "\n" for d in deps if d not in torch))
tools = ("pytest", "pytest-timeout", "hypothesis", "schemathesis", "matplotlib")
locked = dict(
    re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", Path("requirements/dev.lock").read_text(), re.M)
)
(work / "tools.txt").write_text("".join(f"{t}=={locked[t]}\n" for t in tools))
EOF
torch_req="$(cat "$work/torch.txt")"

rm -rf "$VENV"
python3 -m venv "$VENV"
pip=("$VENV/bin/pip" install --quiet --disable-pip-version-check)
# torch with its own dependencies, from the CPU index (or a local wheel pip is configured with).
"${pip[@]}" "${TORCH_INDEX[@]}" "$torch_req"
torch_version="$("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)')"

[ -x "$TOOLS/bin/uv" ] || { python3 -m venv "$TOOLS" && "$TOOLS/bin/pip" install --quiet uv; }
echo "torch==$torch_version" >"$work/constraints.txt"
"$TOOLS/bin/uv" pip install --quiet --python "$VENV/bin/python" --resolution lowest-direct \
    --constraint "$work/constraints.txt" -r "$work/deps.txt" -r "$work/tools.txt"

now="$("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)')"
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$repo" >"$site/vae_serve_repo.pth"
if [ "$now" != "$torch_version" ]; then
    echo "torch was replaced: $torch_version -> $now" >&2
    exit 1
fi
echo "lowest versions under test (torch $now):"
"$TOOLS/bin/uv" pip freeze --quiet --python "$VENV/bin/python" |
    grep -iE "^($(sed -E 's/[[<>=!~; ].*//' "$work/deps.txt" | paste -sd'|')|starlette)==" |
    sed 's/^/  /'

if [ "$#" = 0 ]; then
    set -- -m "not slow" tests/app tests/oip tests/reliability tests/model -k "not browser"
fi
"$VENV/bin/python" -m pytest -q -x -p no:cacheprovider "$@"
