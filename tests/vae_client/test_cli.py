"""`vae-client` end to end against the in-process app: files written, JSON printed, errors."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vae_client.cli import latents_from_json, main

LATENT_DIM = 4


@pytest.fixture
def digits(tmp_path: Path, digit: np.ndarray, other_digit: np.ndarray) -> tuple[Path, Path]:
    paths = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(digit).save(paths[0])
    Image.fromarray(other_digit).save(paths[1])
    return paths


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_sample_writes_a_grid_and_reports_the_seed(
    app_client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.png"
    command = ["sample", "-n", "4", "--seed", "1", "-o", str(out), "--scale", "2"]
    assert main(command, app_client) == 0
    assert size(out) == (116, 116)  # 2 x 2 digits, a 2-pixel gap, upscaled twice
    assert "seed 1" in capsys.readouterr().err


def test_encode_prints_json_that_decode_reads(
    app_client: TestClient,
    digits: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["encode", str(digits[0])], app_client) == 0
    printed = capsys.readouterr().out
    encoding = json.loads(printed)
    assert encoding["latent_dim"] == LATENT_DIM and len(encoding["sigma"]) == LATENT_DIM

    monkeypatch.setattr("sys.stdin", io.StringIO(printed))
    out = tmp_path / "decoded.png"
    assert main(["decode", "-", "-o", str(out), "--scale", "1"], app_client) == 0
    assert size(out) == (28, 28)

    assert main(["encode", *map(str, digits)], app_client) == 0
    both = json.loads(capsys.readouterr().out)
    assert len(both) == 2
    np.testing.assert_allclose(both[0]["mu"], encoding["mu"], atol=1e-5)


def test_decode_reads_a_json_file_of_vectors(app_client: TestClient, tmp_path: Path) -> None:
    z = tmp_path / "z.json"
    z.write_text(json.dumps({"z": [[0.0] * LATENT_DIM] * 3}))
    out = tmp_path / "out.png"
    assert main(["decode", str(z), "-o", str(out), "--scale", "1"], app_client) == 0
    assert size(out) == (58, 58)  # three digits on a 2 x 2 grid


def test_reconstruct_and_interpolate_write_pngs(
    app_client: TestClient, digits: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    assert main(["reconstruct", str(digits[0]), "-o", str(out)], app_client) == 0
    assert size(out) == (112, 112)  # default scale 4
    strip = tmp_path / "strip.png"
    command = ["interpolate", *map(str, digits), "--steps", "5", "-o", str(strip), "--scale", "1"]
    assert main(command, app_client) == 0
    assert size(strip) == (5 * 30 - 2, 28)  # one row


def test_info_prints_the_model_card(
    app_client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info"], app_client) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["latent_dim"] == LATENT_DIM and info["card"]["version"] == "0.0.1-test"


def test_service_errors_exit_1_with_the_code(
    app_client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", "-n", "0", "-o", str(tmp_path / "x.png")], app_client) == 1
    assert "422 invalid_parameters" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_local_problems_exit_2(
    app_client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["encode", str(tmp_path / "missing.png")], app_client) == 2
    assert "missing.png" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[[[1]]]")
    assert main(["decode", str(bad)], app_client) == 2


def test_unreachable_service_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "http://127.0.0.1:9", "--timeout", "2", "info"]) == 1
    assert "cannot reach the service at http://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("[0, 1, 2]", (1, 3)),
        ("[[0, 1], [2, 3]]", (2, 2)),
        ('{"z": [0, 1]}', (1, 2)),
        ('{"mu": [0, 1], "sigma": [1, 1]}', (1, 2)),
        ('[{"mu": [0, 1]}, {"mu": [2, 3]}]', (2, 2)),
    ],
)
def test_latents_from_json_accepts_vectors_and_encode_output(text: str, shape) -> None:
    assert latents_from_json(text).shape == shape
