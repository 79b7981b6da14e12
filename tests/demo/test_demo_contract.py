"""The demo page follows the served model's contract (GET /model) for models that are not
MNIST's: a tiny 1x64x64 shapes model (dSprites' classes, preprocessor "resize") gets a canvas
of its aspect, its class names in the selector and the classifier's bars, 64x64 images, no
"digit" in its texts and a pad over the two dimensions of largest KL its card lists; a tiny
3x32x32 model gets a pen colour, and what its encoder saw is shown in colour. The MNIST
page's own tests are in test_demo_page.py.
"""

import json

from tests.demo.conftest import SHAPES, SHIPPED_DSPRITES, Server
from tests.demo.test_demo_page import draw_digit, loaded, natural_width, requests_to, widths


def heights(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalHeight)")


def test_a_shapes_model_gets_its_size_classes_and_texts(page, shapes_server: Server) -> None:
    loaded(page, shapes_server)
    assert widths(page, "#sample-grid img") == [64] * 16
    assert heights(page, "#sample-grid img") == [64] * 16
    assert natural_width(page, "#pad-image") == 64
    canvas = page.eval_on_selector("#canvas", "c => [c.width, c.height]")
    assert canvas == [256, 256], canvas  # 4 canvas pixels per model pixel
    assert page.is_hidden("#pen-choice")  # grey: white on black
    # The class selector: the model's names, sent by name.
    assert page.inner_text("#class-choice").startswith("Class")
    options = page.eval_on_selector_all("#sample-class option", "os => os.map(o => o.text)")
    assert options == ["any", *SHAPES]
    sent = requests_to(page, "/sample")
    page.select_option("#sample-class", "heart")
    page.wait_for_function("document.getElementById('sample-note').textContent.includes('heart')")
    assert "class heart" in page.inner_text("#sample-note")
    assert any("class=heart" in url for url in sent), sent
    assert widths(page, "#sample-grid img") == [64] * 16
    # Texts: the model's images, never a digit.
    assert page.title() == "vae-serve · VAE demo"
    subject = page.inner_text("#subject")
    assert (
        subject == "A variational autoencoder for 64×64 greyscale images (square, ellipse, heart)."
    )
    assert "digit" not in page.inner_text("body").lower()
    assert page.get_attribute("#sample-grid", "aria-label") == "sampled images"
    # The pad: the card's two dimensions of largest KL (tests/demo/conftest.py SHAPES_DIMS).
    assert page.inner_text("#axis-x") == "z2 →" and page.inner_text("#axis-y") == "z0 ↑"
    assert page.errors == []


def test_a_drawing_is_encoded_with_the_shapes_models_classes(page, shapes_server: Server) -> None:
    loaded(page, shapes_server)
    draw_digit(page)
    page.wait_for_selector("#classify-panel:not([hidden])")
    page.wait_for_function("document.getElementById('reconstruction').naturalWidth > 0")
    assert (
        natural_width(page, "#input-image") == 64 and natural_width(page, "#reconstruction") == 64
    )
    assert page.inner_text("#predicted") in SHAPES
    names = page.eval_on_selector_all("#probabilities .name", "ns => ns.map(n => n.textContent)")
    assert names == SHAPES
    assert "% of its held-out test images" in page.inner_text("#typicality")
    assert page.inner_text("#selected-label") == "your drawing"
    assert page.errors == []


def test_an_rgb_model_gets_its_size_and_a_pen_colour(page, rgb_server: Server) -> None:
    loaded(page, rgb_server)
    assert widths(page, "#sample-grid img") == [32] * 16
    assert page.eval_on_selector("#canvas", "c => [c.width, c.height]") == [256, 256]
    assert "32×32 colour images (red, green, blue)" in page.inner_text("#subject")
    assert page.is_visible("#pen-choice")
    page.fill("#pen-colour", "#ff0000")
    canvas = page.locator("#canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()  # the pen stays down: nothing is sent to the service
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=8)
    pixel = page.evaluate("""() => {
        const c = document.getElementById('canvas');
        return [...c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data];
    }""")
    assert pixel == [255, 0, 0, 255], pixel
    assert page.errors == []


def test_an_rgb_drawing_shows_what_the_encoder_saw_in_colour(page, rgb_server: Server) -> None:
    loaded(page, rgb_server)
    page.fill("#pen-colour", "#ff0000")
    draw_digit(page)
    page.wait_for_selector("#input-image[src], #message:not([hidden])")
    assert page.is_hidden("#message"), page.inner_text("#message")
    assert natural_width(page, "#input-image") == 32
    # What the encoder saw is red where the pen went: the top bar of the stroke.
    pixel = page.evaluate("""() => {
        const img = document.getElementById('input-image');
        const c = document.createElement('canvas'); c.width = c.height = 32;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return [...ctx.getImageData(16, 6, 1, 1).data];
    }""")
    assert pixel[0] > 200 and pixel[1] < 50 and pixel[2] < 50, pixel


def test_the_shipped_dsprites_model_gets_its_page(page, dsprites_server: Server) -> None:
    """The second shipped model, served unchanged: 64x64 sprites, its shape classes, and the
    pad over the two dimensions of largest KL its card lists."""
    loaded(page, dsprites_server)
    assert widths(page, "#sample-grid img") == [64] * 16
    options = page.eval_on_selector_all("#sample-class option", "os => os.map(o => o.text)")
    assert options == ["any", *SHAPES]
    card = json.loads(SHIPPED_DSPRITES.with_name("model_card_dsprites.json").read_text())
    first, second = sorted(card["evaluation"]["dims"], key=lambda d: -d["kl"])[:2]
    assert page.inner_text("#axis-x") == f"z{first['dim']} →"
    assert page.inner_text("#axis-y") == f"z{second['dim']} ↑"
    draw_digit(page)
    page.wait_for_selector("#classify-panel:not([hidden])")
    assert page.inner_text("#predicted") in SHAPES
    assert "digit" not in page.inner_text("body").lower()
    assert page.errors == []
