"""/score, /classify, /sample?digit and the stochastic outputs on the tiny model with heads;
the same routes on an older model file without them (501 not_supported)."""

import asyncio
import math

import numpy as np
import pytest
import torch

from app.inference import ModelService
from model import artifact
from tests.conftest import png_bytes

LATENT = 4
SCORE_KEYS = {
    "elbo",
    "reconstruction",
    "kl",
    "log_likelihood",
    "bits_per_dim",
    "percentile",
    "ood_score",
    "ood_percentile",
    "typical",
    "k",
}


def upload(*images: bytes) -> list:
    return [("file", (f"{i}.png", image, "image/png")) for i, image in enumerate(images)]


def test_model_lists_its_capabilities(heads_client, client):
    r = heads_client.get("/model")
    assert r.status_code == 200
    assert r.json()["capabilities"] == ["score", "classify", "conditional_sampling"]
    r = client.get("/model")
    assert r.status_code == 200
    assert r.json()["capabilities"] == []


def test_score_one_image(heads_client, digit_png):
    r = heads_client.post("/score?k=20", files=upload(digit_png))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == SCORE_KEYS and body["k"] == 20
    assert body["elbo"] == pytest.approx(body["reconstruction"] - body["kl"], abs=1e-3)
    assert body["kl"] >= 0
    assert body["log_likelihood"] >= body["elbo"] - 1e-4  # Jensen, on the same k samples
    assert body["bits_per_dim"] == pytest.approx(-body["log_likelihood"] / (784 * math.log(2)))
    assert 0 <= body["percentile"] <= 100 and isinstance(body["typical"], bool)


def test_score_batch_in_order_and_default_k(heads_client, digit_png):
    other = png_bytes(np.eye(28) * 200)  # a stroke: a blank image is no_digit
    r = heads_client.post("/score", files=upload(digit_png, other))
    assert r.status_code == 200
    batch = r.json()
    assert isinstance(batch, list) and len(batch) == 2 and batch[0]["k"] == 100
    single = heads_client.post("/score", files=upload(other)).json()
    assert batch[1]["kl"] == pytest.approx(single["kl"], rel=1e-5)  # closed form: exact


def test_score_agrees_with_the_module(heads_client, tiny_heads_model_file, digit_png):
    module = artifact.load(tiny_heads_model_file)[0]
    body = heads_client.post("/score?k=50", files=upload(digit_png)).json()
    x = heads_client.post("/reconstruct?format=json", files=upload(digit_png)).json()["inputs"]
    x = torch.tensor(x).view(1, 1, 28, 28)
    mu, sigma = module.encode(x)
    assert body["kl"] == pytest.approx(module.kl_divergence(mu, sigma).item(), rel=1e-5)
    percentile = module.percentile(torch.tensor([body["log_likelihood"]])).item()
    assert body["percentile"] == pytest.approx(percentile)
    ood_percentile = module.ood_percentile(torch.tensor([body["ood_score"]])).item()
    assert body["ood_percentile"] == pytest.approx(ood_percentile)
    assert body["typical"] == (body["ood_score"] >= module.typical_threshold.item())


