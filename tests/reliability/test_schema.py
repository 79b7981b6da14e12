"""Schemathesis against the app's own OpenAPI schema: every operation, bounded examples.

No generated request, valid or not, may get a 5xx; every response must match the schema
(status code documented, content type, body and headers as declared); requests that break
the schema must be refused with a 4xx. Not checked: that schema-valid requests succeed,
since a schema cannot say "a decodable image", "D = the model's latent size" or
"n x (28 x scale)^2 <= VAE_MAX_OUTPUT_PIXELS" (those get the documented 400/413/422).
A 413 counts as refusing invalid data: the limits (app/limits.py) are checked before the
body is parsed, so a request over one gets its 413 whatever else is wrong with it.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.python import asgi

from app.deadlines import HEADER
from app.main import create_app
from app.settings import Settings

REFUSALS = [400, 401, 404, 405, 406, 413, 415, 422, "5xx"]  # 5xx: not_a_server_error fails it


@pytest.fixture(scope="module")
def api_schema(tiny_heads_model_file):
    # the model with every capability: on an older file /score, /classify answer 501, which
    # schemathesis counts as a server error (tests/app/test_capabilities.py tests that 501)
    app = create_app(Settings(model_path=tiny_heads_model_file, log_format="text"))
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    asgi.shutdown_lifespans()  # schemathesis started the lifespan; stop the model's thread


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_conforms_without_server_errors(case):
    budget = (case.headers or {}).get(HEADER)
    if isinstance(budget, str) and budget.isascii() and budget.isdigit():
        # a valid deadline of a few ms may pass before the model runs: its 504 is the
        # request's own doing (tests/reliability/test_deadlines.py), not a server error
        case.headers[HEADER] = str(max(int(budget), 60_000))
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_multipart_bodies_require_their_images(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path, least in [("/encode", 1), ("/reconstruct", 1), ("/interpolate", 2)]:
        form = paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"]
        assert form["properties"]["file"]["minItems"] == least
