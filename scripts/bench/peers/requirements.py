"""The project's runtime dependencies, one requirement a line, for a peer's virtual environment.

Each is pinned to the version installed where this runs (the project's venv), so every system
of the benchmark decodes, preprocesses and encodes with the same libraries; a dependency not
installed there keeps pyproject.toml's range. setup_peers.sh runs it:

    .venv/bin/python scripts/bench/peers/requirements.py
"""

import importlib.metadata
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def pinned(requirement: str) -> str:
    name, extras = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?", requirement).groups()
    try:
        return f"{name}{extras or ''}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return requirement


if __name__ == "__main__":
    for requirement in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        print(pinned(requirement))
