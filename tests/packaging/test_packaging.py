"""Packaging: what the distributions install, and the dev tools' exact versions."""

import re
import tomllib

from tests.helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CLIENT = tomllib.loads((ROOT / "packaging" / "vae-client" / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dev_tool_has_an_exact_version_in_the_constraints():
    pins = {}
    for line in (ROOT / "constraints-dev.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    extras = PYPROJECT["project"]["optional-dependencies"]
    tools = {requirement_name(r) for r in extras["dev"] + extras["train"]} - {"vae-serve"}
    assert tools <= set(pins), f"not pinned: {tools - set(pins)}"
    assert all(re.fullmatch(r"\d+(\.\d+)*", version) for version in pins.values())
    assert "-c constraints-dev.txt" in (ROOT / "scripts" / "test.sh").read_text()


def test_the_client_installs_alone_under_its_own_name():
    assert CLIENT["tool"]["setuptools"]["packages"] == ["vae_client"]
    assert CLIENT["project"]["scripts"] == {"vae-client": "vae_client.cli:main"}
    assert not {requirement_name(r) for r in CLIENT["project"]["dependencies"]} & {
        "torch",
        "fastapi",
    }
    source = CLIENT["tool"]["setuptools"]["package-dir"]["vae_client"]
    assert (ROOT / "packaging" / "vae-client" / source).resolve() == ROOT / "vae_client"


def test_the_service_distribution_has_no_generic_client_package():
    included = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "client" not in included and "vae_client" in included
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts["vae-client"] == "vae_client.cli:main" and scripts["vae-serve"] == "app.cli:main"
