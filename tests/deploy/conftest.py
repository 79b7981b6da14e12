"""Fixtures: the service started exactly as the image starts it, serving the tiny test model."""

from dataclasses import dataclass

import pytest

from tests.deploy.helpers import http_get, start_image_command, wait_ready
from tests.helpers import free_port


@dataclass
class Service:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def traffic(self) -> None:
        """A few requests touching every labelled series: model calls and a failure."""
        for path in ("/healthz", "/model", "/sample?n=4&seed=1", "/sample?n=2&format=json"):
            assert http_get(self.url + path)[0] == 200, path
        assert http_get(self.url + "/sample?n=0")[0] == 422


@pytest.fixture(scope="session")
def image_service(tiny_model_file, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("service") / "service.log"
    process, _ = start_image_command(tiny_model_file, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process.popen, 90, process.output)
        service = Service(port)
        service.traffic()
        yield service
    finally:
        process.stop()


@pytest.fixture(scope="session")
def exposition(image_service) -> str:
    """The service's /metrics text after some traffic."""
    status, body = http_get(image_service.url + "/metrics")
    assert status == 200
    return body.decode()


@pytest.fixture(scope="session")
def image() -> str:
    """The project's image, built with podman by scripts/container/build.sh (needs root)."""
    from tests.deploy.containers import IMAGE, run_script

    run_script("build.sh")
    return IMAGE
