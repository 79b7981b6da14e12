"""The demo page at / in headless Chromium against a real server: samples render, a drawn
digit or an uploaded photo is reconstructed and encoded (one request), "no digit found" is
said, the predicted digit and its typicality show where the model can tell them, the digit
selector (the model's class names) samples one digit, interpolation and the latent pad
decode, errors show. A model other than MNIST's: test_demo_contract.py.

SAVE_SCREENSHOTS=1 also writes docs/img/demo.png and docs/img/demo-phone.png.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from scripts.photos.corpus import photo
from tests.demo.conftest import LAPTOP, PHONE, Server

IMAGES_DIR = Path(__file__).resolve().parents[2] / "docs" / "img"


def loaded(page, server: Server) -> None:
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#sample-grid img').length === 16")
    page.wait_for_function("document.getElementById('pad-image').naturalWidth > 0")


def draw_digit(page, dx: int = 0) -> None:
    """A mouse stroke shaped like a 7 on the drawing canvas."""
    canvas = page.locator("#canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x0, y0, w = box["x"], box["y"], box["width"]
    path = [(0.25, 0.2), (0.75, 0.2), (0.55, 0.5), (0.4, 0.85)]
    page.mouse.move(x0 + path[0][0] * w + dx, y0 + path[0][1] * w)
    page.mouse.down()
    for fx, fy in path[1:]:
        page.mouse.move(x0 + fx * w + dx, y0 + fy * w, steps=8)
    page.mouse.up()


def natural_width(page, selector: str) -> int:
    return page.eval_on_selector(selector, "img => img.naturalWidth")


def widths(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")


def new_samples(page, seed: str, temperature: str) -> list[str]:
    """Ask for samples with these controls; the data URLs of the images shown."""
    page.fill("#seed", seed)
    page.fill("#temperature", temperature)
    page.click("text=New samples")
    note = f"Seed {seed}, temperature {temperature}."
    page.wait_for_function(f"document.getElementById('sample-note').textContent.includes({note!r})")
    return page.eval_on_selector_all("#sample-grid img", "imgs => imgs.map(i => i.src)")


def test_page_loads_with_sample_images_and_no_errors(page, server: Server) -> None:
    loaded(page, server)
    assert widths(page, "#sample-grid img") == [28] * 16
    assert f"{server.latent_dim} latent dimensions" in page.inner_text("#model-info")
    assert page.is_hidden("#message")
    assert page.errors == []


def test_seed_and_temperature_controls(page, server: Server) -> None:
    loaded(page, server)
    first = new_samples(page, "7", "1")
    at_zero = new_samples(page, "7", "0")  # every z is 0: sixteen equal images
    assert len(set(at_zero)) == 1 and at_zero[0] not in first
    assert new_samples(page, "7", "1") == first
    assert page.errors == []


def requests_to(page, *paths: str) -> list[str]:
    """Records the URLs of the page's requests to these paths from now on."""
    sent: list[str] = []
    page.on("request", lambda r: any(p in r.url for p in paths) and sent.append(r.url))
    return sent


def seven_photo(digit_pixels: bool = True) -> bytes:
    """A 640x480 JPEG of a hand-drawn '7' (or of a blank sheet) on paper on a desk."""
    digit = np.zeros((28, 28), dtype=np.uint8)
    if digit_pixels:
        digit[6:9, 7:21] = 255  # the bar
        for row in range(9, 23):
            col = 20 - (row - 9) // 2
            digit[row, col - 1 : col + 2] = 255
    return photo(digit, "paper on a desk", np.random.default_rng(0))


def upload(page, data: bytes, name: str = "seven.jpg") -> None:
    page.set_input_files(
        "#upload", files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}]
    )


def test_drawing_gives_reconstruction_and_latent_bars_in_one_request(page, server: Server) -> None:
    loaded(page, server)
    sent = requests_to(page, "/reconstruct", "/encode", "/classify", "/score")
    page.evaluate("""() => {
        document.getElementById('canvas').addEventListener(
            'pointerup', () => { window.liftedAt = performance.now(); });
        new MutationObserver(() => { window.shownAt = performance.now(); }).observe(
            document.getElementById('reconstruction'), {attributeFilter: ['src']});
    }""")
    draw_digit(page)
    page.wait_for_function("document.getElementById('reconstruction').naturalWidth > 0")
    assert natural_width(page, "#reconstruction") == 28
    assert natural_width(page, "#input-image") == 28
    assert page.locator("#bars .bar").count() == server.latent_dim
    assert page.locator("#bars .marker").count() == server.latent_dim
    assert page.inner_text("#selected-label") == "your digit"
    assert len(sent) == 1 and "/reconstruct?format=json" in sent[0], sent  # tiny: no heads
    # From the pen lifting to the reconstruction shown (~170 ms here with the tiny model on a
    # busy machine; a toBlob callback was seen ~1 s late, issue 16).
    shown_ms = page.evaluate("window.shownAt - window.liftedAt")
    assert shown_ms < 500, f"the reconstruction appeared {shown_ms:.0f} ms after the pen lifted"
    assert page.is_hidden("#verdict") and page.is_hidden("#class-choice")
    assert page.errors == []


