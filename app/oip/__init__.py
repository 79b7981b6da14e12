"""The Open Inference Protocol (KServe v2 / Triton HTTP/REST) over the same ModelService.

`schemas` holds the protocol's JSON objects, `tensors` turns request tensors (JSON or
Triton's binary tensor data extension) into checked float32 arrays and outputs back into
JSON or bytes, `models` is the table of served models (vae-encoder, vae-decoder,
vae-reconstruct, and vae-score, vae-classify when the model file has them); the endpoints
are in app/routers/v2.py.
"""
