"""Finding the digit in an image (app/digits.py): polarity, background, the no-digit rule at
its edges, and what the routes answer."""

import io

import numpy as np
import pytest
from PIL import Image

from app import digits, imaging
from app.errors import APIError
from tests.conftest import png_bytes

PAPER = 230


def jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def seven(contrast: float = 1.0, background: int = PAPER, ink: int = 20) -> np.ndarray:
    """A 640x480 photo of a '7' (two strokes, 8 px wide); contrast scales ink vs paper."""
    photo = np.full((480, 640), background, dtype=np.float32)
    level = background + contrast * (ink - background)
    photo[150:158, 260:380] = level  # the bar
    for row in range(158, 330):  # the slanted stem
        col = int(372 - (row - 158) * 0.45)
        photo[row, col - 4 : col + 4] = level
    return photo


def no_digit_detail(data: bytes) -> str:
    with pytest.raises(APIError) as e:
        imaging.preprocess(data, 10**7)
    assert (e.value.status, e.value.code) == (422, "no_digit")
    return e.value.detail


def test_dark_ink_photo_becomes_a_white_digit_in_the_box():
    x = imaging.preprocess(jpeg(seven()), 10**7)[0]
    assert x.max() > 0.9 and x[:2].max() == 0  # centred by mass: the bar's weight lifts it
    rows, cols = np.nonzero(x > 0.3)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= digits.BOX + 1


def test_chalk_on_a_board_gives_the_same_digit_as_ink_on_paper():
    ink = imaging.preprocess(jpeg(seven()), 10**7)[0]
    chalk = imaging.preprocess(jpeg(seven(background=50, ink=220)), 10**7)[0]
    assert np.abs(ink - chalk).mean() < 0.03


def test_lighting_gradient_and_noise_do_not_move_the_digit():
    clean = imaging.preprocess(jpeg(seven()), 10**7)[0]
    ramp = np.linspace(1.0, 0.75, 640)[None, :]  # a quarter darker on the right
    noise = np.random.default_rng(0).normal(0, 12, (480, 640))
    x = imaging.preprocess(jpeg(seven() * ramp + noise), 10**7)[0]
    assert np.abs(x - clean).mean() < 0.05


def test_paper_on_a_darker_desk_keeps_only_the_digit():
    photo = np.full((480, 640), 70.0)  # desk
    photo[40:450, 60:600] = seven()[40:450, 60:600]  # the sheet, desk visible around it
    clean = imaging.preprocess(jpeg(seven()), 10**7)[0]
    assert np.abs(imaging.preprocess(jpeg(photo), 10**7)[0] - clean).mean() < 0.03


def test_a_faint_real_digit_passes():
    """Pencil at 12 % of the paper's brightness, with sensor noise, is still a digit."""
    noise = np.random.default_rng(1).normal(0, 4, (480, 640))
    x = imaging.preprocess(jpeg(seven(contrast=0.12) + noise), 10**7)[0]
    assert x.max() > 0.9


@pytest.mark.parametrize(
    ("name", "image", "reason"),
    [
        ("white sheet", np.full((480, 640), PAPER), "blank"),
        ("black frame", np.zeros((480, 640)), "blank"),
        ("mark at 3 % contrast", seven(contrast=0.03), "blank"),
        (
            "noise only",
            PAPER + np.random.default_rng(2).normal(0, 12, (480, 640)),
            "",
        ),
    ],
)
def test_blank_or_near_blank_photos_are_no_digit(name, image, reason):
    assert reason in no_digit_detail(jpeg(image))


def test_a_tap_on_the_demo_canvas_is_no_digit_but_a_short_stroke_is_a_digit():
    canvas = np.zeros((280, 280), dtype=np.uint8)  # the demo's canvas: white pen, 20 px
    ys, xs = np.indices(canvas.shape)
    dot = np.hypot(ys - 140, xs - 140) <= 10
    assert "dot" in no_digit_detail(png_bytes(np.where(dot, 255, canvas)))
    stroke = (np.abs(xs - 140) <= 10) & (np.abs(ys - 140) <= 60)  # a '1', 6x its width
    assert imaging.preprocess(png_bytes(np.where(stroke, 255, canvas)), 10**7).max() > 0.9


