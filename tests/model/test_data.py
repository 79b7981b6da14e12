"""The IDX reader, checksum checks, download from a file:// mirror, splits and binarization."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from model import data
from model.data import IdxFile, MNISTError, parse_idx, read_idx_file


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


def spec_for(raw: bytes, shape: tuple[int, ...], name: str = "imgs") -> IdxFile:
    return IdxFile(name, hashlib.sha256(raw).hexdigest(), shape)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_good_file_plain_and_gzip(tmp_path: Path, images: np.ndarray, compress: bool):
    raw = idx_bytes(images)
    path = tmp_path / ("imgs.gz" if compress else "imgs")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    array = read_idx_file(path, spec_for(raw, images.shape))
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, images)


def test_truncated_file_names_file_and_problem(tmp_path: Path, images: np.ndarray):
    path = tmp_path / "imgs"
    path.write_bytes(idx_bytes(images)[:-100])
    with pytest.raises(MNISTError, match=r"imgs.*truncated"):
        read_idx_file(path)


def test_truncated_gzip_stream(tmp_path: Path, images: np.ndarray):
    path = tmp_path / "imgs.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:-50])
    with pytest.raises(MNISTError, match="imgs.gz"):
        read_idx_file(path)


def test_wrong_magic(tmp_path: Path, images: np.ndarray):
    raw = bytearray(idx_bytes(images))
    raw[2] = 0x0D  # float type code instead of uint8
    path = tmp_path / "imgs"
    path.write_bytes(bytes(raw))
    with pytest.raises(MNISTError, match="magic"):
        read_idx_file(path)


def test_wrong_checksum(tmp_path: Path, images: np.ndarray):
    raw = idx_bytes(images)
    path = tmp_path / "imgs"
    path.write_bytes(raw)
    bad = IdxFile("imgs", "0" * 64, images.shape)
    with pytest.raises(MNISTError, match="SHA-256"):
        read_idx_file(path, bad)


def test_wrong_item_count(tmp_path: Path, images: np.ndarray):
    raw = idx_bytes(images)
    path = tmp_path / "imgs"
    path.write_bytes(raw)
    with pytest.raises(MNISTError, match="shape"):
        read_idx_file(path, spec_for(raw, (6, 28, 28)))


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(MNISTError, match="t10k-images-idx3-ubyte.*not found"):
        data.load_mnist("test", tmp_path)


def test_parse_rejects_short_input():
    with pytest.raises(MNISTError, match="too short"):
        parse_idx(b"\x00\x00")


def test_real_test_set_loads_and_verifies(mnist_dir: Path):
    images, labels = data.load_mnist("test", mnist_dir)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert images.dtype == np.uint8 and set(np.unique(labels)) == set(range(10))


def test_download_from_file_mirror_with_fallback(tmp_path: Path, monkeypatch, images: np.ndarray):
    """The first mirror is dead, the second (file://) holds the files: all arrive verified."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    specs = {}
    for key, spec in data.MNIST_FILES.items():
        raw = idx_bytes(images if "images" in key else images[:, 0, 0])
        (mirror / f"{spec.name}.gz").write_bytes(gzip.compress(raw))
        specs[key] = IdxFile(spec.name, hashlib.sha256(raw).hexdigest(), parse_idx(raw).shape)
    monkeypatch.setattr(data, "MNIST_FILES", specs)
    dead = (tmp_path / "nowhere").as_uri() + "/"
    target = tmp_path / "dl"
    data.download_mnist(target, mirrors=(dead, mirror.as_uri() + "/"))
    got, _ = data.load_mnist("train", target)
    np.testing.assert_array_equal(got, images)


def test_download_rejects_corrupt_mirror(tmp_path: Path, monkeypatch, images: np.ndarray):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    name = "train-images-idx3-ubyte"
    (mirror / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(images)))
    monkeypatch.setattr(
        data, "MNIST_FILES", {"train-images": IdxFile(name, "f" * 64, images.shape)}
    )
    with pytest.raises(MNISTError, match="every mirror failed"):
        data.download_mnist(tmp_path / "dl", mirrors=(mirror.as_uri(),))
    assert not (tmp_path / "dl" / f"{name}.gz").exists()


def test_split_is_seeded_and_disjoint():
    x = np.arange(100)
    (a, _), (b, _) = data.split_train_val(x, x, val_size=10, seed=1)
    (a2, _), (b2, _) = data.split_train_val(x, x, val_size=10, seed=1)
    assert len(a) == 90 and len(b) == 10 and not set(a) & set(b)
    np.testing.assert_array_equal(b, b2)


def test_binarization_dynamic_vs_fixed():
    x = torch.full((2, 1, 28, 28), 0.5)
    fixed = data.fixed_binarization(x, seed=3)
    assert torch.equal(fixed, data.fixed_binarization(x, seed=3))
    assert set(fixed.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(data.binarize(x), data.binarize(x))
    assert 0.4 < data.binarize(torch.full((100, 1, 28, 28), 0.5)).mean() < 0.6
