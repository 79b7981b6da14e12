"""Record the MNIST corpus: fixed requests to every route and format of the service on the
shipped model (model/vae_mnist.pt), and their responses, in tests/corpus/mnist.json.

    OMP_NUM_THREADS=1 MNIST_DIR=../shared/data/mnist python -m tests.corpus.record

tests/corpus/test_mnist_corpus.py replays every request against the current code and
asserts the same answers: same status and content type, PNGs byte for byte, JSON numbers
to rel 1e-5 / abs 1e-6, error codes. It pins what the service does on MNIST, so that a
restructuring of app/ can be shown to change none of it.

When to re-record: only deliberately, when a change of behaviour is intended (a new
default, a fixed bug, a new shipped model, a changed error code), never to make a failing
replay pass. Then: re-run the command above, read `git diff --stat tests/corpus/mnist.json`
and the entries that changed, and commit the new corpus with the change that caused it,
saying in the message which answers changed and why. Record from a clean tree (a
`git worktree` or `git archive` of the commit), not one holding unfinished edits. A
refactor must pass the replay with the corpus untouched. Adding requests is fine at any
time (re-record, check that the old entries did not move: `git diff` shows additions only).

What is recorded: each request's method, path, query, headers and body (uploads and binary
bodies base64), and its response's status, content type, the headers that are behaviour
(X-Seed, Retry-After), its body (PNG base64; JSON; /v2 infer answers as their JSON header
plus each output's values, binary outputs decoded) and, for errors, the code: the REST
body's `error`, or under /v2 (whose body holds only a message) the reason the failure adds
to vae_failures_total. Values that are random without a seed (/score's importance-sampled
estimates, /sample without a seed) are recorded by type and shape only (`random` in the
entry). Request ids, dates and timings are not recorded.
"""

import base64
import hashlib
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = ROOT / "model" / "vae_mnist.pt"
CORPUS = Path(__file__).with_name("mnist.json")
KEPT_HEADERS = ("x-seed", "retry-after")  # response headers that are behaviour
FAILURE = re.compile(r'^vae_failures_total\{reason="([^"]+)"\} (\S+)$', re.MULTILINE)
SCORE_ESTIMATES = [
    "elbo",
    "reconstruction",
    "log_likelihood",
    "bits_per_dim",
    "percentile",
    "ood_score",
    "ood_percentile",
]
SCORE_RANDOM = [*SCORE_ESTIMATES, "typical"]  # k importance samples, unseeded; kl is exact
ENCODER, DECODER = "/v2/models/vae-encoder/infer", "/v2/models/vae-decoder/infer"
V2_MODELS = ["vae-encoder", "vae-decoder", "vae-reconstruct", "vae-score", "vae-classify"]
LATENT = 32  # the shipped model's D (GET /model records it too)


def corpus_settings() -> Settings:
    """The service as shipped, pinned to what makes answers reproducible: CPU, one thread."""
    return Settings(
        model_path=SHIPPED_MODEL,
        device="cpu",
        torch_threads=1,
        precision="float32",
        api_key=None,
        log_format="text",
        access_log=False,
    )


def start() -> TestClient:
    """The app on the shipped model, started (model loaded and warmed): use as `with`."""
    torch.set_num_threads(1)
    return TestClient(create_app(corpus_settings()), raise_server_exceptions=False)


# ---- the requests -----------------------------------------------------------------------


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def upload(*blobs: bytes) -> dict:
    return {
        "files": [
            {"name": f"{i}.png", "type": "image/png", "base64": b64(b)} for i, b in enumerate(blobs)
        ]
    }


def tensor_json(name: str, array: np.ndarray, datatype: str = "FP32", **extra) -> dict:
    tensor = {"name": name, "shape": list(array.shape), "datatype": datatype}
    return {"json": {"inputs": [{**tensor, "data": array.ravel().tolist()}], **extra}}


def tensor_binary(
    name: str, array: np.ndarray, datatype: str = "FP32", size: int | None = None
) -> dict:
    """Body and headers in Triton's binary tensor extension: the JSON header, then the raw
    bytes (declared as `size` bytes when given); outputs asked as binary."""
    blob = array.astype({"FP32": "<f4", "UINT8": "u1"}[datatype]).tobytes()
    tensor = {"name": name, "shape": list(array.shape), "datatype": datatype}
    declared = len(blob) if size is None else size
    header = {
        "inputs": [{**tensor, "parameters": {"binary_data_size": declared}}],
        "parameters": {"binary_data_output": True},
    }
    encoded = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(encoded))}
    return {"body": {"base64": b64(encoded + blob)}, "headers": headers}


