"""Request bodies of the Open Inference Protocol workloads, and the REST batches beside them.

One digit as a v2 infer with JSON tensors and with binary tensor data (binary outputs too,
as tritonclient sends it by default), 64 digits as one binary infer and as one /encode of
64 PNGs, 16 latents as one binary decoder infer and as one /decode. A binary body needs its
JSON header's size in `Inference-Header-Content-Length`: it is written beside the body
(`<body>.headers.json`) and sent with it.
"""

import json
from pathlib import Path

import numpy as np

ENCODER = "/v2/models/vae-encoder/infer"
DECODER = "/v2/models/vae-decoder/infer"
BOUNDARY = "vae-bench-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
HEADER_LENGTH = "Inference-Header-Content-Length"


def json_infer(name: str, array: np.ndarray) -> bytes:
    tensor = {"name": name, "shape": list(array.shape), "datatype": "FP32"}
    return json.dumps({"inputs": [{**tensor, "data": array.ravel().tolist()}]}).encode()


def binary_infer(name: str, array: np.ndarray) -> tuple[bytes, dict[str, str]]:
    blob = np.ascontiguousarray(array, "<f4").tobytes()
    tensor = {"name": name, "shape": list(array.shape), "datatype": "FP32"}
    header = {
        "inputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}],
        "parameters": {"binary_data_output": True},
    }
    encoded = json.dumps(header).encode()
    return encoded + blob, {HEADER_LENGTH: str(len(encoded))}


def multipart(pngs: list[bytes]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + png
        + b"\r\n"
        for i, png in enumerate(pngs)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def write_v2_bodies(
    workdir: Path, digits: np.ndarray, pngs: list[bytes], latent_dim: int
) -> dict[str, Path]:
    """digits: (64, 28, 28) uint8 test digits, pngs: the same as PNG files; key -> path."""
    images = (digits.astype(np.float32) / 255)[:, None]  # (64, 1, 28, 28), as /encode sees them
    z = np.random.default_rng(0).standard_normal((16, latent_dim)).astype(np.float32)
    bodies: dict[str, tuple[bytes, dict[str, str]]] = {
        "v2_digit_json": (json_infer("image", images[:1]), {}),
        "v2_digit_bin": binary_infer("image", images[:1]),
        "v2_digits64_bin": binary_infer("image", images),
        "v2_z16_bin": binary_infer("z", z),
        "digits64_multipart": (multipart(pngs), {}),
        "z16_json": (json.dumps({"z": z.tolist()}).encode(), {}),
    }
    paths = {}
    for key, (data, headers) in bodies.items():
        paths[key] = workdir / f"{key}.body"
        paths[key].write_bytes(data)
        if headers:
            (workdir / f"{key}.body.headers.json").write_text(json.dumps(headers))
    return paths


def extra_headers(body: Path | None) -> dict[str, str]:
    """The headers written beside `body` (none for most bodies)."""
    sidecar = body and body.with_name(body.name + ".headers.json")
    return json.loads(sidecar.read_text()) if sidecar and sidecar.exists() else {}