@pytest.mark.parametrize("shape", [(1, 2000), (2000, 1), (3, 900)])
def test_very_long_thin_jpegs_are_decoded_reduced_without_failing(shape):
    """JPEGs are decoded reduced (draft); a side that rounds to 0 pixels must not crash."""
    try:
        x = imaging.preprocess(jpeg(np.full(shape, 200.0)), 10**7)
        assert x.shape == (1, 28, 28)
    except APIError as e:
        assert e.code == "no_digit"


def test_28x28_edges_of_the_rule():
    frame = np.zeros((28, 28), dtype=np.uint8)
    frame[14, 14] = 255
    assert "pixel" in no_digit_detail(png_bytes(frame))  # one pixel is not a digit
    frame[4:24, 13:15] = 40  # a faint '1' (16 % of full scale) is one
    assert imaging.preprocess(png_bytes(frame), 10**7).max() > 0.1
    assert "blank" in no_digit_detail(png_bytes(np.full((28, 28), 128)))


def test_28x28_black_on_white_is_inverted():
    frame = np.full((28, 28), 255, dtype=np.uint8)
    frame[4:24, 13:16] = 0
    x = imaging.preprocess(png_bytes(frame), 10**7)[0]
    assert x[10, 14] == 1.0 and x[0, 0] == 0.0


def test_strokes_far_thinner_than_mnist_are_thickened():
    thin = np.zeros((160, 40), dtype=np.float32)  # a cropped '1'
    thin[:, 19:21] = 1.0  # 2 px in 160: 0.25 px in the 20x20 box
    width = digits.stroke_width(digits.fit_box(thin))
    assert digits.MNIST_STROKE_RANGE[0] <= width <= digits.MNIST_STROKE_RANGE[1] + 0.5


# ---------- the routes ----------


def test_encode_says_no_digit_and_why(client):
    r = client.post("/encode", content=jpeg(np.full((480, 640), PAPER)), headers=JPEG)
    assert r.status_code == 422
    assert r.json()["error"] == "no_digit" and "no digit found" in r.json()["detail"]


def test_a_batch_names_the_image_without_a_digit(client, digit_png):
    files = [("file", ("a.png", digit_png, "image/png")), ("file", ("b.png", BLANK, "image/png"))]
    r = client.post("/encode", files=files)
    assert r.status_code == 422 and r.json()["detail"].startswith("image 2 of 2: no digit")


@pytest.mark.parametrize("path", ["/reconstruct", "/interpolate"])
def test_every_image_route_says_no_digit(client, digit_png, path):
    files = [("file", ("a.png", digit_png, "image/png")), ("file", ("b.png", BLANK, "image/png"))]
    r = client.post(path, files=files)
    assert r.status_code == 422 and r.json()["error"] == "no_digit"


def test_encode_include_input_returns_what_the_encoder_saw(client, digit_png):
    photo = jpeg(seven())
    files = [("file", ("a.png", digit_png, "image/png")), ("file", ("b.jpg", photo, "image/jpeg"))]
    r = client.post("/encode?include_input=true", files=files)
    assert r.status_code == 200
    inputs = np.array([result["input"] for result in r.json()])
    assert inputs.shape == (2, 28, 28)
    np.testing.assert_allclose(inputs[1], imaging.preprocess(photo, 10**7)[0], atol=1e-6)
    plain = client.post("/encode", content=digit_png, headers={"content-type": "image/png"})
    assert plain.status_code == 200 and "input" not in plain.json()


def test_include_input_must_be_a_boolean(client, digit_png):
    r = client.post("/encode?include_input=maybe", content=digit_png, headers=PNG)
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameters"


def test_interpolate_uploads_return_both_inputs(client, digit_png):
    files = [("file", ("a.png", digit_png, "image/png")), ("file", ("b.jpg", jpeg(seven()), "x"))]
    r = client.post("/interpolate?steps=3&format=json", files=files)
    assert r.status_code == 200
    assert np.array(r.json()["inputs"]).shape == (2, 28, 28)


JPEG = {"content-type": "image/jpeg"}
PNG = {"content-type": "image/png"}
BLANK = png_bytes(np.zeros((40, 40)))


@pytest.mark.parametrize("size", [1, 2, 784, 999])
def test_quantiles_match_numpy(size):
    values = np.random.default_rng(size).random(size).astype(np.float32)
    qs = (0.0, 0.01, 0.5, 0.9, 0.99, 1.0)
    np.testing.assert_allclose(digits.quantiles(values, *qs), np.quantile(values, qs), rtol=1e-6)
    assert digits.median(values) == pytest.approx(float(np.median(values)), rel=1e-6)
