"""Settings (app/settings.py): a shipped model named by its path relative to the package."""

from pathlib import Path

from app.settings import SHIPPED_MODEL, Settings


def test_a_relative_model_path_finds_a_shipped_model_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as in the image, whose working directory is /srv
    assert Settings(model_path=Path("model/vae_mnist.pt")).model_path == SHIPPED_MODEL


def test_a_path_found_from_the_working_directory_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "vae_mnist.pt").write_bytes(b"mine")
    assert Settings(model_path=Path("model/vae_mnist.pt")).model_path == Path("model/vae_mnist.pt")


def test_a_missing_path_stays_as_given_for_the_load_error_to_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings(model_path=Path("model/none.pt")).model_path == Path("model/none.pt")
