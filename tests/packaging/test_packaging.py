"""Packaging: what the distributions install, and the locks they install from."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CLIENT = tomllib.loads((ROOT / "packaging" / "vae-client" / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def read_lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """requirements/NAME.lock (pip-compile --generate-hashes): {package: (version, hashes)}."""
    text = (ROOT / "requirements" / f"{name}.lock").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement, *options = line.split("#", 1)[0].split()
            package, _, version = requirement.partition("==")
            hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash")]
            pins[canonicalize_name(package)] = (version, hashes)
    return pins


SERVICE_LOCK, DEV_LOCK = read_lock("service"), read_lock("dev")


def declared(*groups: str) -> list[Requirement]:
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for group in groups:
        requirements += [
            Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][group]
        ]
    return [r for r in requirements if canonicalize_name(r.name) not in {"vae-serve", "torch"}]


@pytest.mark.parametrize(
    ("lock", "groups"), [(SERVICE_LOCK, ()), (DEV_LOCK, ("dev", "train"))], ids=["service", "dev"]
)
def test_every_declared_requirement_is_locked_at_a_version_it_allows(lock, groups):
    for requirement in declared(*groups):
        version, hashes = lock[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), requirement


def test_every_locked_package_is_pinned_with_hashes_and_torch_is_left_to_its_pin():
    for lock in (SERVICE_LOCK, DEV_LOCK):
        assert "torch" not in lock  # installed first, at the exact pin, from the CPU index
        assert all(str(Version(v)) == v for v, _ in lock.values())  # exact, normalised
        assert all(hashes for _, hashes in lock.values())


def test_the_dev_lock_runs_the_service_at_the_service_lock_versions():
    assert {name: DEV_LOCK[name][0] for name in SERVICE_LOCK} == {
        name: version for name, (version, _) in SERVICE_LOCK.items()
    }


def test_every_installer_installs_from_a_lock_with_hashes():
    assert "install_locked requirements/dev.lock" in (ROOT / "scripts" / "test.sh").read_text()
    assert "install_locked requirements/service.lock" in (ROOT / "scripts" / "serve.sh").read_text()
    assert "--require-hashes" in (ROOT / "scripts" / "install.sh").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements/service.lock" in dockerfile


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
