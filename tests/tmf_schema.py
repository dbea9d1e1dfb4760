"""Validate our responses against the official TMF v4 Swagger definitions in ../shared/tmf/.

Usage in a test:  tmf_schema.assert_conforms("TMF620", "ProductOffering", body)
Tests are skipped with a message when the folder is absent (e.g. a clone without shared/).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TMF_DIR = Path(os.environ.get("BSS_TMF_DIR", ROOT.parent / "shared" / "tmf"))


@cache
def spec(api: str) -> dict[str, Any]:
    if not TMF_DIR.is_dir():
        pytest.skip(f"TMF specifications not found at {TMF_DIR}; set BSS_TMF_DIR to check conformance.")
    matches = sorted(TMF_DIR.glob(f"{api}-*.swagger.json"))
    if not matches:
        pytest.skip(f"No {api} specification in {TMF_DIR}.")
    return json.loads(matches[0].read_text())


def _schema(api: str, definition: str) -> dict[str, Any]:
    doc = spec(api)
    # Swagger 2.0 definitions are JSON Schema draft 4; refs point into the same document.
    return {"$ref": f"#/definitions/{definition}", "definitions": doc["definitions"]}


def errors(api: str, definition: str, instance: Any) -> list[str]:
    from jsonschema import Draft4Validator, FormatChecker

    validator = Draft4Validator(_schema(api, definition), format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def assert_conforms(api: str, definition: str, instance: Any) -> None:
    found = errors(api, definition, instance)
    assert not found, f"{api} {definition} does not conform:\n" + "\n".join(found[:20])


def required_fields(api: str, definition: str) -> list[str]:
    return list(spec(api)["definitions"][definition].get("required", []))
