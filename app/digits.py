"""Finding the digit in an image and making it MNIST-like: what the encoder sees.

MNIST digits are white strokes on black, fitted into a 20x20 box and centred by centre of
mass in 28x28 (LeCun et al.). An upload may be anything from such a digit to a phone photo
of ink on paper, so the digit is found first (docs/preprocessing.md shows each step):

1. the image is analysed at most WORK_SIDE pixels on its longer side (area averaging, which
   also averages sensor noise away);
2. polarity: dark ink on paper, or chalk on a board and white-on-black MNIST style:
   whichever side the thin marks that stand out from the local background lie on (if that
   reading finds no digit, the other one is tried, and kept when its digit is central);
3. the background is removed locally (uneven light, shadows, vignetting, a desk around the
   sheet): a morphological opening of the ink-bright image keeps every region wider than
   a stroke, and the top-hat `image - opening` leaves the strokes;
4. ink: the denoised top-hat above a threshold set by the strongest ink and the noise;
5. the digit: the connected component with the most ink, unless it hugs the frame's edge
   (a strip of desk), and the components near it (a 5's detached bar, a 4's broken stroke);
6. no digit (422 `no_digit`) when that ink is too faint, too small, or only a dot;
7. MNIST normalisation: the ink cropped, fitted into 20x20, centred by mass in 28x28.

A 28x28 upload is taken as already normalised: only its polarity is corrected and the
no-digit rule applied.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from app.errors import APIError

SIDE = 28  # MNIST frame
BOX = 20  # the digit's bounding box is fitted into BOX x BOX
WORK_SIDE = 160  # photos are analysed at most this size (px on the longer side)
KERNEL_FRACTION = 1 / 4  # background opening: this share of the longer side (> any stroke)
POLARITY_SIDE = 64  # polarity is judged on a thumbnail this size
MIN_PAPER = 0.35  # darkest paper brightness dark ink is divided by (deep shadow, not desk)
INK_FRACTION = 0.25  # ink: top-hat above this share of the strongest ink...
NOISE_SIGMAS = 4.0  # ...and above this many noise deviations
NEAR = 0.35  # components this close to the main one (share of its size) belong to the digit
MIN_SHARE = 0.03  # ...if they hold at least this share of its ink
SURROUND_ALIKE = 0.25  # a mark whose surround is this much as bright as itself: not ink
ALIKE_STEP = 0.3  # "as bright": within this share of the mark's contrast
LINE_THICKNESS = 0.02  # ruled lines: thinner than this share of the frame, half as long
LINE_WIDTH = 0.15  # a mark spanning the frame and narrower than this share of it: a line
EDGE_CONTACT = 0.35  # a component touching the frame along this share of its box: not ink
# Stroke width in the 20x20 box (2 area / outline; MNIST test set: 5 % 1.5, median 2.25,
# 95 % 3.5): outside MNIST_STROKE_RANGE, strokes are brought to MNIST_STROKE, measured and
# changed on the digit scaled to STROKE_SCALE x the box.
MNIST_STROKE = 2.25
MNIST_STROKE_RANGE = (1.7, 3.0)
STROKE_SCALE = 4
# The no-digit rule (docs/preprocessing.md): the digit's ink must stand out from the
# background by MIN_CONTRAST (of full scale) and by MIN_SNR noise deviations, span at least
# MIN_EXTENT pixels, and be longer than MIN_ELONGATION stroke widths (a dot is ~1).
MIN_CONTRAST = 0.08
MIN_SNR = 4.0
MIN_EXTENT = 4
MIN_ELONGATION = 1.5


@dataclass
class Steps:
    """Intermediate images of one preprocessing, for docs/preprocessing.md (all in [0, 1])."""

    work: np.ndarray  # the analysed image, ink bright
    ink: np.ndarray  # background removed
    digit: np.ndarray  # the kept ink, cropped
    frame: np.ndarray  # the 28x28 model input


def no_digit(detail: str) -> APIError:
    return APIError(422, "no_digit", f"no digit found: {detail}")


def quantiles(values: np.ndarray, *qs: float) -> list[float]:
    """np.quantile's default (linear) estimates of `values` at each q in [0, 1].

    Hand-written because numpy's generic quantile costs ~40 us a call on a 28x28 image
    where the sort costs 3 us: the checks of a 28x28 upload took 480 us with np.percentile
    and np.median, most of the service's per-image work (docs/benchmarks.md).
    """
    ordered = np.sort(values, axis=None)
    last = len(ordered) - 1
    result = []
    for q in qs:
        position = q * last
        below = int(position)
        above = min(below + 1, last)
        low, high = float(ordered[below]), float(ordered[above])
        result.append(low + (high - low) * (position - below))
    return result


def median(values: np.ndarray) -> float:
    return quantiles(values, 0.5)[0]


def ink_is_dark(grey: np.ndarray) -> bool:
    """For a 28x28 image: the median (its background) lies nearer the bright end than the dark
    end of its range."""
    low, middle, high = quantiles(grey, 0.01, 0.5, 0.99)
    return middle - low > high - middle


def ink_is_dark_locally(work: np.ndarray) -> bool:
    """For any image: are the thin marks that stand out from the local background more dark
    than light? The background is a median over a third of the frame (polarity-blind and
    edge-preserving: a shadow or a desk is background); thin marks are those a small
    opening removes (a sheet's rounded corner is a blob, not a stroke); only the middle two
    thirds of the frame vote. Judged on a POLARITY_SIDE thumbnail: fast, noise averaged."""
    h, w = work.shape
    scale = min(1.0, POLARITY_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(work, size, interpolation=cv2.INTER_AREA) if scale < 1 else work
    grey = (small * 255 + 0.5).astype(np.uint8)
    k = max(3, int(min(grey.shape) / 3) | 1)
    marks = grey.astype(np.float32) - cv2.medianBlur(grey, k)
    tail = max(3.0, 3 * noise_sigma(marks))  # grey levels
    thin = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    h, w = marks.shape
    middle = (
        (slice(h // 6, h - h // 6), slice(w // 6, w - w // 6))
        if min(h, w) >= 12
        else (slice(None), slice(None))
    )

    def strength(side: np.ndarray) -> float:
        strokes = cv2.morphologyEx(np.clip(side - tail, 0, None), cv2.MORPH_TOPHAT, thin)
        return float(strokes[middle].sum())

    return strength(-marks) > strength(marks)


def shrink(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape
    scale = WORK_SIDE / max(h, w)
    if scale >= 1:
        return grey
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def remove_background(bright: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top-hat: the image minus its opening (the background) by a square wider than any
    stroke. Dark ink is measured as a share of the paper's local brightness, as it reflects
    a share of the light falling on it: a digit half in a shadow keeps one contrast."""
    k = max(3, int(max(bright.shape) * KERNEL_FRACTION) | 1)
    opened = cv2.morphologyEx(
        bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    )
    ink = bright - opened
    if dark_ink:
        ink = np.clip(ink / np.maximum(1.0 - opened, MIN_PAPER), 0.0, 1.0)
    return without_lines(ink), opened


def without_lines(ink: np.ndarray) -> np.ndarray:
    """The marks less any thin straight horizontal or vertical line longer than half the
    frame (ruled or squared paper, a margin): no stroke of a digit is both that long and
    that thin (under LINE_THICKNESS of the frame, at least 3 px)."""
    h, w = ink.shape
    thin = max(3, round(LINE_THICKNESS * max(h, w)))
    for along, across in (((max(3, w // 2), 1), (1, thin)), ((1, max(3, h // 2)), (thin, 1))):
        rect = cv2.MORPH_RECT
        long = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(rect, along))
        thick = cv2.morphologyEx(long, cv2.MORPH_OPEN, cv2.getStructuringElement(rect, across))
        ink = ink - (long - thick)
    return ink


def noise_sigma(values: np.ndarray) -> float:
    """Robust standard deviation (median absolute deviation) of mostly-background values."""
    sample = values[::2, ::2] if values.size > 4096 else values
    return 1.4826 * median(np.abs(sample - median(sample)))


def edge_contact(labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Per component: its pixels on the frame's outer ring / the perimeter of its box."""
    ring = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    touching = np.bincount(ring, minlength=len(stats)).astype(np.float64)
    perimeter = 2.0 * (stats[:, cv2.CC_STAT_WIDTH] + stats[:, cv2.CC_STAT_HEIGHT])
    return touching / perimeter


def stands_alone(reading: "Reading", labels: np.ndarray, stats: np.ndarray, i: int) -> bool:
    """A mark is surrounded by background; a wedge of paper that the opening cut off beside
    a desk or a shadow is not: much of its surround (2 px out, past a blurred edge) is
    nearly as bright as itself."""
    x, y, w, h = stats[i, :4]
    window = (slice(max(y - 3, 0), y + h + 3), slice(max(x - 3, 0), x + w + 3))
    mark = (labels[window] == i).astype(np.uint8)
    ring = cv2.dilate(mark, np.ones((5, 5), np.uint8)) > cv2.dilate(mark, np.ones((3, 3), np.uint8))
    if not ring.any():
        return True
    bright, inside = reading.bright[window], mark.astype(bool)
    level = median(bright[inside])
    contrast = level - median(reading.background[window][inside])
    alike = bright[ring] > level - ALIKE_STEP * contrast
    return float(alike.mean()) < SURROUND_ALIKE


def frame_lines(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per component: does it run from one edge of the frame to the opposite one while
    narrow across (a ruled line, a margin)? A tightly cropped '1' is wide across its frame."""
    h, w = shape
    x, y, bw, bh = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    across = (x == 0) & (x + bw == w) & (bh < LINE_WIDTH * h)
    down = (y == 0) & (y + bh == h) & (bw < LINE_WIDTH * w)
    return across | down


def digit_mask(reading: "Reading", smooth: np.ndarray, threshold: float) -> np.ndarray:
    """The ink that makes up the digit (bool mask; empty if none).

    Components are taken at half the threshold, so that a desk's texture stays one region
    with the strip that touches the frame; of those holding ink above the threshold and
    standing alone, the main one has the most ink, weighted by how central it is (a photo
    is aimed at the digit); the pieces near it join it.
    """
    strong = smooth > threshold
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(
        (smooth > threshold / 2).astype(np.uint8), connectivity=8
    )
    above = np.clip(smooth - threshold, 0, None)  # a wide faint patch weighs little
    mass = np.bincount(labels.ravel(), weights=above.ravel(), minlength=count)
    mass[0] = 0
    contact = edge_contact(labels, stats)
    mass[contact > EDGE_CONTACT] = 0  # strips of desk or wall
    mass[frame_lines(stats, smooth.shape)] = 0  # ruled paper, a table's edge
    h, w = smooth.shape
    off_centre = np.hypot(centroids[:, 0] / w - 0.5, centroids[:, 1] / h - 0.5) / np.sqrt(0.5)
    weight = mass * np.clip(1 - off_centre**2, 0.1, 1)
    candidates = [i for i in np.argsort(-weight) if mass[i] > 0]
    main = next((i for i in candidates if stands_alone(reading, labels, stats, i)), None)
    if main is None:
        return np.zeros(smooth.shape, bool)
    x, y, bw, bh = stats[main, :4]
    gap = NEAR * max(bw, bh)
    left, top = stats[:, 0], stats[:, 1]
    right, bottom = left + stats[:, 2], top + stats[:, 3]
    near = (right >= x - gap) & (left <= x + bw + gap) & (bottom >= y - gap) & (top <= y + bh + gap)
    # A piece beside the digit that runs into the frame's edge is a shadow's or a sheet's
    # corner, not a stroke.
    keep = near & (mass >= MIN_SHARE * mass[main]) & (contact == 0)
    for i in np.flatnonzero(keep):
        keep[i] = i == main or stands_alone(reading, labels, stats, i)
    keep[main] = True
    return keep[labels] & strong


def check_digit(ink: np.ndarray, mask: np.ndarray, noise: float) -> float:
    """The digit's stroke contrast, or APIError no_digit saying which rule failed."""
    if not mask.any():
        raise no_digit("the image is blank: nothing stands out from its background")
    level = quantiles(ink[mask], 0.9)[0]
    if level < MIN_CONTRAST:
        raise no_digit(
            f"the strongest marks differ from the background by {level:.0%} of full scale; "
            f"at least {MIN_CONTRAST:.0%} is needed"
        )
    if level < MIN_SNR * noise:
        raise no_digit(f"the marks are only {level / noise:.1f}x the image's noise")
    _, _, width, height = cv2.boundingRect(mask.astype(np.uint8))
    extent = max(width, height)
    if extent < MIN_EXTENT:
        raise no_digit(f"the only mark is {extent} pixel(s) across")
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    stroke = 2 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())
    if extent < MIN_ELONGATION * stroke:
        raise no_digit("the only mark is a dot or a blob, not strokes")
    return level


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste `digit` (h, w <= 20) into 28x28 so that its centre of mass lands in the middle."""
    h, w = digit.shape
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    cy = (ys * digit).sum() / total if total > 0 else (h - 1) / 2
    cx = (xs * digit).sum() / total if total > 0 else (w - 1) / 2
    top = int(np.clip(round(SIDE / 2 - 0.5 - cy), 0, SIDE - h))
    left = int(np.clip(round(SIDE / 2 - 0.5 - cx), 0, SIDE - w))
    frame = np.zeros((SIDE, SIDE), dtype=np.float32)
    frame[top : top + h, left : left + w] = digit
    return frame


def fit_box(digit: np.ndarray) -> np.ndarray:
    """The cropped digit scaled (aspect kept) so its longer side is BOX pixels, its strokes
    brought to MNIST's width first when they are far thinner or thicker."""
    digit = even_strokes(resize_longer(digit, STROKE_SCALE * BOX))
    return np.clip(resize_longer(digit, BOX), 0.0, 1.0)


def resize_longer(image: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(image.shape)
    h, w = (max(1, round(s * scale)) for s in image.shape)
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=method)


def stroke_width(digit: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the area over the outline's length (a strip of
    width w and length L has area wL and outline ~2L)."""
    mask = (digit > 0.5 * digit.max()).astype(np.uint8)  # a bool mask too
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(mask.sum()) / outline if outline > 0 else 0.0


def even_strokes(digit: np.ndarray) -> np.ndarray:
    """Dilate strokes thinner than MNIST's usual range, erode thicker ones (grey morphology),
    to MNIST's median width (2.25 px in the 20x20 box, measured on the test set)."""
    width = stroke_width(digit) / STROKE_SCALE
    if MNIST_STROKE_RANGE[0] <= width <= MNIST_STROKE_RANGE[1] or width == 0:
        return digit
    radius = round(abs(MNIST_STROKE - width) * STROKE_SCALE / 2)
    if radius == 0:
        return digit
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    op = cv2.dilate if width < MNIST_STROKE else cv2.erode
    return op(digit, kernel)


def mnist_frame(grey: np.ndarray) -> np.ndarray:
    """A 28x28 upload: white-on-black as MNIST (inverted if its ink is dark), or no_digit."""
    x = 1.0 - grey if ink_is_dark(grey) else grey
    ink = np.clip(x - median(x), 0.0, 1.0)
    check_digit(ink, ink > INK_FRACTION * float(ink.max()), noise_sigma(ink))
    return x


@dataclass
class Reading:
    """The image read with one polarity: ink bright, background removed, the digit's mask."""

    bright: np.ndarray  # the analysed image, ink bright
    background: np.ndarray  # its opening
    ink: np.ndarray  # the marks on it
    threshold: float = 0.0
    noise: float = 0.0
    mask: np.ndarray | None = None


def read_ink(work: np.ndarray, dark_ink: bool) -> Reading:
    bright = 1.0 - work if dark_ink else work
    reading = Reading(bright, *reversed(remove_background(bright, dark_ink)))
    smooth = cv2.GaussianBlur(reading.ink, (3, 3), 0)
    reading.noise = noise_sigma(smooth)
    reading.threshold = max(
        INK_FRACTION * float(smooth.max()), NOISE_SIGMAS * reading.noise, 0.5 * MIN_CONTRAST
    )
    reading.mask = digit_mask(reading, smooth, reading.threshold)
    return reading


def central(mask: np.ndarray) -> bool:
    """The mask is not empty and its centre lies in the middle three fifths of the frame."""
    if not mask.any():
        return False
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return bool(abs(ys.mean() / h - 0.5) < 0.3 and abs(xs.mean() / w - 0.5) < 0.3)


def find_digit(grey: np.ndarray) -> Steps:
    """(H, W) in [0, 1], any size -> every step to the 28x28 input; APIError no_digit."""
    work = shrink(grey)
    dark_ink = ink_is_dark_locally(work)
    reading = read_ink(work, dark_ink)
    if not reading.mask.any():  # the vote can be misled (a light desk around a dark board)
        other = read_ink(work, not dark_ink)
        if central(other.mask):  # ...but a sheet's edge read the other way is not a digit
            reading = other
    ink, mask, threshold = reading.ink, reading.mask, reading.threshold
    level = check_digit(ink, mask, reading.noise)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    near_strokes = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))[box] > 0
    floor = threshold / 2  # the paper's grain and noise are 0, as MNIST's background is
    digit = np.clip((ink[box] - floor) / max(level - floor, 1e-6), 0.0, 1.0) * near_strokes
    return Steps(reading.bright, ink, digit, centre_by_mass(fit_box(digit)))


def mnist_like(grey: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (28, 28) float32, white digit on black as MNIST; APIError no_digit."""
    if grey.shape == (SIDE, SIDE):
        return mnist_frame(grey)
    return find_digit(grey).frame
