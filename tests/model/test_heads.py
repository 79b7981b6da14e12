"""The heads fitted at export time: eager and exported modules agree, the fits do what
they say, and an exported file's VAE can be re-exported with its weights unchanged."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model import artifact
from model.export import export, load_torchscript_vae
from model.fit_heads import confusion_matrix, fit_mixture
from model.heads import CAPABILITIES, VAEWithHeads, capabilities_of, heads_shapes
from model.vae import VAE, bernoulli_log_likelihood, iwae_bound, iwae_log_weights
from tests.conftest import TINY_CONFIG, tiny_card


@pytest.fixture(scope="module")
def eager_and_scripted(tiny_heads_model_file):
    scripted = artifact.load(tiny_heads_model_file)[0]
    eager, _ = load_torchscript_vae(tiny_heads_model_file)
    state = scripted.state_dict()
    heads = VAEWithHeads(TINY_CONFIG, **heads_shapes(state))
    own = heads.state_dict().keys()  # the scripted dict also holds the non-persistent marker
    heads.load_state_dict({k: v for k, v in state.items() if k in own})
    heads.class_candidates = scripted.class_candidates  # an attribute, not in the state
    return heads.eval(), scripted


def test_capabilities_by_method(eager_and_scripted, tiny_model_file):
    _, scripted = eager_and_scripted
    assert capabilities_of(scripted) == list(CAPABILITIES)
    assert capabilities_of(artifact.load(tiny_model_file)[0]) == []


def test_eager_and_exported_agree(eager_and_scripted):
    eager, scripted = eager_and_scripted
    x = torch.rand(3, 1, 28, 28)
    torch.manual_seed(4)
    a = eager.score(x, 16)
    torch.manual_seed(4)
    b = scripted.score(x, 16)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)
    for u, v in zip(eager.classify(x), scripted.classify(x), strict=True):
        torch.testing.assert_close(u, v)
    digits, eps, u = torch.tensor([0, 5, 9]), torch.randn(3, 5, 4), torch.rand(3, 5)
    torch.testing.assert_close(
        eager.digit_latents(digits, eps, u, 0.7), scripted.digit_latents(digits, eps, u, 0.7)
    )


def test_conditional_draws_keep_the_first_candidate_the_classifier_accepts(eager_and_scripted):
    eager, _ = eager_and_scripted
    digits = torch.tensor([0, 3, 7, 7])
    eps, u = torch.randn(4, 6, 4), torch.rand(4, 6)
    candidates = torch.stack([eager.digit_latents(digits, eps[:, i : i + 1], u[:, i : i + 1], 1.0)
                              for i in range(6)], 1)  # fmt: skip
    with torch.no_grad():
        p = torch.softmax(eager.classifier(candidates), -1)
        p = p.gather(2, digits.view(4, 1, 1).expand(4, 6, 1)).squeeze(-1)  # (4, 6)
    acceptance = p.median().item()
    eager.class_acceptance.fill_(acceptance)
    try:
        z = eager.digit_latents(digits, eps, u, 1.0)
    finally:
        eager.class_acceptance.fill_(0.0)
    for row in range(4):
        accepted = (p[row] >= acceptance).nonzero()
        expected = accepted[0, 0] if len(accepted) else p[row].argmax()
        torch.testing.assert_close(z[row], candidates[row, expected])
    # with acceptance 0 the first candidate always passes: the plain mixture draw
    torch.testing.assert_close(eager.digit_latents(digits, eps, u, 1.0), candidates[:, 0])


def test_score_is_the_iwae_bound_with_soft_targets(eager_and_scripted):
    """The score's log-likelihood is iwae_bound(iwae_log_weights) on the same samples, and
    a grey pixel's log p(x|z) is the expectation over its binarizations."""
    eager, _ = eager_and_scripted
    x = torch.rand(2, 1, 28, 28)
    torch.manual_seed(1)
    elbo, recon, kl, ll, bits, *_ = eager.score(x, 8)
    torch.manual_seed(1)
    torch.testing.assert_close(ll, iwae_bound(iwae_log_weights(eager, x, 8)))
    torch.testing.assert_close(elbo, recon - kl)
    torch.testing.assert_close(bits, -ll / (784 * math.log(2)))
    logits, grey = torch.randn(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    expected = (grey * F.logsigmoid(logits) + (1 - grey) * F.logsigmoid(-logits)).sum()
    torch.testing.assert_close(bernoulli_log_likelihood(logits, grey), expected.view(1))


def test_percentile_and_typical(eager_and_scripted):
    _, scripted = eager_and_scripted
    table = scripted.score_table
    assert (table[1:] >= table[:-1]).all()
    below, above = table[0] - 1, table[-1] + 1
    torch.testing.assert_close(
        scripted.percentile(torch.stack([below, table[25], above])),
        torch.tensor([0.0, 50.0, 100.0]),
    )


def test_ood_score_is_the_kernel_density_of_its_statistics(eager_and_scripted):
    """ood_score is model.ood's kernel density over (ll, reconstruction, KL, context ll,
    grey share);
    its percentile ranks it in the held-out table, and typical is ood_score >= threshold."""
    from model import ood

    eager, scripted = eager_and_scripted
    x = torch.rand(5, 1, 28, 28)
    torch.manual_seed(2)
    _, recon, kl, ll, _, _, score, percentile, typical = scripted.score(x, 8)
    context = ood.context_log_likelihood(x, scripted.ood_context)
    stats = torch.stack([ll, recon, kl, context, ood.grey_share(x)], 1)
    fitted = (scripted.ood_mean, scripted.ood_whitening, scripted.ood_points)
    torch.testing.assert_close(score, ood.kde_log_density(stats, *fitted, scripted.ood_bandwidth))
    table = scripted.ood_table
    assert (table[1:] >= table[:-1]).all()
    below = (table.unsqueeze(0) < score.unsqueeze(1)).sum(1).float()  # ties apart
    torch.testing.assert_close(percentile, below * 100 / len(table))
    assert torch.equal(typical, score >= scripted.typical_threshold)
    # the threshold is the typical_percentile of the held-out scores it was fitted on
    share = (table >= scripted.typical_threshold).float().mean().item()
    assert 0.95 <= share <= 1.0


def test_fit_mixture_recovers_two_clusters():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(400, 2, generator=generator) * 0.1 + torch.tensor([3.0, 0.0])
    b = torch.randn(200, 2, generator=generator) * 0.3 + torch.tensor([-3.0, 1.0])
    weights, means, tril = fit_mixture(torch.cat([a, b]), 2, 50)
    order = means[:, 0].argsort(descending=True)
    torch.testing.assert_close(weights[order], torch.tensor([2 / 3, 1 / 3]), atol=0.01, rtol=0)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 1.0]])
    torch.testing.assert_close(means[order], centres, atol=0.1, rtol=0)
    stds = torch.diagonal(tril @ tril.transpose(-1, -2), dim1=-2, dim2=-1).sqrt()[order]
    torch.testing.assert_close(stds, torch.tensor([[0.1, 0.1], [0.3, 0.3]]), atol=0.05, rtol=0)


