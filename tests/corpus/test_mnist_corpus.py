"""Replay the recorded MNIST corpus (tests/corpus/mnist.json) against the service on the
shipped model: every answer as recorded. Status and content type equal, PNGs byte for
byte, JSON and tensor values to rel 1e-5 / abs 1e-6 with the same structure, errors with
the same code. Re-recording is deliberate only: tests/corpus/record.py says when and how.
"""

import json
import math

import pytest

from tests.corpus.record import CORPUS, model_sha256, send, start

RELATIVE, ABSOLUTE = 1e-5, 1e-6
ENTRIES = json.loads(CORPUS.read_text())["entries"]


@pytest.fixture(scope="module")
def client():
    with start() as client:
        yield client


def assert_same(recorded, replayed, where: str = "body") -> None:
    """Same structure; numbers to tolerance; everything else (strings, PNGs base64, bools,
    None) equal."""
    if isinstance(recorded, dict):
        assert isinstance(replayed, dict), f"{where}: {replayed!r} is no object"
        assert recorded.keys() == replayed.keys(), f"{where}: keys {sorted(replayed)}"
        for key in recorded:
            assert_same(recorded[key], replayed[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(replayed, list), f"{where}: {replayed!r} is no list"
        assert len(recorded) == len(replayed), (
            f"{where}: {len(replayed)} items, not {len(recorded)}"
        )
        for i, (a, b) in enumerate(zip(recorded, replayed, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(recorded, float) and not isinstance(replayed, bool):
        assert isinstance(replayed, int | float), f"{where}: {replayed!r} is no number"
        assert math.isclose(recorded, replayed, rel_tol=RELATIVE, abs_tol=ABSOLUTE), (
            f"{where}: {replayed!r}, recorded {recorded!r}"
        )
    else:  # str, bool, int, None: exactly (an int is a count, a digit, a size)
        assert type(recorded) is type(replayed) and recorded == replayed, (
            f"{where}: {replayed!r}, recorded {recorded!r}"
        )


def test_the_corpus_was_recorded_on_the_shipped_model():
    assert json.loads(CORPUS.read_text())["model_sha256"] == model_sha256(), (
        "model/vae_mnist.pt changed: re-record the corpus (tests/corpus/record.py)"
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_replay(client, entry):
    recorded, replayed = entry["response"], send(client, entry)
    assert replayed["status"] == recorded["status"], replayed["body"]
    assert replayed["content_type"] == recorded["content_type"]
    assert replayed["headers"] == recorded["headers"]
    if recorded["status"] >= 400:  # the code; the message may be reworded
        assert replayed["code"] == recorded["code"], replayed["body"]
        if "error" in recorded["body"].get("json", {}) and "detail" in recorded["body"]["json"]:
            assert replayed["body"]["json"]["error"] == recorded["body"]["json"]["error"]
        return
    assert replayed["body"].keys() == recorded["body"].keys()
    if "png" in recorded["body"]:
        assert replayed["body"]["png"] == recorded["body"]["png"], "PNG bytes differ"
    else:
        assert_same(recorded["body"], replayed["body"])
