"""The plots of a run are written as real PNG images."""

import json

from PIL import Image

from model.plots import plot_learning_curves, plot_model


def test_model_plots_are_pngs(tiny_model, tmp_path, mnist_dir):
    paths = plot_model(tiny_model, tmp_path, str(mnist_dir))
    assert [p.name for p in paths] == [
        "samples.png",
        "reconstructions.png",
        "latent_space.png",
        "interpolation.png",
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 200


def test_learning_curves(tmp_path):
    metrics = [
        {"epoch": e, "train_loss": 100 - e, "val_elbo": e - 100, "val_kl": 20, "val_recon": e - 80}
        for e in range(1, 6)
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(map(json.dumps, metrics)))
    plot_learning_curves(metrics, tmp_path / "curves.png")
    assert Image.open(tmp_path / "curves.png").format == "PNG"
