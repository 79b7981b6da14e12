"""docs/errors.md lists every error code the service can answer, with its status: codes are
discovered from the code itself, so a new one fails this test until it is documented."""

import ast
import re
from pathlib import Path

from app import limits
from app.errors import HTTP_CODES
from tests.helpers import ROOT

ROW = re.compile(r"^\|\s*`([a-z_0-9]+)`\s*\|\s*(\d{3})\s*\|", re.MULTILINE)
BUILDERS = {"APIError", "error_response"}  # (status, code, detail, ...)


def constant(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


def helpers_of(tree: ast.Module) -> dict[str, tuple[int, str | None]]:
    """Functions like `def bad_tensor(detail, code="invalid_tensor"): return APIError(400,
    code, detail)`: name -> (status, default code)."""
    found = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        names = [a.arg for a in fn.args.args][::-1]
        defaults = dict(zip(names, fn.args.defaults[::-1], strict=False))  # the last args
        for call in ast.walk(fn):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "APIError":
                status, code = (call.args + [None, None])[:2]
                if constant(status) and isinstance(code, ast.Name) and code.id in defaults:
                    found[fn.name] = (constant(status), constant(defaults[code.id]))
    return found


def codes_in_the_code() -> set[tuple[str, int]]:
    """(code, status) of every error the service raises: APIError/error_response calls in
    app/ and the helpers that build them, the limits, and the HTTP errors of the framework."""
    trees = [ast.parse(path.read_text()) for path in (ROOT / "app").rglob("*.py")]
    helpers = {name: spec for tree in trees for name, spec in helpers_of(tree).items()}
    found = set()
    for tree in trees:
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            if name in BUILDERS and len(call.args) >= 2:
                status, code = constant(call.args[0]), constant(call.args[1])
                if isinstance(status, int) and isinstance(code, str):
                    found.add((code, status))
            elif name in helpers:
                status, code = helpers[name]
                given = [constant(a) for a in call.args[1:]] + [
                    constant(k.value) for k in call.keywords if k.arg == "code"
                ]
                found.add((next((g for g in given if isinstance(g, str)), code), status))
    found |= {(limit.code, limit.status) for limit in limits.LIMITS}
    found |= {(code, status) for status, code in HTTP_CODES.items()}
    return found


def documented() -> set[tuple[str, int]]:
    text = (ROOT / "docs" / "errors.md").read_text()
    return {(code, int(status)) for code, status in ROW.findall(text)}


def test_every_error_code_is_documented_with_its_status():
    missing = codes_in_the_code() - documented()
    assert not missing, f"add to docs/errors.md: {sorted(missing)}"


def test_the_table_lists_nothing_the_service_cannot_answer():
    stale = documented() - codes_in_the_code()
    assert not stale, f"no longer raised, remove from docs/errors.md: {sorted(stale)}"


def test_discovery_sees_multi_line_calls_and_the_limits():
    found = codes_in_the_code()
    assert ("invalid_image", 400) in found  # APIError(\n 400, "invalid_image", ...)
    assert ("output_too_large", 413) in found and ("internal_error", 500) in found
    assert Path(ROOT / "docs" / "errors.md").is_file()
