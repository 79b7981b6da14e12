"""VAE_MAX_JSON_BYTES applies to every body FastAPI parses as JSON, however the type is spelt."""

import pytest

from app.media import parsed_as_json

SPELLINGS = [
    "application/json",
    "Application/JSON",
    "APPLICATION/JSON; charset=utf-8",
    " application/json ;charset=UTF-8",
    "application/merge-patch+json",
    "application/vnd.api+JSON",
]


@pytest.mark.parametrize("content_type", SPELLINGS)
def test_every_json_spelling_gets_the_json_limit(make_client, content_type):
    client = make_client(max_json_bytes=1024, max_upload_bytes=10**6)
    body = b'{"z": [' + b",".join([b"0.0"] * 600) + b"]}"  # ~2.4 KB: over the JSON limit only
    r = client.post("/decode", content=body, headers={"content-type": content_type})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large" and "VAE_MAX_JSON_BYTES" in r.json()["detail"]


@pytest.mark.parametrize("content_type", SPELLINGS)
def test_every_json_spelling_is_parsed_as_json(client, content_type):
    r = client.post(
        "/decode", content=b'{"z": [0, 0, 0, 0]}', headers={"content-type": content_type}
    )
    assert r.status_code == 200, r.text


def test_what_counts_as_json():
    assert parsed_as_json(None) and parsed_as_json(b"")  # FastAPI parses an untyped body as JSON
    assert not parsed_as_json(b"image/png")
    assert not parsed_as_json(b"multipart/form-data; boundary=x")
    assert not parsed_as_json(b"text/json")
