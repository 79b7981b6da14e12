"""/docs and /redoc render with the network cut off: every asset comes from the service."""

from urllib.parse import urlsplit

import pytest

from tests.demo.conftest import Server


@pytest.fixture
def offline_page(browser, server: Server):
    """A page that can reach the service and nothing else (every other request is aborted).
    Lists the outside requests the page needs to work: scripts, styles, fonts, data (not
    images: ReDoc's "powered by" logo is a decorative link to its CDN)."""
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    own = urlsplit(server.url).netloc

    def only_the_service(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            if route.request.resource_type != "image":
                outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    yield page, outside
    context.close()


def test_swagger_ui_renders_offline(offline_page, server: Server):
    page, outside = offline_page
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "vae-serve" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector('.opblock-summary-path[data-path="/encode"]', timeout=20_000)
    assert outside == []


def test_redoc_renders_offline(offline_page, server: Server):
    page, outside = offline_page
    page.goto(server.url + "/redoc")
    page.wait_for_selector("redoc h1, [role=navigation]", timeout=20_000)
    assert "vae-serve" in page.content()
    assert outside == []