def test_score_limits(make_client, tiny_heads_model_file, digit_png):
    client = make_client(model_path=tiny_heads_model_file, max_score_k=50, max_score_samples=60)
    r = client.post("/score?k=51", files=upload(digit_png))
    assert r.status_code == 413 and r.json()["error"] == "too_many_samples"
    assert "VAE_MAX_SCORE_K" in r.json()["detail"]
    r = client.post("/score?k=0", files=upload(digit_png))
    assert r.status_code == 422
    r = client.post("/score?k=40", files=upload(digit_png, digit_png))
    assert r.status_code == 413 and r.json()["error"] == "too_many_samples"
    r = client.post("/score?k=30", files=upload(digit_png, digit_png))
    assert r.status_code == 200 and len(r.json()) == 2
    r = client.post("/score?k=10", content=b"not an image", headers={"content-type": "image/png"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_image"


def test_concurrent_scores_share_one_batched_call(settings_for, tiny_heads_model_file):
    """Through the micro-batcher: calls with the same k run as one module call."""

    async def scenario():
        service = ModelService.load(settings_for(model_path=tiny_heads_model_file))
        service.start()
        calls = []
        forward = service.forward
        service.forward = lambda method, x, *args: (
            calls.append((method, len(x))) or forward(method, x, *args)
        )
        inputs = [torch.rand(n, 1, 28, 28) for n in (1, 2, 3)]
        results = await asyncio.gather(*(service.run("score", x, 7) for x in inputs))
        await service.close()
        return calls, results

    calls, results = asyncio.run(scenario())
    assert [len(r[0]) for r in results] == [1, 2, 3]
    assert len(calls) < 3 and sum(n for _, n in calls) == 6


def test_classify(heads_client, digit_png):
    r = heads_client.post("/classify", files=upload(digit_png))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1)
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    encoded = heads_client.post("/encode", files=upload(digit_png)).json()
    np.testing.assert_allclose(body["mu"], encoded["mu"], rtol=1e-5, atol=1e-6)
    r = heads_client.post("/classify", files=upload(digit_png, digit_png))
    assert r.status_code == 200 and len(r.json()) == 2


def test_sample_a_digit_reproducibly(heads_client, client):
    params = {"digit": 3, "n": 4, "seed": 5, "format": "json"}
    r = heads_client.get("/sample", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 4 and body["seed"] == 5 and len(body["z"][0]) == LATENT
    assert heads_client.get("/sample", params=params).json()["pixels"] == body["pixels"]
    other = heads_client.get("/sample", params={**params, "digit": 7}).json()
    assert other["z"] != body["z"]
    prior = heads_client.get("/sample", params={"n": 4, "seed": 5, "format": "json"}).json()
    assert prior["z"] != body["z"]
    # the prior's samples are those of a model without heads (same seed, same draw)
    assert (
        client.get("/sample", params={"n": 4, "seed": 5, "format": "json"}).json()["z"]
        == (prior["z"])
    )


def test_sample_digit_is_the_model_draw_with_rejection(heads_client, tiny_heads_model_file):
    """The route draws class_candidates candidates per sample from the seed and the model
    keeps one of each (model/heads.py): the same draws give the same z."""
    module = artifact.load(tiny_heads_model_file)[0]
    assert module.class_candidates > 1
    body = heads_client.get("/sample", params={"digit": 3, "n": 4, "seed": 9, "format": "json"})
    generator = torch.Generator().manual_seed(9)
    eps = torch.randn(4, module.class_candidates, LATENT, generator=generator)
    u = torch.rand(4, module.class_candidates, generator=generator)
    expected = module.digit_latents(torch.full((4,), 3), eps, u, 1.0)
    torch.testing.assert_close(torch.tensor(body.json()["z"]), expected)


def test_sample_digit_temperature_zero_gives_component_means(heads_client, tiny_heads_model_file):
    module = artifact.load(tiny_heads_model_file)[0]
    body = heads_client.get(
        "/sample", params={"digit": 2, "n": 6, "temperature": 0, "format": "json"}
    ).json()
    means = module.digit_means[2]  # (C, D)
    for z in torch.tensor(body["z"]):
        assert torch.isclose(means, z, atol=1e-5).all(-1).any()


@pytest.mark.parametrize("digit", [-1, 10, "x"])
def test_sample_bad_digit(heads_client, digit):
    r = heads_client.get("/sample", params={"digit": digit})
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameters"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/score", {"upload": True}),
        ("post", "/classify", {"upload": True}),
        ("get", "/sample?digit=3", {}),
    ],
)
def test_an_older_model_answers_501(client, digit_png, method, path, kwargs):
    files = upload(digit_png) if kwargs.get("upload") else None
    r = getattr(client, method)(path, files=files) if files else getattr(client, method)(path)
    assert r.status_code == 501
    body = r.json()
    assert body["error"] == "not_supported" and "capabilit" in body["detail"]


def test_older_model_still_serves_the_rest(client, digit_png):
    assert client.get("/sample?n=2").status_code == 200
    assert client.post("/encode", files=upload(digit_png)).status_code == 200


def is_binary(pixels) -> bool:
    return set(np.unique(np.array(pixels)).tolist()) <= {0.0, 1.0}