def test_confusion_matrix():
    counts = confusion_matrix(torch.tensor([1, 1, 2, 0]), torch.tensor([1, 2, 2, 0]))
    assert counts[1, 1] == 1 and counts[2, 1] == 1 and counts[2, 2] == 1 and counts[0, 0] == 1
    assert counts.sum() == 4


def test_reexport_keeps_the_vae_weights(tmp_path, eager_and_scripted, tiny_heads_model_file):
    torch.manual_seed(0)
    model = VAE(TINY_CONFIG)
    path = export(model, tiny_card(), tmp_path / "bare.pt")
    loaded, card = load_torchscript_vae(path)
    assert card["latent_dim"] == 4
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    # from a file with heads: only the VAE's own weights come back
    vae, _ = load_torchscript_vae(tiny_heads_model_file)
    assert set(vae.state_dict()) == set(model.state_dict())


def test_evaluation_reads_the_score_outputs_by_name(eager_and_scripted):
    from model.evaluate_heads import auroc, score_all

    _, scripted = eager_and_scripted
    scores = score_all(scripted, torch.rand(6, 1, 28, 28), 8, "test", batch=4)
    assert (scores["log_likelihood"] >= scores["elbo"] - 1e-4).all()  # Jensen
    assert (scores["kl"] >= 0).all()
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5


def test_vae_export_from_torchscript(tmp_path, tiny_model_file, mnist_dir, monkeypatch):
    """The documented re-export: heads fitted (on small data here), card updated, and the
    VAE's spot-check NLL must match the card's, or vae-export refuses."""
    from model import export as export_module
    from model.fit_heads import Digits, OODImages
    from tests.conftest import tiny_digits

    monkeypatch.setattr(
        Digits,
        "load",
        classmethod(
            lambda cls, split, data_dir=None: tiny_digits(200 if split == "train" else 50, 3)
        ),
    )
    monkeypatch.setattr(
        OODImages,
        "mnist",
        classmethod(
            lambda cls, data_dir=None: cls(tiny_digits(200, 4).images, tiny_digits(50, 5).images)
        ),
    )
    out = tmp_path / "re.pt"
    args = ["--out", str(out), "--components", "2", "--score-k", "5", "--data-dir", str(mnist_dir)]
    export_module.main(["--from-torchscript", str(tiny_model_file), "--version", "0.2", *args])
    module, card = artifact.load(out)
    assert capabilities_of(module) == list(CAPABILITIES) and card["version"] == "0.2"
    assert card["re_exported"].startswith("vae-export --from-torchscript")
    assert card["capabilities"]["config"]["n_components"] == 2
    assert "Capabilities fitted at export time" in (tmp_path / "MODEL_CARD.md").read_text()
    first = card["metrics"]["spot_check"]["nll"]

    again = tmp_path / "again.pt"
    export_module.main(["--from-torchscript", str(out), "--out", str(again), *args[2:]])
    assert artifact.load(again)[1]["metrics"]["spot_check"]["nll"] == pytest.approx(first)
    card["metrics"]["spot_check"]["nll"] = first + 1  # as if the weights had changed
    export_module.update_card(out, card)
    with pytest.raises(SystemExit, match="differs from the card"):
        export_module.main(["--from-torchscript", str(out), "--out", str(again), *args[2:]])
