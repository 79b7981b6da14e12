"""Your own images as training data: a folder of PNG or JPEG files, grey or colour.

    vae-train --images DIR --image-size 32 --arch conv --out runs/mine

Layout (torchvision's ImageFolder convention): DIR/<class>/<file> gives one class per
subfolder, named after it (sorted; files in deeper folders count for their class); DIR/<file>
with no subfolders gives images without classes. Channels come from the images: C = 1 when
every image is greyscale (mode L, or colour with R = G = B everywhere), else C = 3 (grey
images then repeated over R, G, B). Transparency is laid over black, as the service does
(app/resizing.py: a transparent pixel shows nothing).

Size: with an image size S every image is centre-cropped to a square, then area-resampled to
S x S (OpenCV's INTER_AREA: the mean of the source pixels under each target pixel). That
is `square_resize`, the policy of the service's `resize` preprocessor. Without S all images
must have one size, kept as it is.

A file that is not a readable PNG or JPEG is skipped and counted, never fatal; an empty
folder, mixed sizes without S and a class layout of fewer than 2 classes are a FolderError
with a one-line message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

log = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "F")  # over 8 bits: scaled by the brightest


class FolderError(ValueError):
    """The folder cannot be used for training; the message says why in one line."""


@dataclass
class ImageFolder:
    """The images of a folder, as one uint8 tensor, with their labels and class names."""

    root: str
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor | None  # (N,) int64 class indices; None without classes
    classes: list[str]  # sorted subfolder names; empty without classes
    files: list[str] = field(default_factory=list)  # relative paths, the order of `images`
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> list[int]:
        return list(self.images.shape[1:])

    def unit(self, index: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """Float images in [0, 1], (N, C, H, W): all of them, or those at `index`."""
        images = self.images if index is None else self.images[torch.as_tensor(index)]
        return images.float().div_(255.0)

    def class_counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts, strict=True))


def square_resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> (size, size, C) uint8: the centre square, area-resampled."""
    h, w = pixels.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = pixels[top : top + side, left : left + side]
    if side != size:
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return square.reshape(size, size, pixels.shape[2])  # cv2 drops a last axis of 1


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """A PNG or JPEG file -> ((H, W, 3) uint8 RGB, whether it is greyscale). Raises what
    Pillow raises for an unreadable file, or ValueError for another format."""
    with Image.open(path) as image:
        if image.format not in FORMATS:
            raise ValueError(f"{image.format} is not PNG or JPEG")
        image = ImageOps.exif_transpose(image)  # as the camera held it
        grey = image.mode in GREY_MODES
        if image.mode in WIDE_MODES:
            a = np.asarray(image, dtype=np.float32)
            top = float(a.max()) or 1.0
            image = Image.fromarray(np.round(a / top * 255).astype(np.uint8), mode="L")
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA"):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, "black"), rgba)
        rgb = np.asarray(image.convert("RGB"))
    if not grey:
        grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return rgb, grey


def list_files(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(file, class index or -1) for every non-hidden file, and the class names."""
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder")
    visible = [p for p in sorted(root.iterdir()) if not p.name.startswith(".")]
    folders = [p for p in visible if p.is_dir()]
    if not folders:
        return [(p, -1) for p in visible if p.is_file()], []
    if len(folders) < 2:
        raise FolderError(
            f"{root} has one class folder ({folders[0].name}); a class layout needs 2 or "
            f"more, or put the images directly in {root} to train without classes"
        )
    loose = sum(p.is_file() for p in visible)
    if loose:
        log.warning("%d files directly in %s ignored: it has class folders", loose, root)
    files = []
    for label, folder in enumerate(folders):
        inside = (p for p in sorted(folder.rglob("*")) if p.is_file())
        files += [(p, label) for p in inside if not p.name.startswith(".")]
    return files, [p.name for p in folders]


def load_folder(root: str | Path, image_size: int = 0, progress: bool = True) -> ImageFolder:
    """Every readable image under `root`; `image_size` S > 0: cropped and resized to S x S."""
    root = Path(root)
    files, classes = list_files(root)
    if not files:
        raise FolderError(f"{root} holds no image files (PNG or JPEG)")
    pixels, labels, names, grey, skipped = [], [], [], [], []
    bar = tqdm(files, desc=f"reading {root}", disable=not progress, dynamic_ncols=True)
    for path, label in bar:
        name = str(path.relative_to(root))
        try:
            rgb, is_grey = read_image(path)
        except Exception as e:  # Pillow raises many kinds; a bad file is skipped, never fatal
            skipped.append((name, f"{type(e).__name__}: {e}".splitlines()[0]))
            continue
        if image_size:
            rgb = square_resize(rgb, image_size)
        elif pixels and rgb.shape != pixels[0].shape:
            (h0, w0), (h, w) = pixels[0].shape[:2], rgb.shape[:2]
            raise FolderError(
                f"images of different sizes in {root} ({w0}x{h0}: {names[0]}, {w}x{h}: {name});"
                " give --image-size S to crop and resize them all to S x S"
            )
        pixels.append(rgb)
        labels.append(label)
        names.append(name)
        grey.append(is_grey)
    if skipped:
        log.warning(
            "skipped %d of %d files that are not readable PNG or JPEG images (first: %s: %s)",
            len(skipped), len(files), *skipped[0],
        )  # fmt: skip
    if not pixels:
        raise FolderError(
            f"none of the {len(files)} files in {root} is a readable PNG or JPEG image "
            f"(first: {skipped[0][0]}: {skipped[0][1]})"
        )
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)  # (N, 3, H, W)
    if all(grey):
        images = images[:, :1]
    label_tensor = torch.tensor(labels) if classes else None
    if label_tensor is not None:
        counts = torch.bincount(label_tensor, minlength=len(classes))
        empty = [name for name, n in zip(classes, counts.tolist(), strict=True) if n == 0]
        if empty:
            names_text = ", ".join(empty)
            raise FolderError(f"class folder(s) {names_text} in {root} hold no readable image")
    return ImageFolder(str(root), images.contiguous(), label_tensor, classes, names, skipped)


def split_indices(n: int, val_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices, sorted: a fixed random tenth of the images (at least
    one, at most `val_size`) is held out. The same n and seed give the same split."""
    if n < 2:
        raise FolderError(f"{n} image: training needs 2 or more (one is held out)")
    n_val = min(val_size, max(1, n // 10))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])
