"""The model contract (app.contract): read from the card, checked against the module at load;
a card that is missing a field or contradicts the methods stops the server with one line."""

from pathlib import Path

import pytest
import torch
from torch import Tensor

from app.contract import ContractError, read_contract
from app.inference import ModelLoadError, ModelService
from model import artifact
from model.vae import VAE
from tests.conftest import LATENT, SHIPPED_MODEL, TINY_CONFIG, tiny_card, tiny_settings


def loaded(path: Path) -> tuple[torch.jit.ScriptModule, dict]:
    return artifact.load(path, torch.device("cpu"))


def test_the_shipped_model_reads_as_an_mnist_digit_model():
    contract = read_contract(*loaded(SHIPPED_MODEL))
    assert contract.image_shape == (1, 28, 28)
    assert contract.classes == tuple("0123456789")
    assert contract.preprocessor == "digit"
    assert contract.capabilities == {
        "score": "score",
        "classify": "classify",
        "conditional_sampling": "digit_latents",
    }
    assert contract.has_kl and contract.latent_dim == 32


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("latent_dim", LATENT + 1, "encode gives mu"),
        ("latent_dim", 0, "positive integer"),
        ("image_shape", [3, 28, 28], "encode fails on"),
        ("image_shape", [2, 28, 28], "C must be 1"),
        ("image_shape", [28, 28], r"expected \[C, H, W\]"),
        ("preprocessor", "sharpen", "expected one of"),
        ("preprocessor", None, "expected one of"),
        ("classes", ["a", "a"], "distinct"),
        ("classes", "0123", "list of names"),
    ],
)
def test_a_card_that_contradicts_its_module_names_the_field(tiny_model_file, field, value, message):
    module, card = loaded(tiny_model_file)
    card = (
        {**card, field: value}
        if value is not None
        else {k: v for k, v in card.items() if k != field}
    )
    with pytest.raises(ContractError, match=message) as raised:
        read_contract(module, card)
    assert raised.value.field == field
    assert "\n" not in str(raised.value)


def test_a_labelled_model_needs_as_many_class_names_as_its_classifier(tiny_heads_model_file):
    module, card = loaded(tiny_heads_model_file)
    with pytest.raises(ContractError, match="a model with classify"):
        read_contract(module, {**card, "classes": []})
    with pytest.raises(ContractError, match="3 names for 10 classes"):
        read_contract(module, {**card, "classes": ["a", "b", "c"]})


def test_the_server_refuses_such_a_file_at_load_in_one_line(tiny_model_file, tmp_path):
    module, card = loaded(tiny_model_file)
    bad = artifact.save(module, tmp_path / "bad.pt", {**card, "latent_dim": LATENT * 2})
    with pytest.raises(ModelLoadError, match="model card field 'latent_dim'") as raised:
        ModelService.load(tiny_settings(bad))
    assert "\n" not in str(raised.value)


def test_the_class_query_takes_the_model_class_names(heads_client):
    by_name = heads_client.get("/sample?class=3&n=2&seed=5&format=json")
    by_index = heads_client.get("/sample?digit=3&n=2&seed=5&format=json")
    assert by_name.status_code == by_index.status_code == 200
    assert by_name.json()["pixels"] == by_index.json()["pixels"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("class=eleven", "unknown class 'eleven': this model has 0, 1, 2"),
        ("digit=10", "class index 10 out of range: this model has 10 classes"),
        ("class=1&digit=1", "by name or by index, not both"),
    ],
)
def test_a_class_the_model_does_not_have_is_a_422_naming_its_classes(heads_client, query, message):
    r = heads_client.get(f"/sample?{query}")
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_parameters" and message in r.json()["detail"]


def test_interpolation_between_classes_checks_them_against_the_model(heads_client):
    r = heads_client.post("/interpolate", json={"digit_start": 0, "digit_end": 10})
    assert r.status_code == 422 and "out of range" in r.json()["detail"]


def test_the_model_route_shows_the_contract(heads_client):
    contract = heads_client.get("/model").json()["contract"]
    assert contract["image_shape"] == [1, 28, 28] and contract["preprocessor"] == "digit"
    assert contract["classes"] == list("0123456789") and contract["latent_dim"] == LATENT
    assert set(contract["capabilities"]) == {"score", "classify", "conditional_sampling"}


class ScoreBeforeOOD(VAE):
    """A file exported before issue 26: score's seven outputs, no ood_score."""

    @torch.jit.export
    def score(
        self, x: Tensor, k: int
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        ll = self.encode(x)[0].sum(1)
        return ll, ll, ll, ll, ll, ll, ll >= 0


class SamplingBeforeRejection(VAE):
    """A file exported before conditional draws had candidates: no class_candidates."""

    @torch.jit.export
    def digit_latents(self, digits: Tensor, eps: Tensor, u: Tensor, temperature: float) -> Tensor:
        return eps * temperature


@pytest.mark.parametrize(
    ("module_class", "message"),
    [(ScoreBeforeOOD, "score gives 7 outputs"), (SamplingBeforeRejection, "class_candidates")],
)
def test_a_file_from_before_the_ood_score_says_to_re_export(module_class, message):
    torch.manual_seed(0)
    module = artifact.script(module_class(TINY_CONFIG))
    card = {**tiny_card(), "classes": ["a", "b"]}
    with pytest.raises(ContractError, match=message) as raised:
        read_contract(module, card)
    assert "vae-export --from-torchscript" in str(raised.value)
