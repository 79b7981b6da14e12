"""Your own images (model/images.py, vae-train --images, vae-export): folder loading, its
errors, the discretised logistic likelihood, and a tiny run from a folder to a served file."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from app.contract import read_contract
from model import artifact, images
from model import export as export_module
from model import train as train_module
from model.vae import (
    VAE,
    VAEConfig,
    discretised_logistic_log_likelihood,
    iwae_bound,
    iwae_log_weights,
    likelihood_of,
    logistic_mean,
)

COLOURS = {"circle": (220, 40, 40), "square": (40, 160, 60), "triangle": (40, 70, 220)}
TINY = ["--arch", "conv", "--channels", "4", "8", "--conv-hidden", "16", "--latent-dim", "3"]


def shapes_folder(root: Path, per_class: int = 10, size: int = 32, classes: bool = True) -> Path:
    """Coloured shapes on light backgrounds, RGB PNGs: root/<shape>/i.png (or root/i.png)."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        folder = root / name if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(200, 256, 3)))
            r = int(rng.integers(size // 6, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            draw, box = ImageDraw.Draw(image), [cx - r, cy - r, cx + r, cy + r]
            if name == "circle":
                draw.ellipse(box, fill=colour)
            elif name == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
            image.save(folder / f"{name}_{i:03d}.png")
    return root


def grey_png(path: Path, size: tuple[int, int] = (16, 16), value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def test_classes_come_from_the_subfolders_sorted(tmp_path: Path):
    folder = images.load_folder(shapes_folder(tmp_path / "shapes", per_class=3), progress=False)
    assert folder.classes == ["circle", "square", "triangle"]
    assert folder.image_shape == [3, 32, 32] and folder.images.dtype == torch.uint8
    assert folder.labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert folder.class_counts() == {"circle": 3, "square": 3, "triangle": 3}
    unit = folder.unit()
    assert unit.min() >= 0 and unit.max() <= 1 and unit.dtype == torch.float32


def test_grey_images_give_one_channel_and_any_colour_image_three(tmp_path: Path):
    for i in range(3):
        grey_png(tmp_path / "grey" / f"{i}.png", value=40 * i)
    Image.new("RGB", (16, 16), (90, 90, 90)).save(tmp_path / "grey" / "rgb_but_grey.png")
    folder = images.load_folder(tmp_path / "grey", progress=False)
    assert folder.image_shape == [1, 16, 16] and folder.classes == [] and folder.labels is None
    Image.new("RGB", (16, 16), (200, 10, 10)).save(tmp_path / "grey" / "red.jpg", "JPEG")
    folder = images.load_folder(tmp_path / "grey", progress=False)
    assert folder.image_shape == [3, 16, 16]
    grey = folder.images[folder.files.index("1.png")]
    assert (grey == 40).all()  # grey repeated over R, G, B


def test_unreadable_files_are_skipped_and_counted(tmp_path: Path):
    root = shapes_folder(tmp_path / "shapes", per_class=2)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = (root / "square" / "square_000.png").read_bytes()
    (root / "square" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "triangle" / "notes.txt").write_text("not an image")
    Image.new("RGB", (32, 32)).save(root / "triangle" / "picture.bmp")
    (root / "triangle" / ".DS_Store").write_bytes(b"\0")  # hidden: not counted
    folder = images.load_folder(root, progress=False)
    assert len(folder) == 6
    assert sorted(name for name, _ in folder.skipped) == [
        "circle/broken.png", "square/truncated.png", "triangle/notes.txt", "triangle/picture.bmp",
    ]  # fmt: skip


def test_square_resize_crops_the_centre_then_averages(tmp_path: Path):
    pixels = np.zeros((20, 40, 1), np.uint8)
    pixels[:, 10:30] = 200  # the centre square is all 200, the sides 0
    out = images.square_resize(pixels, 10)
    assert out.shape == (10, 10, 1) and (out == 200).all()
    checker = np.indices((8, 8)).sum(0) % 2 * 255  # area resampling: 2x2 means
    assert (images.square_resize(checker[..., None].astype(np.uint8), 4) == 128).all()
    grey_png(tmp_path / "mixed" / "a.png", (40, 20))
    grey_png(tmp_path / "mixed" / "b.png", (16, 16))
    assert images.load_folder(tmp_path / "mixed", 8, progress=False).image_shape == [1, 8, 8]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root.mkdir(), "holds no image files"),
        (lambda root: (root / "only").mkdir(parents=True), "one class folder (only)"),
        (
            lambda root: [grey_png(root / "a.png", (16, 16)), grey_png(root / "b.png", (20, 16))],
            "images of different sizes",
        ),
        (
            lambda root: [root.mkdir(), (root / "a.png").write_text("")],
            "none of the 1 files",
        ),
        (
            lambda root: [grey_png(root / "a" / "1.png"), (root / "b").mkdir()],
            "class folder(s) b",
        ),
    ],
    ids=["empty", "one-class", "mixed-sizes", "all-unreadable", "empty-class"],
)
def test_folder_errors_are_one_line_and_exit_non_zero(tmp_path: Path, make, message, capsys):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(images.FolderError, match=re.escape(message)):
        images.load_folder(root, progress=False)
    with pytest.raises(SystemExit) as exit_info:
        train_module.main(["--images", str(root), "--epochs", "1", "--out", str(tmp_path / "r")])
    text = str(exit_info.value.code)  # sys.exit(str): printed to stderr, exit status 1
    assert text.startswith("vae-train: ") and message in text and "\n" not in text
    assert not (tmp_path / "r").exists()