def test_a_tap_without_a_stroke_sends_nothing(page, server: Server) -> None:
    loaded(page, server)
    sent = requests_to(page, "/reconstruct")
    canvas = page.locator("#canvas")
    canvas.scroll_into_view_if_needed()
    canvas.click(position={"x": 140, "y": 140})
    page.wait_for_timeout(400)
    assert sent == [] and page.get_attribute("#reconstruction", "src") is None
    assert page.errors == []


def test_an_uploaded_photo_shows_what_the_encoder_saw(page, server: Server) -> None:
    loaded(page, server)
    upload(page, seven_photo())
    page.wait_for_function("document.getElementById('reconstruction').naturalWidth > 0")
    assert natural_width(page, "#input-image") == 28
    assert page.locator("#bars .bar").count() == server.latent_dim
    assert page.inner_text("#selected-label") == "seven.jpg"
    # The encoder saw a white digit on black, not the sheet: its border is empty.
    corner = page.evaluate("""() => {
        const img = document.getElementById('input-image');
        const c = document.createElement('canvas'); c.width = c.height = 28;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const border = [...ctx.getImageData(0, 0, 28, 2).data].filter((_, i) => i % 4 === 0);
        const all = [...ctx.getImageData(0, 0, 28, 28).data].filter((_, i) => i % 4 === 0);
        return [Math.max(...border), Math.max(...all)];
    }""")
    assert corner[0] == 0 and corner[1] > 200, corner
    assert page.errors == []


def test_a_photo_without_a_digit_says_no_digit_found(page, server: Server) -> None:
    loaded(page, server)
    upload(page, seven_photo())
    page.wait_for_function("document.getElementById('reconstruction').naturalWidth > 0")
    upload(page, seven_photo(digit_pixels=False), "blank.jpg")
    page.wait_for_selector("#no-digit:not([hidden])")
    assert "No digit found" in page.inner_text("#no-digit")
    assert page.get_attribute("#reconstruction", "src") is None  # no ghost reconstruction
    assert page.locator("#bars .bar").count() == 0 and page.is_hidden("#message")
    assert all("422" in e for e in page.errors), page.errors  # only the refused upload


def test_the_camera_is_offered_on_phones_only(browser, server: Server) -> None:
    for viewport, mobile in ((PHONE, True), (LAPTOP, False)):
        context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile)
        page = context.new_page()
        loaded(page, server)
        assert page.get_attribute("#camera", "capture") == "environment"
        assert page.is_visible("text=Take a photo") == mobile
        assert page.is_visible("text=Upload an image")
        context.close()


def test_the_pad_axes_are_labelled_with_their_dimensions(page, server: Server) -> None:
    loaded(page, server)
    assert page.inner_text("#axis-x") == "z0 →" and page.inner_text("#axis-y") == "z1 ↑"
    page.select_option("#dim-x", "3")
    assert page.inner_text("#axis-x") == "z3 →"
    assert page.locator("#pad .tick").count() == 4


def test_predicted_digit_typicality_and_digit_selector(page, heads_server: Server) -> None:
    loaded(page, heads_server)
    sent = requests_to(page, "/reconstruct", "/classify", "/score", "/sample")
    draw_digit(page)
    page.wait_for_selector("#classify-panel:not([hidden])")
    page.wait_for_selector("#score-panel:not([hidden])")
    assert page.locator("#probabilities .probability").count() == 10
    assert page.inner_text("#predicted") in [str(d) for d in range(10)]
    assert "% of real MNIST test digits" in page.inner_text("#typicality")
    assert "KL" in page.inner_text("#kl")
    assert page.is_visible("#class-choice") and page.inner_text("#class-choice").startswith("Digit")
    options = page.eval_on_selector_all("#sample-class option", "os => os.map(o => o.text)")
    assert options == ["any", *map(str, range(10))]
    page.select_option("#sample-class", "3")
    page.wait_for_function("document.getElementById('sample-note').textContent.includes('digit 3')")
    assert any("class=3" in url for url in sent if "/sample" in url), sent
    assert page.errors == []


