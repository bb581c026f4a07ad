"""One name for the input at fault in RFC 9457 bodies: ``param`` (an extension member), whether the error is a
request validation error (``api/errors.py``) or a domain error raised anywhere (``geo.errors``): no raiser names
it ``parameter`` or ``field``."""

from __future__ import annotations

import ast
from pathlib import Path

import geo.errors
from geo.errors import DolbomError

ROOT = Path(__file__).resolve().parents[2]
OTHER_NAMES = frozenset({"parameter", "field"})


def _error_classes() -> set[str]:
    found: set[str] = set()
    todo: list[type] = [DolbomError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def test_domain_errors_name_the_input_param() -> None:
    names = _error_classes()
    assert {"InvalidQuery", "NotFound", "Conflict", "InvalidReport"} <= names, geo.errors.__name__
    offenders = []
    for package in ("geo", "api", "tiles"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if called in names:
                    offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {kw.arg}="
                                  for kw in node.keywords if kw.arg in OTHER_NAMES]
    assert offenders == []
