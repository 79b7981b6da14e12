"""The client's score, classify and sample(digit=...) against the tiny model with heads, the
same from `vae-client`, and the 501 of an older model as a VAEServiceError."""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from vae_client import Classification, Score, VAEClient, VAEServiceError
from vae_client.cli import main


@pytest.fixture(scope="module")
def heads_app(tiny_heads_model_file: Path) -> Iterator[TestClient]:
    settings = Settings(model_path=tiny_heads_model_file, api_key=None)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def vae(heads_app: TestClient) -> VAEClient:
    return VAEClient(http=heads_app, retries=0)


def test_score_one_and_many(vae: VAEClient, digit: np.ndarray, other_digit: np.ndarray) -> None:
    one = vae.score(digit, k=10)
    assert isinstance(one, Score) and one.k == 10 and isinstance(one.typical, bool)
    assert one.elbo == pytest.approx(one.reconstruction - one.kl, abs=1e-3)
    many = vae.score([digit, other_digit], k=10)
    assert [type(s) for s in many] == [Score, Score]
    assert many[0].kl == pytest.approx(one.kl, rel=1e-5)


def test_classify(vae: VAEClient, digit: np.ndarray) -> None:
    result = vae.classify(digit)
    assert isinstance(result, Classification)
    assert result.probabilities.shape == (10,) and result.digit == result.probabilities.argmax()
    np.testing.assert_allclose(result.mu, vae.encode(digit).mu, atol=1e-6)


def test_sample_a_digit_and_capabilities(vae: VAEClient) -> None:
    sevens = vae.sample(3, seed=2, digit=7)
    assert len(sevens) == 3 and sevens.seed == 2
    np.testing.assert_array_equal(vae.sample(3, seed=2, digit=7).z, sevens.z)
    assert "conditional_sampling" in vae.model_info().capabilities


def test_reconstruct_carries_mu_and_sigma(vae: VAEClient, digit: np.ndarray) -> None:
    result = vae.reconstruct(digit)
    assert result.mu.shape == result.sigma.shape == (1, 4)


def test_older_model_raises_not_supported(app_client: TestClient, digit: np.ndarray) -> None:
    vae = VAEClient(http=app_client, retries=0)
    with pytest.raises(VAEServiceError) as error:
        vae.classify(digit)
    assert error.value.status == 501 and error.value.code == "not_supported"
    assert vae.model_info().capabilities == []


def test_cli_score_classify_and_sample_digit(
    heads_app: TestClient, tmp_path: Path, digit: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.png"
    Image.fromarray(digit).save(path)
    assert main(["score", str(path), "--k", "7"], heads_app) == 0
    assert json.loads(capsys.readouterr().out)["k"] == 7
    assert main(["classify", str(path), str(path)], heads_app) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body) == 2 and len(body[0]["probabilities"]) == 10
    out = tmp_path / "threes.png"
    assert main(["sample", "--digit", "3", "-n", "4", "-o", str(out)], heads_app) == 0
    assert out.exists()
