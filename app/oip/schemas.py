"""The protocol's JSON objects (kserve/open-inference-protocol, inference_rest.md) as pydantic
models: they validate the inference request and document every /v2 endpoint in OpenAPI.

Unknown fields are ignored rather than refused: clients add their own (Triton's examples
send `model_name` in the body), and the protocol does not forbid them.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Parameters = dict[str, Any]


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class RequestInput(Lenient):
    """One input tensor: its data inline (JSON, flat or nested row-major) or, with the binary
    tensor data extension, `parameters.binary_data_size` bytes after the JSON header."""

    name: str
    shape: list[int] = Field(description="full shape of the batch, e.g. [N, C, H, W]")
    datatype: str = Field(examples=["FP32"])
    parameters: Parameters | None = Field(None, examples=[{"binary_data_size": 3136}])
    data: list[Any] | None = Field(None, description="row-major values, flat or nested")


class RequestOutput(Lenient):
    """An output to return; `parameters.binary_data: true` returns it as raw bytes."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(Lenient):
    """$inference_request; `parameters.binary_data_output: true` makes every output binary."""

    id: str | None = Field(None, description="returned as is in the response")
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="default: every output")


class ResponseOutput(Lenient):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(None, examples=[{"binary_data_size": 128}])
    data: list[float] | None = Field(None, description="absent when sent as binary")


class InferenceResponse(Lenient):
    """$inference_response (followed by the binary outputs, if any were asked for)."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(Lenient):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for the batch dimension")


class ModelMetadataResponse(Lenient):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadataResponse(Lenient):
    name: str
    version: str
    extensions: list[str]


class LiveResponse(Lenient):
    live: bool


class ReadyResponse(Lenient):
    ready: bool


class ModelReadyResponse(Lenient):
    name: str
    ready: bool


class V2ErrorResponse(BaseModel):
    """The protocol's error object: one descriptive message."""

    error: str = Field(examples=["input 'image' must have shape [N, 1, 28, 28], not [1, 784]"])


def inline_schema(model: type[BaseModel]) -> dict:
    """`model`'s JSON schema with its $defs inlined, for openapi_extra: there a "#/$defs/..."
    reference would resolve against the OpenAPI document, which has no $defs."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


V2_ERRORS = {
    400: {"model": V2ErrorResponse, "description": "invalid request or tensor"},
    401: {"model": V2ErrorResponse, "description": "API key missing or wrong"},
    404: {"model": V2ErrorResponse, "description": "no such model or version"},
    413: {"model": V2ErrorResponse, "description": "body, JSON header or rows over the limit"},
    415: {"model": V2ErrorResponse, "description": "compressed body (Content-Encoding)"},
    503: {"model": V2ErrorResponse, "description": "overloaded or not ready (see Retry-After)"},
}
