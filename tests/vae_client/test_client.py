"""VAEClient against the real app in-process: every method, image inputs, and error mapping."""

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from vae_client import Encoding, Images, VAEClient, VAEServiceError
from vae_client.api import DEFAULT_URL

LATENT_DIM = 4  # the tiny test model


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_sample_is_reproducible_and_carries_z_and_seed(vae: VAEClient) -> None:
    samples = vae.sample(5, seed=11, temperature=0.5)
    assert isinstance(samples, Images) and len(samples) == 5
    assert samples.pixels.shape == (5, 28, 28) and samples.pixels.dtype == np.float32
    assert samples.pixels.min() >= 0 and samples.pixels.max() <= 1
    assert samples.z.shape == (5, LATENT_DIM) and samples.seed == 11
    assert [image.size for image in samples.images] == [(28, 28)] * 5
    np.testing.assert_array_equal(vae.sample(5, seed=11, temperature=0.5).pixels, samples.pixels)
    assert not np.array_equal(vae.sample(5, seed=12, temperature=0.5).pixels, samples.pixels)


def test_sample_grid_and_scale(vae: VAEClient) -> None:
    samples = vae.sample(4, seed=1, scale=2)
    assert samples.images[0].size == (56, 56)  # the service upscaled its PNGs
    assert samples.grid().size == (58, 58)  # 2 x 2 images with a 2-pixel gap
    assert samples.grid(columns=4, scale=3).size == (118 * 3, 28 * 3)