def test_decode_bernoulli_pixels_seeded(client):
    body = {"z": [[0.0] * LATENT, [0.5] * LATENT]}
    r = client.post("/decode?format=json&pixels=bernoulli&seed=4", json=body)
    assert r.status_code == 200
    drawn = r.json()
    assert is_binary(drawn["pixels"]) and drawn["seed"] == 4
    again = client.post("/decode?format=json&pixels=bernoulli&seed=4", json=body).json()
    assert again["pixels"] == drawn["pixels"]
    png = client.post("/decode?pixels=bernoulli", json=body)
    assert png.status_code == 200 and int(png.headers["x-seed"]) >= 0
    mean = client.post("/decode?format=json", json=body).json()
    assert not is_binary(mean["pixels"]) and mean["seed"] is None


def test_sample_bernoulli_pixels(client):
    params = {"n": 3, "seed": 1, "pixels": "bernoulli", "format": "json"}
    r = client.get("/sample", params=params)
    assert r.status_code == 200 and is_binary(r.json()["pixels"])
    again = client.get("/sample", params=params)
    assert again.json()["pixels"] == r.json()["pixels"]


def test_reconstruct_json_has_mu_and_sigma(client, digit_png):
    other = png_bytes(np.eye(28) * 200)  # a stroke: a blank image is no_digit
    r = client.post("/reconstruct?format=json", files=upload(other, digit_png))
    assert r.status_code == 200
    body = r.json()
    assert np.array(body["mu"]).shape == np.array(body["sigma"]).shape == (2, LATENT)
    encoded = client.post("/encode", files=upload(digit_png)).json()
    np.testing.assert_allclose(body["mu"][1], encoded["mu"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(body["sigma"][1], encoded["sigma"], rtol=1e-5, atol=1e-6)
    png = client.post("/reconstruct?scale=1", files=upload(digit_png))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_reconstruct_draw_z_seeded(client, digit_png):
    url = "/reconstruct?format=json&draw=z&seed=9"
    r = client.post(url, files=upload(digit_png))
    assert r.status_code == 200
    body = r.json()
    assert body["seed"] == 9 and body["z"][0] != body["mu"][0]
    assert client.post(url, files=upload(digit_png)).json()["pixels"] == body["pixels"]
    mean = client.post("/reconstruct?format=json", files=upload(digit_png)).json()
    assert mean["pixels"] != body["pixels"] and mean.get("z") is None
    r = client.post("/reconstruct?draw=y", files=upload(digit_png))
    assert r.status_code == 422


def test_interpolate_between_two_digits(heads_client, client, tiny_heads_model_file):
    body = {"digit_start": 1, "digit_end": 8}
    r = heads_client.post("/interpolate?format=json&steps=5", json=body)
    assert r.status_code == 200, r.text
    z = torch.tensor(r.json()["z"])
    assert z.shape == (5, LATENT)
    module = artifact.load(tiny_heads_model_file)[0]
    for end, digit in ((z[0], 1), (z[-1], 8)):
        assert torch.isclose(module.digit_means[digit], end, atol=1e-5).all(-1).any()
    r = client.post("/interpolate", json=body)
    assert r.status_code == 501 and r.json()["error"] == "not_supported"
    r = heads_client.post("/interpolate", json={"digit_start": 1, "digit_end": 12})
    assert r.status_code == 422


def test_metrics_of_the_new_routes(heads_client, digit_png):
    assert heads_client.post("/score?k=3", files=upload(digit_png)).status_code == 200
    assert heads_client.post("/classify", files=upload(digit_png)).status_code == 200
    assert heads_client.get("/sample?digit=1&n=2").status_code == 200
    text = heads_client.get("/metrics").text
    for method in ("score", "classify", "class_latents"):
        assert f'vae_inference_duration_seconds_count{{operation="{method}"}}' in text
    for route in ("/score", "/classify"):
        assert f'route="{route}"' in text


@pytest.mark.parametrize("path", ["/score?k=3&include_input=true", "/classify?include_input=true"])
def test_include_input(heads_client, digit_png, path):
    r = heads_client.post(path, files=upload(digit_png, digit_png))
    assert r.status_code == 200, r.text
    inputs = np.array([result["input"] for result in r.json()])
    assert inputs.shape == (2, 28, 28) and inputs.max() == pytest.approx(1.0)
    plain = heads_client.post(
        path.split("?")[0] + "?k=3" * path.startswith("/score"), files=upload(digit_png)
    )
    assert "input" not in plain.json()
