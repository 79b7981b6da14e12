"""The Open Inference Protocol's HTTP/REST endpoints under /v2 (KServe v2, Triton HTTP).

Health answers like /healthz and /readyz (open without the API key; not ready while
draining); everything else needs the key when one is set. Infer requests go through the
same ModelService as the REST routes: admission control, micro-batching, metrics.
Errors use the protocol's shape, {"error": message} (app/errors.py). An infer request's
parameter `timeout` (microseconds, Triton's schedule-policy extension) is its deadline.
"""

import torch
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app import deadlines
from app.dependencies import Model
from app.errors import APIError
from app.inference import ModelService
from app.oip.models import find_model
from app.oip.schemas import (
    V2_ERRORS,
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ReadyResponse,
    ServerMetadataResponse,
    inline_schema,
)
from app.oip.tensors import (
    HEADER_LENGTH,
    bad_tensor,
    infer_response,
    input_array,
    parse_request,
    requested_outputs,
    split_body,
)

EXTENSIONS = ["binary_tensor_data"]
NOT_READY_STATUS = 400  # the protocol: 200 is true, a 4xx false (Triton answers 400)

# `router` holds what needs the API key when one is set (app.main adds the check);
# `probes`, the server's liveness and readiness, never do.
router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"], responses=V2_ERRORS)
probes = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"], responses=V2_ERRORS)


def is_ready(request: Request) -> bool:
    state = request.app.state
    return bool(state.ready and not state.draining and state.model is not None)


@router.get("", response_model=ServerMetadataResponse)
async def server_metadata(request: Request) -> ServerMetadataResponse:
    """Server metadata: name, version and the protocol extensions supported."""
    return ServerMetadataResponse(
        name=request.app.title, version=request.app.version, extensions=EXTENSIONS
    )


@probes.get("/health/live", response_model=LiveResponse)
async def server_live() -> LiveResponse:
    """Liveness, as /healthz."""
    return LiveResponse(live=True)


@probes.get(
    "/health/ready",
    response_model=ReadyResponse,
    responses={NOT_READY_STATUS: {"model": ReadyResponse, "description": "not ready"}},
)
async def server_ready(request: Request) -> Response:
    """Readiness, as /readyz: 200 once the model is loaded and warmed up; 400 (the protocol's
    'false') before that and while draining for shutdown."""
    if is_ready(request):
        return JSONResponse({"ready": True})
    return JSONResponse({"ready": False}, NOT_READY_STATUS, headers={"Retry-After": "1"})


@router.get("/models/{model_name}", response_model=ModelMetadataResponse)
async def model_metadata(model_name: str, model: Model) -> dict:
    """Model metadata: inputs and outputs with names, datatypes and shapes (-1: batch)."""
    return find_model(model, model_name).metadata(model.version)


@router.get("/models/{model_name}/versions/{model_version}", response_model=ModelMetadataResponse)
async def model_version_metadata(model_name: str, model_version: str, model: Model) -> dict:
    """Model metadata of one version (each model has one: the model file's version)."""
    return find_model(model, model_name, model_version).metadata(model.version)


def model_ready_response(request: Request, model_name: str, version: str | None) -> Response:
    service: ModelService | None = request.app.state.model
    if service is not None:
        find_model(service, model_name, version)
    ready = is_ready(request)
    body = {"name": model_name, "ready": ready}
    return JSONResponse(body, 200 if ready else NOT_READY_STATUS)


READY_RESPONSES = {NOT_READY_STATUS: {"model": ModelReadyResponse, "description": "not ready"}}


@router.get(
    "/models/{model_name}/ready",
    response_model=ModelReadyResponse,
    responses=READY_RESPONSES,
)
async def model_ready(model_name: str, request: Request) -> Response:
    """Model readiness: 200 when it can serve, 400 (the protocol's 'false') otherwise."""
    return model_ready_response(request, model_name, None)


@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    response_model=ModelReadyResponse,
    responses=READY_RESPONSES,
)
async def model_version_ready(model_name: str, model_version: str, request: Request) -> Response:
    """Readiness of one version of a model."""
    return model_ready_response(request, model_name, model_version)


INFER_OPENAPI = {
    "parameters": [
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            "schema": {"type": "integer", "minimum": 1},
            "description": "binary tensor data extension: size of the JSON header",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "JSON header, then the binary inputs in order",
            },
        },
    },
}
INFER_RESPONSES = {
    200: {
        "content": {
            "application/json": {},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "outputs (binary ones after the JSON header)",
    }
}


def deadline_parameter(request: Request, parameters: dict | None) -> None:
    """Parameter `timeout` in microseconds, as Triton's (tritonclient's infer(timeout=...)):
    the request's deadline, counted from its arrival; 0: the header's or the server's."""
    timeout = (parameters or {}).get("timeout")
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise bad_tensor(
            "parameter timeout must be a whole number of microseconds", "invalid_request"
        )
    if not 0 <= timeout <= deadlines.MAX_BUDGET:
        raise bad_tensor(
            f"parameter timeout must be from 0 to 2^63-1 microseconds, not {timeout}",
            "invalid_request",
        )
    if timeout:
        deadlines.start(request, timeout / 1e6)


async def run_inference(
    request: Request, service: ModelService, model_name: str, version: str | None
) -> Response:
    served = find_model(service, model_name, version)
    settings = service.settings
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        # tritonclient's request_compression_algorithm: the bodies here are small or binary
        raise APIError(415, "unsupported_media_type", "send the body uncompressed")
    header, binary = split_body(await request.body(), request.headers.get(HEADER_LENGTH), settings)
    infer_request = parse_request(header)
    deadline_parameter(request, infer_request.parameters)
    x = input_array(infer_request, served.input, binary, served.rows, settings)
    wanted = requested_outputs(infer_request, served.output_names)
    tensors = await served.run(service, torch.from_numpy(x), infer_request.parameters or {})
    reply = {"model_name": served.name, "model_version": service.version}
    if infer_request.id is not None:
        reply["id"] = infer_request.id
    return infer_response(reply, wanted, dict(zip(served.output_names, tensors, strict=True)))


@router.post(
    "/models/{model_name}/infer",
    response_model=InferenceResponse,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_OPENAPI,
)
async def infer(model_name: str, request: Request, model: Model) -> Response:
    """Inference: tensors in (JSON or binary), the requested outputs back. An infer of N rows
    is one model call, batched with concurrent requests."""
    return await run_inference(request, model, model_name, None)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    response_model=InferenceResponse,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_OPENAPI,
)
async def infer_version(
    model_name: str, model_version: str, request: Request, model: Model
) -> Response:
    """Inference on one version of a model."""
    return await run_inference(request, model, model_name, model_version)