def get(name: str, path: str, params: dict | None = None, **extra) -> dict:
    return {"name": name, "method": "GET", "path": path, "params": params or {}, **extra}


def post(name: str, path: str, body: dict, params: dict | None = None, **extra) -> dict:
    return {
        "name": name,
        "method": "POST",
        "path": path,
        "params": params or {},
        "body": body,
        **extra,
    }


def requests(test_images: np.ndarray, version: str) -> list[dict]:
    """The fixed list. test_images: the first MNIST test digits, (N, 28, 28) uint8."""
    d7, d2, d1, d0 = (png(image) for image in test_images[:4])
    # a 56x56 dark digit on white paper: exercises the MNIST-like preprocessing
    paper = np.full((56, 56), 255, np.uint8)
    paper[14:42, 14:42] = 255 - test_images[0]
    paper_png = png(paper)
    x2 = (test_images[:2, None] / 255.0).astype(np.float32)  # (2, 1, 28, 28)
    x1 = x2[:1]
    z2 = np.random.default_rng(0).standard_normal((2, LATENT)).astype(np.float32)
    z_rows = [[round(float(v), 4) for v in row] for row in z2]
    raw_png = {"content-type": "image/png"}
    score_k = {"k": 10}
    r = [
        get("healthz", "/healthz"),
        get("readyz", "/readyz"),
        get("model card", "/model"),
        # /sample
        get("sample n=1", "/sample", {"n": 1, "seed": 0}),
        get("sample n=16 grid", "/sample", {"n": 16, "seed": 1}),
        get("sample json", "/sample", {"n": 2, "seed": 2, "format": "json"}),
        get(
            "sample json by Accept",
            "/sample",
            {"n": 1, "seed": 7},
            headers={"accept": "application/json"},
        ),
        get("sample digit=3", "/sample", {"digit": 3, "n": 4, "seed": 3}),
        get("sample digit=8 json", "/sample", {"digit": 8, "n": 1, "seed": 3, "format": "json"}),
        get("sample temperature=0.5", "/sample", {"n": 4, "seed": 4, "temperature": 0.5}),
        get(
            "sample digit=3 temperature=0.8",
            "/sample",
            {"digit": 3, "n": 2, "seed": 4, "temperature": 0.8},
        ),
        get("sample bernoulli", "/sample", {"n": 4, "seed": 5, "pixels": "bernoulli"}),
        get("sample scale=2", "/sample", {"n": 1, "seed": 6, "scale": 2}),
        get("sample unseeded", "/sample", {"n": 2}, random=["body", "x-seed"]),
        get(
            "sample unseeded json",
            "/sample",
            {"n": 1, "format": "json"},
            random=["images", "pixels", "z", "seed"],
        ),
        get("sample n=0", "/sample", {"n": 0}),
        get("sample n over the limit", "/sample", {"n": 257}),
        get("sample digit=10", "/sample", {"digit": 10}),
        get("sample temperature=11", "/sample", {"temperature": 11}),
        get("sample seed=-1", "/sample", {"seed": -1}),
        get("sample n=3.0", "/sample", {"n": "3.0"}),
        get("sample unknown parameter", "/sample", {"temprature": 0.5}),
        get("sample format=gif", "/sample", {"format": "gif"}),
        # /encode
        post("encode one", "/encode", upload(d7)),
        post("encode raw body", "/encode", {"base64": b64(d2)}, headers=raw_png),
        post("encode batch", "/encode", upload(d7, d2, d1)),
        post("encode include_input", "/encode", upload(d1), {"include_input": "true"}),
        post("encode 56x56 dark on white", "/encode", upload(paper_png)),
        post("encode bad png", "/encode", upload(b"\x89PNG\r\n\x1a\nnot really")),
        post("encode truncated png", "/encode", upload(d7[:60])),
        post("encode blank image", "/encode", upload(png(np.zeros((28, 28))))),
        post(
            "encode text/plain",
            "/encode",
            {"base64": b64(b"7")},
            headers={"content-type": "text/plain"},
        ),
        post("encode unknown parameter", "/encode", upload(d7), {"k": 5}),
        # /reconstruct
        post("reconstruct one", "/reconstruct", upload(d7)),
        post("reconstruct grid", "/reconstruct", upload(d7, d2, d1, d0)),
        post("reconstruct json", "/reconstruct", upload(d2), {"format": "json"}),
        post("reconstruct draw=z", "/reconstruct", upload(d1), {"draw": "z", "seed": 1}),
        post(
            "reconstruct draw=z json",
            "/reconstruct",
            upload(d1),
            {"draw": "z", "seed": 1, "format": "json"},
        ),
        post(
            "reconstruct bernoulli", "/reconstruct", upload(d0), {"pixels": "bernoulli", "seed": 2}
        ),
        post("reconstruct scale=3", "/reconstruct", upload(d7), {"scale": 3}),
        post("reconstruct raw body", "/reconstruct", {"base64": b64(d0)}, headers=raw_png),
        post("reconstruct scale=17", "/reconstruct", upload(d7), {"scale": 17}),
        # /interpolate
        post("interpolate images", "/interpolate", upload(d7, d1), {"steps": 4}),
        post(
            "interpolate images json",
            "/interpolate",
            upload(d2, d0),
            {"steps": 3, "format": "json"},
        ),
        post(
            "interpolate z",
            "/interpolate",
            {"json": {"z_start": z_rows[0], "z_end": z_rows[1]}},
            {"steps": 5},
        ),
        post(
            "interpolate z json",
            "/interpolate",
            {"json": {"z_start": z_rows[0], "z_end": z_rows[1]}},
            {"steps": 2, "format": "json"},
        ),
        post("interpolate digits", "/interpolate", {"json": {"digit_start": 3, "digit_end": 8}}),
        post("interpolate one image", "/interpolate", upload(d7)),
        post("interpolate steps=1", "/interpolate", upload(d7, d1), {"steps": 1}),
        post("interpolate short z", "/interpolate", {"json": {"z_start": [0.0], "z_end": [1.0]}}),
        post(
            "interpolate digit=true",
            "/interpolate",
            {"json": {"digit_start": True, "digit_end": 8}},
        ),
        # /decode
        post("decode one z", "/decode", {"json": {"z": z_rows[0]}}),
        post("decode two z", "/decode", {"json": {"z": z_rows}}),
        post("decode json", "/decode", {"json": {"z": [z_rows[1]]}}, {"format": "json"}),
        post("decode zeros scale=2", "/decode", {"json": {"z": [0.0] * LATENT}}, {"scale": 2}),
        post(
            "decode bernoulli",
            "/decode",
            {"json": {"z": z_rows}},
            {"pixels": "bernoulli", "seed": 9},
        ),
        post("decode wrong length", "/decode", {"json": {"z": [[0.0] * 31]}}),
        post("decode no vector", "/decode", {"json": {"z": []}}),
        post("decode huge value", "/decode", {"json": {"z": [1e39] + [0.0] * 31}}),
        post(
            "decode not json",
            "/decode",
            {"base64": b64(b"{z:")},
            headers={"content-type": "application/json"},
        ),
        # /score
        post("score one", "/score", upload(d7), score_k, random=SCORE_RANDOM),
        post("score batch", "/score", upload(d2, d1), {"k": 5}, random=SCORE_RANDOM),
        post(
            "score include_input",
            "/score",
            upload(d0),
            {"k": 2, "include_input": "true"},
            random=SCORE_RANDOM,
        ),
        post("score k=0", "/score", upload(d7), {"k": 0}),
        post("score k over the limit", "/score", upload(d7), {"k": 1001}),
        post("score bad png", "/score", upload(b"nope")),
        # /classify
        post("classify one", "/classify", upload(d7)),
        post("classify batch", "/classify", upload(d2, d1, d0)),
        post("classify include_input", "/classify", upload(d1), {"include_input": "true"}),
        post("classify 56x56 dark on white", "/classify", upload(paper_png)),
        post(
            "classify no file",
            "/classify",
            {"base64": b64(b"--x--\r\n")},  # a form with no part
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        # unknown paths and methods
        get("unknown path", "/nowhere"),
        get("GET /encode", "/encode"),
        # /v2: server, health, metadata
        get("v2 server metadata", "/v2", random=["version"]),  # the package's version
        get("v2 live", "/v2/health/live"),
        get("v2 ready", "/v2/health/ready"),
        *(get(f"v2 metadata {m}", f"/v2/models/{m}") for m in V2_MODELS),
        *(get(f"v2 ready {m}", f"/v2/models/{m}/ready") for m in V2_MODELS),
        get("v2 metadata versioned", f"/v2/models/vae-decoder/versions/{version}"),
        get("v2 ready versioned", f"/v2/models/vae-encoder/versions/{version}/ready"),
        get("v2 metadata unknown model", "/v2/models/vae-nope"),
        get("v2 metadata unknown version", "/v2/models/vae-encoder/versions/9.9.9"),
        # /v2 infer, JSON tensors
        post("v2 encoder json", ENCODER, tensor_json("image", x2, id="corpus-1")),
        post("v2 decoder json", DECODER, tensor_json("z", z2)),
        post("v2 reconstruct json", "/v2/models/vae-reconstruct/infer", tensor_json("image", x1)),
        post(
            "v2 score json",
            "/v2/models/vae-score/infer",
            tensor_json("image", x2, parameters=score_k),
            random=SCORE_RANDOM,
        ),
        post("v2 classify json", "/v2/models/vae-classify/infer", tensor_json("image", x2)),
        post(
            "v2 encoder json outputs=sigma,kl",
            ENCODER,
            tensor_json("image", x1, outputs=[{"name": "sigma"}, {"name": "kl"}]),
        ),
        post(
            "v2 encoder FP64 nested",
            ENCODER,
            {
                "json": {
                    "inputs": [
                        {
                            "name": "image",
                            "shape": [1, 1, 28, 28],
                            "datatype": "FP64",
                            "data": x1.astype(np.float64).tolist(),
                        }
                    ]
                }
            },
        ),
        post(
            "v2 decoder versioned",
            f"/v2/models/vae-decoder/versions/{version}/infer",
            tensor_json("z", z2[:1]),
        ),
        # /v2 infer, binary tensors
        *(
            post(
                f"v2 {m} binary",
                f"/v2/models/{m}/infer",
                **tensor_binary(name, array),
                **({"random": SCORE_RANDOM} if m == "vae-score" else {}),
            )
            for m, name, array in [
                ("vae-encoder", "image", x2),
                ("vae-decoder", "z", z2),
                ("vae-reconstruct", "image", x1),
                ("vae-score", "image", x1),
                ("vae-classify", "image", x2),
            ]
        ),
        post(
            "v2 encoder binary UINT8",
            ENCODER,
            **tensor_binary("image", test_images[:1, None], "UINT8"),
        ),
        # /v2 errors
        post("v2 infer unknown model", "/v2/models/vae-nope/infer", tensor_json("z", z2)),
        post("v2 encoder wrong shape", ENCODER, tensor_json("image", x1.reshape(1, 784))),
        post("v2 decoder wrong latent size", DECODER, tensor_json("z", z2[:, :31])),
        post(
            "v2 encoder INT32",
            ENCODER,
            tensor_json("image", test_images[:1, None].astype(np.int32), "INT32"),
        ),
        post("v2 encoder value over 1", ENCODER, tensor_json("image", x1 * 2)),
        post("v2 encoder wrong input name", ENCODER, tensor_json("z", x1)),
        post("v2 encoder no inputs", ENCODER, {"json": {"outputs": []}}),
        post(
            "v2 encoder unknown output",
            ENCODER,
            tensor_json("image", x1, outputs=[{"name": "nope"}]),
        ),
        post(
            "v2 score k=0",
            "/v2/models/vae-score/infer",
            tensor_json("image", x1, parameters={"k": 0}),
        ),
        post(
            "v2 encoder binary size mismatch",
            ENCODER,
            **tensor_binary("image", x1, size=100),
        ),
        post(
            "v2 encoder bad header length",
            ENCODER,
            **{**tensor_binary("image", x1), "headers": {"Inference-Header-Content-Length": "x"}},
        ),
        post(
            "v2 encoder shared memory",
            ENCODER,
            {
                "json": {
                    "inputs": [
                        {
                            **tensor_json("image", x1)["json"]["inputs"][0],
                            "parameters": {"shared_memory_region": "r"},
                        }
                    ]
                }
            },
        ),
        get("v2 GET infer", ENCODER),
    ]
    names = [spec["name"] for spec in r]
    assert len(names) == len(set(names)), "request names must be unique"
    return r


# ---- sending and normalising ------------------------------------------------------------


def failures(client: TestClient) -> dict[str, float]:
    """vae_failures_total by reason, from /metrics."""
    return {m[1]: float(m[2]) for m in FAILURE.finditer(client.get("/metrics").text)}


def send(client: TestClient, spec: dict) -> dict:
    """The spec's request, and its response in the corpus's normal form."""
    body = spec.get("body", {})
    kwargs: dict = {"params": spec["params"], "headers": spec.get("headers", {})}
    if "files" in body:
        kwargs["files"] = [
            ("file", (f["name"], base64.b64decode(f["base64"]), f["type"])) for f in body["files"]
        ]
    elif "json" in body:
        kwargs["json"] = body["json"]
    elif "base64" in body:
        kwargs["content"] = base64.b64decode(body["base64"])
    before = failures(client)
    response = client.request(spec["method"], spec["path"], **kwargs)
    return normalise(response, spec, before, failures(client))


def normalise(response, spec: dict, before: dict, after: dict) -> dict:
    random = set(spec.get("random", []))
    content_type = response.headers.get("content-type", "")
    out: dict = {"status": response.status_code, "content_type": content_type}
    headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
    out["headers"] = {k: "random" if k in random else v for k, v in headers.items()}
    if response.status_code >= 400:
        grown = [r for r, v in after.items() if v > before.get(r, 0.0)]
        out["code"] = grown[0] if len(grown) == 1 else None
    if content_type == "image/png":
        if "body" in random:
            width, height = Image.open(io.BytesIO(response.content)).size
            out["body"] = {"png_size": [width, height]}
        else:
            out["body"] = {"png": b64(response.content)}
    elif spec["path"].endswith("/infer") and response.status_code == 200:
        out["body"] = {"v2": randomised(v2_outputs(response), random)}
    elif content_type.startswith("application/json"):
        out["body"] = {"json": randomised(response.json(), random)}
    else:
        out["body"] = {"text": response.text}
    return out


def v2_outputs(response) -> dict:
    """An infer response (JSON or binary) as its JSON header without values, and each
    output's values by name (binary ones decoded from little-endian float32)."""
    length = response.headers.get("inference-header-content-length")
    size = int(length) if length is not None else len(response.content)
    header = json.loads(response.content[:size])
    offset, tensors = size, {}
    for output in header["outputs"]:
        if "data" in output:
            tensors[output["name"]] = output.pop("data")
        else:
            nbytes = output["parameters"]["binary_data_size"]
            values = np.frombuffer(response.content[offset : offset + nbytes], "<f4")
            tensors[output["name"]] = values.tolist()
            offset += nbytes
    return {"header": header, "tensors": tensors, "trailing_bytes": len(response.content) - offset}


def randomised(value, random: set[str]):
    """`value` with the values of keys in `random` replaced by their type and shape."""
    if isinstance(value, dict):
        return {k: described(v) if k in random else randomised(v, random) for k, v in value.items()}
    if isinstance(value, list):
        return [randomised(v, random) for v in value]
    return value


def described(value) -> dict:
    if isinstance(value, list):
        return {"random": "list", "shape": list(np.shape(value))}
    return {"random": type(value).__name__}


def model_sha256() -> str:
    return hashlib.sha256(SHIPPED_MODEL.read_bytes()).hexdigest()


def write(corpus: dict) -> None:
    """One entry a line: small, and a diff names the entries whose answers changed."""
    head = json.dumps({k: v for k, v in corpus.items() if k != "entries"}, indent=1)[:-2]
    lines = ",\n".join(json.dumps(entry, separators=(",", ":")) for entry in corpus["entries"])
    CORPUS.write_text(f'{head},\n "entries": [\n{lines}\n]}}\n')
    assert json.loads(CORPUS.read_text()) == corpus


def main() -> None:
    from model.data import load_mnist

    logging.getLogger("httpx").setLevel(logging.WARNING)
    images, _ = load_mnist("test")  # MNIST_DIR
    with start() as client:
        version = client.get("/model").json()["version"]
        specs = requests(images[:4], version)
        entries = [{**spec, "response": send(client, spec)} for spec in specs]
        paths = {getattr(r, "path", "") for r in client.app.routes} - {""}
    unused = sorted(
        p
        for p in paths
        if not any(re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", p), e["path"]) for e in entries)
    )
    corpus = {
        "about": "requests to the service on model/vae_mnist.pt and their responses: "
        "tests/corpus/record.py says how and when to re-record",
        "model": "model/vae_mnist.pt",
        "model_sha256": model_sha256(),
        "entries": entries,
    }
    write(corpus)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["path"]] = counts.get(e["path"], 0) + 1
    for path, count in sorted(counts.items()):
        print(f"{count:4d}  {path}")
    print(f"{len(entries)} requests, {CORPUS.stat().st_size} bytes -> {CORPUS}")
    print("routes not in the corpus:", ", ".join(unused) or "none")


if __name__ == "__main__":
    main()
