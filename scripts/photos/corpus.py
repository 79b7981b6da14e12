"""A photo corpus made from MNIST test digits: each digit rendered as ink on paper, as a phone
would photograph it, under a named condition (or a few hand-made real-looking scenes).

    from scripts.photos.corpus import CONDITIONS, photo
    jpeg = photo(digit_28x28_uint8, "paper on a desk", np.random.default_rng(0))

Only for measuring the service's preprocessing (scripts/photos/recovery.py); never train on it.
Every photo is a 640x480 colour JPEG (quality 90 unless the condition says otherwise).
"""

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
CONDITIONS = (
    "even light",
    "lighting gradient",
    "paper on a desk",
    "sensor noise",
    "blur + JPEG",
    "rotation",
    "thin strokes",
    "thick strokes",
    "chalk on a board",
    "mixed",
)
HAND_MADE = ("lined notebook", "hard shadow", "faint pencil", "sticky note")
INKS = np.array([[20, 25, 30], [30, 40, 120], [25, 30, 80], [110, 25, 30]], np.float32)  # RGB


def ink_alpha(digit: np.ndarray, size: int, stroke: str, angle: float) -> np.ndarray:
    """(28, 28) uint8 -> (size, size) float32 coverage in [0, 1], strokes thinned/thickened
    and rotated by `angle` degrees."""
    up = cv2.resize(digit.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_CUBIC)
    alpha = np.clip((up - 0.25) / 0.5, 0, 1)
    unit = size / 28  # one MNIST pixel, in photo pixels (MNIST strokes are ~2.5 of them)
    if stroke != "normal":
        radius = max(1, round(unit * (0.8 if stroke == "thin" else 0.6)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
        op = cv2.erode if stroke == "thin" else cv2.dilate
        thinned = op(alpha, kernel)
        # A digit too thin to survive erosion keeps a 1-pixel pen line instead of vanishing.
        alpha = thinned if stroke == "thick" or thinned.sum() > 0.2 * alpha.sum() else alpha
    if angle:
        turn = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0)
        alpha = cv2.warpAffine(alpha, turn, (size, size), flags=cv2.INTER_LINEAR)
    return alpha


def place(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's coverage at a random spot near the middle of an empty frame."""
    size = alpha.shape[0]
    frame = np.zeros((HEIGHT, WIDTH), np.float32)
    top = int(np.clip((HEIGHT - size) / 2 + rng.uniform(-0.12, 0.12) * HEIGHT, 0, HEIGHT - size))
    left = int(np.clip((WIDTH - size) / 2 + rng.uniform(-0.15, 0.15) * WIDTH, 0, WIDTH - size))
    frame[top : top + size, left : left + size] = alpha
    return frame


def smooth_noise(rng: np.random.Generator, cells: int, amount: float) -> np.ndarray:
    """Low-frequency texture (paper fibres, board smudges): 1 +- amount."""
    coarse = rng.uniform(-1, 1, (cells * 3 // 4 + 1, cells + 1)).astype(np.float32)
    return 1 + amount * cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def ramp(rng: np.random.Generator, drop: float) -> np.ndarray:
    """Light falling off by `drop` across the frame in a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    t = xs * np.cos(theta) + ys * np.sin(theta)
    t = (t - t.min()) / (t.max() - t.min())
    return (1 - drop * t)[..., None]


def paper_mask(rng: np.random.Generator) -> np.ndarray:
    """A sheet covering the middle of the frame, slightly turned, desk visible around it."""
    w, h = rng.uniform(0.7, 0.85) * WIDTH, rng.uniform(0.75, 0.9) * HEIGHT
    centre = (WIDTH / 2 + rng.uniform(-30, 30), HEIGHT / 2 + rng.uniform(-20, 20))
    corners = cv2.boxPoints((centre, (w, h), rng.uniform(-8, 8))).astype(np.int32)
    mask = np.zeros((HEIGHT, WIDTH), np.float32)
    cv2.fillConvexPoly(mask, corners, 1.0, lineType=cv2.LINE_AA)
    return mask[..., None]


def jpeg(image: np.ndarray, quality: int) -> bytes:
    rgb = np.clip(image, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def photo(digit: np.ndarray, condition: str, rng: np.random.Generator) -> bytes:
    """A 640x480 JPEG of `digit` (28x28 uint8, MNIST) under `condition`."""
    if condition in HAND_MADE:
        return hand_made(digit, condition, rng)
    mixed = condition == "mixed"
    stroke = {"thin strokes": "thin", "thick strokes": "thick"}.get(condition, "normal")
    if mixed:
        stroke = rng.choice(["thin", "normal", "thick"])
    chalk = condition == "chalk on a board" or (mixed and rng.random() < 0.25)
    angle = rng.uniform(-15, 15) if condition in ("rotation", "mixed") else 0.0
    size = int(rng.uniform(0.35, 0.6) * HEIGHT)
    alpha = place(ink_alpha(digit, size, stroke, angle), rng)[..., None]
    if chalk:  # grainy light chalk on a dark board
        background = np.array([45, 62, 50], np.float32) * rng.uniform(0.8, 1.2)
        ink = np.array([228, 228, 218], np.float32)
        alpha = alpha * np.clip(rng.normal(0.8, 0.2, alpha.shape), 0.3, 1).astype(np.float32)
    else:
        background = np.array([238, 234, 224], np.float32) * rng.uniform(0.92, 1.0)
        ink = INKS[rng.integers(len(INKS))]
    surface = background * smooth_noise(rng, 6, 0.02)[..., None]
    image = surface * (1 - alpha) + ink * alpha
    if condition in ("paper on a desk", "mixed"):
        desk = np.array([92, 70, 50], np.float32) * smooth_noise(rng, 12, 0.15)[..., None]
        if chalk:
            desk = np.array([200, 196, 190], np.float32) * smooth_noise(rng, 8, 0.05)[..., None]
        sheet = paper_mask(rng)
        image = image * sheet + desk * (1 - sheet)
    if condition in ("lighting gradient", "mixed"):
        image = image * ramp(rng, 0.2)
    if condition in ("blur + JPEG", "mixed"):
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 2.0))
    if condition in ("sensor noise", "mixed"):
        image = image + rng.normal(0, 12, image.shape).astype(np.float32)
    quality = int(rng.integers(15, 30)) if condition in ("blur + JPEG", "mixed") else 90
    return jpeg(image, quality)


def hand_made(digit: np.ndarray, scene: str, rng: np.random.Generator) -> bytes:
    """Scenes a phone photo often has: ruled paper, a sharp shadow, pencil, a sticky note."""
    size = int(rng.uniform(0.35, 0.55) * HEIGHT)
    stroke = "thick" if scene == "sticky note" else "normal"
    alpha = place(ink_alpha(digit, size, stroke, rng.uniform(-8, 8)), rng)[..., None]
    paper = np.array([240, 238, 232], np.float32) * smooth_noise(rng, 6, 0.02)[..., None]
    ink = np.array([30, 40, 120], np.float32)
    if scene == "lined notebook":  # pale blue rules every 32 px and a red margin
        rules, margin = np.zeros((2, HEIGHT, WIDTH), np.float32)
        rules[int(rng.integers(0, 32)) :: 32] = 0.6
        margin[:, int(rng.uniform(60, 100))] = 0.7
        for lines, colour in ((rules, [150, 180, 225]), (margin, [220, 90, 90])):
            cover = cv2.GaussianBlur(lines, (0, 0), 0.8)[..., None]
            paper = paper * (1 - cover) + np.float32(colour) * cover
    if scene == "faint pencil":  # grey graphite, only ~25 % darker than the paper
        ink = paper.mean(axis=(0, 1)) * 0.72
        alpha = alpha * np.clip(rng.normal(0.85, 0.15, alpha.shape), 0.4, 1).astype(np.float32)
    if scene == "sticky note":  # black marker on a yellow square on a grey desk
        paper = np.full((HEIGHT, WIDTH, 3), [170, 170, 165], np.float32)
        note = np.zeros((HEIGHT, WIDTH), np.float32)
        cv2.rectangle(note, (120, 40), (520, 440), 1.0, -1)
        paper = paper * (1 - note[..., None]) + np.float32([250, 232, 120]) * note[..., None]
        ink = np.float32([15, 15, 15])
    image = paper * (1 - alpha) + ink * alpha
    if scene == "hard shadow":  # a phone's shadow: a sharp half-plane 45 % darker
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        slope, offset = rng.uniform(-1, 1), rng.uniform(0.3, 0.7) * WIDTH
        shade = ((xs - offset - slope * (ys - HEIGHT / 2)) > 0).astype(np.float32)
        shade = cv2.GaussianBlur(shade, (0, 0), 3)[..., None]
        image = image * (1 - 0.45 * shade)
    image = image * ramp(rng, 0.1) + rng.normal(0, 4, image.shape).astype(np.float32)
    return jpeg(image, 85)
