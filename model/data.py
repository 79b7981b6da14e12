"""MNIST from its four IDX files: reading, checksum verification, download, splits, binarization.

The IDX format (http://yann.lecun.com/exdb/mnist/) is a big-endian header -- two zero
bytes, a type code (0x08 = uint8) and the number of dimensions -- followed by one
uint32 per dimension and the raw data. Files may be gzip-compressed; the SHA-256
values below are those of the *decompressed* bytes, so any gzip stream of the right
content verifies.

    python -m model.data --data-dir ~/mnist --download   # fetch and verify
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import os
import shutil
import struct
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdxFile:
    name: str  # file name without .gz
    sha256: str  # of the decompressed IDX bytes
    shape: tuple[int, ...]  # expected dimensions


# Known-good checksums of the decompressed files (same as ../shared/data/mnist/SHA256SUMS).
MNIST_FILES: dict[str, IdxFile] = {
    "train-images": IdxFile(
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    "train-labels": IdxFile(
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    "test-images": IdxFile(
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    "test-labels": IdxFile(
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
}

# Public mirrors, tried in order; each holds the four files as <name>.gz.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

DEFAULT_DATA_DIR = "data/mnist"
UINT8_TYPE = 0x08


class MNISTError(ValueError):
    """A missing, truncated or corrupted MNIST file; the message names the file."""


def data_dir_from_env(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir` if given, else $MNIST_DIR, else ./data/mnist."""
    return Path(data_dir or os.environ.get("MNIST_DIR") or DEFAULT_DATA_DIR)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise MNISTError(f"{path}: cannot read ({e})") from e


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking the header against the payload size."""
    if len(data) < 4:
        raise MNISTError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != UINT8_TYPE or not 1 <= ndim <= 4:
        raise MNISTError(f"{source}: bad magic number 0x{data[:4].hex()} (expected 0x0000080N)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTError(f"{source}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise MNISTError(
            f"{source}: header says {shape} ({expected} bytes of data) "
            f"but the file holds {len(data) - header} (truncated or padded)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def find_file(data_dir: Path, name: str) -> Path:
    """The .gz file if present, else the plain one."""
    for candidate in (data_dir / f"{name}.gz", data_dir / name):
        if candidate.exists():
            return candidate
    raise MNISTError(f"{data_dir / name}[.gz]: file not found (set MNIST_DIR or --data-dir)")


def read_idx_file(path: Path, spec: IdxFile | None = None, verify: bool = True) -> np.ndarray:
    """Read one IDX file; with `spec`, check its SHA-256 and shape against the known values."""
    data = _read_bytes(path)
    if spec is not None and verify:
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            raise MNISTError(f"{path}: SHA-256 {digest} does not match the known {spec.sha256}")
    array = parse_idx(data, str(path))
    if spec is not None and array.shape != spec.shape:
        raise MNISTError(f"{path}: shape {array.shape}, expected {spec.shape}")
    return array


def load_mnist(
    split: str, data_dir: str | os.PathLike | None = None, verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) and labels (N,), uint8, for split 'train' or 'test'."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = data_dir_from_env(data_dir)
    images, labels = (
        read_idx_file(find_file(root, MNIST_FILES[key].name), MNIST_FILES[key], verify)
        for key in (f"{split}-images", f"{split}-labels")
    )
    return images, labels


def download_mnist(data_dir: str | os.PathLike, mirrors: tuple[str, ...] = MIRRORS) -> Path:
    """Fetch the four .gz files into `data_dir`, trying each mirror in turn; verify checksums.

    Files already present and valid are kept. Works with file:// mirrors too.
    """
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    for spec in MNIST_FILES.values():
        target = root / f"{spec.name}.gz"
        if target.exists():
            try:
                read_idx_file(target, spec)
                continue
            except MNISTError:
                log.warning("%s is invalid, downloading it again", target)
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{spec.name}.gz"
            try:
                _fetch(url, target, spec)
                log.info("downloaded %s", url)
                break
            except (OSError, MNISTError) as e:
                errors.append(f"{url}: {e}")
        else:
            raise MNISTError(f"{spec.name}: every mirror failed:\n  " + "\n  ".join(errors))
    return root


def _fetch(url: str, target: Path, spec: IdxFile) -> None:
    """Download to a temporary file, verify it, then move it into place."""
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".gz", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                shutil.copyfileobj(response, tmp)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    try:
        read_idx_file(tmp_path, spec)
    except MNISTError:
        tmp_path.unlink(missing_ok=True)
        raise
    tmp_path.replace(target)


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) intensities in [0, 1]."""
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1)


def split_train_val(
    images: np.ndarray, labels: np.ndarray, val_size: int = 5000, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A seeded random split of the training set into (train, validation)."""
    order = np.random.default_rng(seed).permutation(len(images))
    val, train = order[:val_size], order[val_size:]
    return (images[train], labels[train]), (images[val], labels[val])


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel ~ Bernoulli(intensity)."""
    return torch.bernoulli(x, generator=generator)


def fixed_binarization(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The same binary images on every call: the evaluation protocol for test/validation sets."""
    return binarize(x, torch.Generator().manual_seed(seed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Verify (and optionally download) MNIST.")
    parser.add_argument("--data-dir", default=None, help="default: $MNIST_DIR or ./data/mnist")
    parser.add_argument("--download", action="store_true", help="fetch missing files first")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = data_dir_from_env(args.data_dir)
    if args.download:
        download_mnist(root)
    for split in ("train", "test"):
        images, labels = load_mnist(split, root)
        print(f"{split}: {images.shape[0]} images {images.shape[1:]}, checksums OK")


if __name__ == "__main__":
    main()