def test_a_model_without_a_capability_hides_its_panel(page, heads_server: Server) -> None:
    page.route(
        "**/classify",
        lambda route: route.fulfill(
            status=501, json={"error": "not_supported", "detail": "no classifier"}
        ),
    )
    loaded(page, heads_server)
    draw_digit(page)
    page.wait_for_selector("#score-panel:not([hidden])")
    assert page.is_hidden("#classify-panel") and page.is_hidden("#message")


def test_interpolation_between_a_drawing_and_a_sample(page, server: Server) -> None:
    loaded(page, server)
    assert page.is_disabled("#use-a")
    draw_digit(page)
    page.wait_for_function("document.getElementById('selected').naturalWidth > 0")
    page.click("#use-a")
    page.click("#sample-grid img >> nth=3")
    assert page.inner_text("#selected-label") == "sample 4"
    page.click("#use-b")
    page.wait_for_function("document.querySelectorAll('#strip img').length === 8")
    assert widths(page, "#strip img") == [28] * 8
    assert page.errors == []


def test_latent_pad_decodes_the_point_clicked(page, server: Server) -> None:
    loaded(page, server)
    before = page.get_attribute("#pad-image", "src")
    pad = page.locator("#pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.1)
    assert page.inner_text("#pad-value") == "(2.40, 2.40)"
    page.wait_for_function(f"document.getElementById('pad-image').src !== {before!r}")
    assert page.errors == []


def test_api_errors_are_shown_politely(page, server: Server) -> None:
    loaded(page, server)
    page.route(
        "**/sample?*",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "1"},
            json={"error": "overloaded", "detail": "too many requests"},
        ),
    )
    page.click("text=New samples")
    page.wait_for_selector("#message:not([hidden])")
    assert "busy" in page.inner_text("#message")
    page.unroute("**/sample?*")
    page.fill("#seed", "")
    page.click("text=New samples")
    page.wait_for_selector("#message", state="hidden")


def test_an_api_key_can_be_entered_when_the_service_asks_for_one(page, server: Server) -> None:
    """The service answers 401 without X-API-Key: secret (simulated in the browser, so the
    shared server keeps its key off); the page asks for the key and then works with it."""
    sent = []

    def guard(route) -> None:
        key = route.request.headers.get("x-api-key")
        sent.append(key)
        if key == "secret":
            route.continue_()
        else:
            route.fulfill(
                status=401, json={"error": "unauthorized", "detail": "a valid API key is required"}
            )

    page.route("**/model", guard)
    page.route("**/sample?*", guard)
    page.goto(server.url + "/")
    page.wait_for_selector("#key-form:not([hidden])")
    assert "API key" in page.inner_text("#message")
    # The pad's menus are not empty before the key: a placeholder, disabled.
    assert page.locator("#dim-x option").count() == 1 and page.is_disabled("#dim-x")
    page.fill("#api-key", "wrong")
    page.click("text=Use key")
    page.wait_for_function(
        "document.getElementById('message').textContent.includes('did not accept')"
    )
    page.fill("#api-key", "secret")
    page.click("text=Use key")
    page.wait_for_function("document.querySelectorAll('#sample-grid img').length === 16")
    assert page.is_hidden("#key-form") and page.is_hidden("#message")
    assert page.locator("#dim-x option").count() == server.latent_dim
    assert page.is_enabled("#dim-x")
    assert sent[0] is None and sent[-1] == "secret"
    assert all("401" in e for e in page.errors), page.errors  # only the refused calls


@pytest.mark.parametrize("page", [LAPTOP, PHONE], indirect=True, ids=["laptop", "phone"])
def test_layout_fits_the_viewport(page, server: Server) -> None:
    loaded(page, server)
    draw_digit(page)
    page.wait_for_function("document.getElementById('reconstruction').naturalWidth > 0")
    page.click("#use-a")
    page.click("#sample-grid img >> nth=5")
    page.click("#use-b")
    page.wait_for_function("document.querySelectorAll('#strip img').length === 8")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    canvas = page.locator("#canvas").bounding_box()
    assert canvas["width"] == pytest.approx(280, abs=1) and canvas["height"] == canvas["width"]
    clipped = page.eval_on_selector_all(
        "figcaption",
        "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)",
    )
    assert clipped == [], f"captions overflow their thumbnails: {clipped}"
    assert page.errors == []
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        name = "demo-phone.png" if page.viewport_size == PHONE else "demo.png"
        # The page's own height as the viewport, not full_page=True: Chromium's full-page
        # capture drops the touch emulation, and with it the phone's camera button.
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": page.viewport_size["width"], "height": height})
        page.screenshot(path=IMAGES_DIR / name)