def test_a_size_the_conv_network_cannot_halve_is_refused(tmp_path: Path):
    grey_png(tmp_path / "odd" / "a.png", (30, 30))
    grey_png(tmp_path / "odd" / "b.png", (30, 30))
    with pytest.raises(SystemExit, match="multiple of 4"):
        train_module.main(["--images", str(tmp_path / "odd"), *TINY, "--out", str(tmp_path / "r")])


def test_discretised_logistic_is_a_distribution_over_256_values():
    """Salimans et al. 2017: the 256 bins' masses sum to 1 for any location and scale, and
    decode's mean (the clipped logistic's) matches the discretised mean."""
    values = (torch.arange(256).float() / 255).view(256, 1, 1, 1)
    for loc, log_scale in [(0.3, -3.0), (-0.2, -1.0), (0.98, -6.0), (0.5, 1.0)]:
        params = torch.tensor([loc, log_scale]).view(1, 2, 1, 1).expand(256, 2, 1, 1)
        p = discretised_logistic_log_likelihood(params, values).exp()
        assert p.sum().item() == pytest.approx(1.0, abs=1e-4)
        mean = logistic_mean(torch.tensor([[[[loc]]]]), torch.tensor([[[[log_scale]]]]))
        assert mean.item() == pytest.approx((p * values.flatten()).sum().item(), abs=2e-3)


def test_train_one_epoch_export_and_serve_the_contract(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = shapes_folder(tmp_path / "shapes")
    (root / "circle" / "broken.jpg").write_bytes(b"\xff\xd8 no jpeg")
    run = tmp_path / "run"
    train_module.main(["--images", str(root), *TINY, "--epochs", "1", "--out", str(run)])
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["dataset"] == "images" and config["model"]["image_shape"] == [3, 32, 32]
    assert config["model"]["likelihood"] == "discretised_logistic"
    assert config["classes"] == ["circle", "square", "triangle"]
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["images"] == 27

    out = tmp_path / "mine.pt"
    export_module.main([str(run / "best.pt"), "--out", str(out), "--score-k", "5"])
    module, card = artifact.load(out)
    assert card["image_shape"] == [3, 32, 32]
    assert card["classes"] == ["circle", "square", "triangle"]
    assert card["preprocessor"] == "resize" and card["likelihood"] == "discretised_logistic"
    assert card["dataset"]["skipped_files"] == 1 and card["dataset"]["n_held_out"] == 3
    assert (tmp_path / "model_card_shapes.json").exists()
    assert "bits/dim" in (tmp_path / "MODEL_CARD_shapes.md").read_text()
    contract = read_contract(module, card)
    assert set(contract.capabilities) == {"score", "classify", "conditional_sampling"}

    x = torch.rand(4, 3, 32, 32)
    mu, sigma = module.encode(x)
    assert mu.shape == sigma.shape == (4, 3) and (sigma > 0).all()
    decoded = module.decode(mu)
    assert decoded.shape == (4, 3, 32, 32) and decoded.min() >= 0 and decoded.max() <= 1
    assert module.reconstruct(x).shape == (4, 3, 32, 32)
    assert module.sample(2).shape == (2, 3, 32, 32)
    assert module.classify(x)[0].shape == (4, 3)
    bits = module.score(x, 4)[4]
    assert torch.isfinite(bits).all() and (bits > 0).all()
    spot = card["metrics"]["spot_check"]
    assert math.isfinite(spot["bits_per_dim"]) and spot["bits_per_dim"] > 0
    # the score is the model's likelihood, the one evaluation uses
    torch.manual_seed(0)
    expected = iwae_bound(iwae_log_weights(module, x, 4, likelihood_of(module)))
    torch.manual_seed(0)
    torch.testing.assert_close(module.score(x, 4)[3], expected)


def test_a_folder_without_classes_exports_the_score_alone(tmp_path: Path):
    root = shapes_folder(tmp_path / "loose", per_class=4, size=16, classes=False)
    run = tmp_path / "run"
    train_module.main(["--images", str(root), *TINY, "--epochs", "1", "--out", str(run)])
    out = tmp_path / "loose.pt"
    export_module.main([str(run / "best.pt"), "--out", str(out), "--score-k", "3"])
    module, card = artifact.load(out)
    assert card["classes"] == [] and card["image_shape"] == [3, 16, 16]
    assert card["capabilities"]["provides"] == ["score"]
    assert not hasattr(module, "classify") and not hasattr(module, "digit_latents")
    assert set(read_contract(module, card).capabilities) == {"score"}


def test_export_refuses_the_shipped_file_as_default_out(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # were it not refused, nothing of the project is written
    root = shapes_folder(tmp_path / "s", per_class=2, size=8, classes=False)
    run = tmp_path / "run"
    train_module.main(["--images", str(root), *TINY, "--epochs", "1", "--out", str(run)])
    with pytest.raises(SystemExit, match="give --out FILE"):
        export_module.main([str(run / "best.pt")])


def test_mnist_layout_is_unchanged():
    """The Bernoulli VAE keeps its parameters and decoder shape (the shipped file's)."""
    model = VAE(VAEConfig())
    assert model.likelihood == "bernoulli"
    assert model.decode_logits(torch.zeros(1, 32)).shape == (1, 1, 28, 28)