def test_every_kind_of_image_input_gives_the_same_encoding(
    vae: VAEClient, digit: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "digit.png"
    path.write_bytes(png_bytes(digit))
    inputs = [path, str(path), png_bytes(digit), Image.fromarray(digit), digit, digit / 255.0]
    encodings = [vae.encode(image) for image in inputs]
    assert all(isinstance(e, Encoding) and e.latent_dim == LATENT_DIM for e in encodings)
    for encoding in encodings[1:]:
        np.testing.assert_allclose(encoding.mu, encodings[0].mu, atol=1e-6)
        np.testing.assert_allclose(encoding.sigma, encodings[0].sigma, atol=1e-6)
    assert (encodings[0].sigma > 0).all() and encodings[0].kl >= 0


def test_encode_a_list_gives_a_list_in_order(
    vae: VAEClient, digit: np.ndarray, other_digit: np.ndarray
) -> None:
    one, two = vae.encode(digit), vae.encode(other_digit)
    both = vae.encode([digit, other_digit])
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_allclose(both[0].mu, one.mu, atol=1e-6)
    np.testing.assert_allclose(both[1].mu, two.mu, atol=1e-6)
    single = vae.encode([digit])  # the service answers one object; the client keeps a list
    assert isinstance(single, list) and len(single) == 1


def test_decode_one_vector_or_several(vae: VAEClient) -> None:
    assert len(vae.decode(np.zeros(LATENT_DIM))) == 1
    assert len(vae.decode([[0.0] * LATENT_DIM, [1.0] * LATENT_DIM, [-1.0] * LATENT_DIM])) == 3
    with pytest.raises(ValueError, match="must be"):
        vae.decode(np.zeros((2, 2, LATENT_DIM)))


def test_reconstruct_is_decode_of_the_mean(vae: VAEClient, digit: np.ndarray) -> None:
    reconstruction = vae.reconstruct(digit)
    assert len(reconstruction) == 1 and reconstruction.inputs.shape == (1, 28, 28)
    np.testing.assert_allclose(reconstruction.inputs[0], digit / 255.0, atol=1e-6)
    decoded = vae.decode(vae.encode(digit).mu)
    np.testing.assert_allclose(reconstruction.pixels, decoded.pixels, atol=1e-5)


def test_reconstruct_several(vae: VAEClient, digit: np.ndarray, other_digit: np.ndarray) -> None:
    assert vae.reconstruct([digit, other_digit]).inputs.shape == (2, 28, 28)


def test_interpolate_between_latent_vectors(vae: VAEClient) -> None:
    start, end = np.zeros(LATENT_DIM), np.linspace(-1, 1, LATENT_DIM)
    strip = vae.interpolate(start, end, steps=5)
    assert len(strip) == 5 and strip.z.shape == (5, LATENT_DIM)
    np.testing.assert_allclose(strip.z[0], start, atol=1e-6)
    np.testing.assert_allclose(strip.z[-1], end, atol=1e-6)
    np.testing.assert_allclose(strip.z[2], (start + end) / 2, atol=1e-6)
    assert len(vae.interpolate([0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0], steps=3)) == 3


def test_interpolate_between_images_starts_at_their_encodings(
    vae: VAEClient, digit: np.ndarray, other_digit: np.ndarray
) -> None:
    strip = vae.interpolate(digit, png_bytes(other_digit), steps=4)
    assert len(strip) == 4
    np.testing.assert_allclose(strip.z[0], vae.encode(digit).mu, atol=1e-5)
    np.testing.assert_allclose(strip.z[-1], vae.encode(other_digit).mu, atol=1e-5)
    with pytest.raises(TypeError, match="both"):
        vae.interpolate(digit, [0.0] * LATENT_DIM)


def test_model_info_and_ready(vae: VAEClient) -> None:
    info = vae.model_info()
    assert info.latent_dim == LATENT_DIM and info.version == "0.0.1-test"
    assert info.card["latent_dim"] == LATENT_DIM and isinstance(info.batching, bool)
    assert info.precision == "float32"
    assert vae.ready() is True


@pytest.mark.parametrize(
    ("call", "status", "code", "detail"),
    [
        (lambda v: v.sample(0), 422, "invalid_parameters", "query.n"),
        (lambda v: v.sample(2, temperature=11), 422, "invalid_parameters", "temperature"),
        (lambda v: v.decode([0.0, 1.0]), 422, "invalid_parameters", "4 values"),
        (
            lambda v: v.interpolate([0.0] * 4, [1.0] * 4, 99),
            413,
            "too_many_steps",
            "interpolation steps",
        ),
        (lambda v: v.encode(b"not an image"), 400, "invalid_image", "decodable"),
        (lambda v: v.reconstruct(b""), 400, "invalid_image", "empty"),
    ],
    ids=["n=0", "temperature", "z-length", "steps", "not-an-image", "empty-image"],
)
def test_service_errors_carry_status_code_and_detail(vae, call, status, code, detail) -> None:
    with pytest.raises(VAEServiceError) as caught:
        call(vae)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert detail in caught.value.detail
    assert str(caught.value).startswith(f"{status} {code}: ")


def test_not_an_image_is_refused_before_sending(vae: VAEClient) -> None:
    with pytest.raises(TypeError, match="not an image"):
        vae.encode(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no images"):
        vae.reconstruct([])


def test_api_key_from_argument_or_environment(
    tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAE_API_KEY", raising=False)
    with TestClient(create_app(Settings(model_path=tiny_model_file, api_key="s3cret"))) as http:
        with pytest.raises(VAEServiceError) as caught:
            VAEClient(http=http).model_info()
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        assert VAEClient(api_key="s3cret", http=http).model_info().latent_dim == LATENT_DIM
        monkeypatch.setenv("VAE_API_KEY", "s3cret")
        assert VAEClient(http=http).sample(1).pixels.shape == (1, 28, 28)


def test_base_url_from_argument_environment_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAE_URL", raising=False)
    with VAEClient() as vae:
        assert vae.base_url == DEFAULT_URL
    monkeypatch.setenv("VAE_URL", "http://vae.example:9000/")
    with VAEClient() as vae:
        assert vae.base_url == "http://vae.example:9000"
    with VAEClient("http://other:1") as vae:
        assert vae.base_url == "http://other:1"
