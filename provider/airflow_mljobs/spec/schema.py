"""Validate canonical documents against the JSON Schemas in `schemas/` and turn failures into located problems.

The schemas are the one source of truth for what a document may hold; this module only explains their
verdicts in a user's words: the unknown key with a "did you mean", the missing key, the allowed values.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from .context import Context

SCHEMA_FILES = ("common", "commandJob", "sweepJob", "environment", "compute")
KIND_SCHEMA = {"command": "commandJob", "sweep": "sweepJob", "environment": "environment", "compute": "compute"}


def schema_text(name: str) -> str:
    return (resources.files("airflow_mljobs") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _validator(name: str) -> Draft202012Validator:
    documents = {n: json.loads(schema_text(n)) for n in SCHEMA_FILES}
    registry = Registry().with_resources(
        (f"https://airflow-mljobs.invalid/schemas/{n}.schema.json", Resource.from_contents(doc)) for n, doc in documents.items()
    )
    root = dict(documents[name], **{"$id": f"https://airflow-mljobs.invalid/schemas/{name}.schema.json"})
    return Draft202012Validator(root, registry=registry)


def validate(doc, kind: str, ctx: Context, prefix: tuple = ()) -> None:
    """Report every schema violation of `doc` (a `kind` document found at `prefix` in the source)."""
    validator = _validator(KIND_SCHEMA[kind])
    found = [explained for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
             for explained in _explain(error)]
    misjudged = {path[:-1] for path, *_ in found if _input_type(path, doc) not in (None, *INPUT_TYPES)}
    said = set()  # one violation can reach the same words through several branches of a schema
    for path, message, hint, key in found:
        if path[:len(path) - 1] in misjudged and path[-1] == "type":
            value = _input_type(path, doc)
            close = difflib.get_close_matches(str(value), INPUT_TYPES, n=1)
            message, hint = f"{value!r} is not an input type: {', '.join(INPUT_TYPES)}", \
                f"did you mean '{close[0]}'?" if close else ""
        elif any(path[:len(p)] == p for p in misjudged):
            continue  # what follows from reading a misspelt literal input as a data input
        if (path, message) not in said:
            said.add((path, message))
            ctx.error(prefix + path, message, hint, key=key)


INPUT_TYPES = ("string", "integer", "number", "boolean", "uri_file", "uri_folder", "mltable", "mlflow_model",
               "custom_model", "triton_model")


def _input_type(path: tuple, doc):
    """The `type` written for the input at `path` (inputs.<name>.type, or under a sweep's trial), else None."""
    if len(path) < 3 or path[-3] != "inputs" or path[-1] != "type":
        return None
    node = doc
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, str) else None


def _explain(error: ValidationError):
    """Yield (path, message, hint, at_key) for one jsonschema error, descending into if/anyOf branches."""
    path = tuple(error.absolute_path)
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    hint = error.schema.get("x-hint", "") if isinstance(error.schema, dict) else ""
    if "propertyNames" in error.schema_path and isinstance(error.instance, str):  # a key, not a value, is wrong
        yield path + (error.instance,), f"the name '{error.instance}' {custom or 'is not allowed'}", "", True
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        for key in _unexpected(error):
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed keys here: {', '.join(allowed)}"
            yield path + (key,), f"unknown key '{key}'", hint, True
        return
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield path, custom or f"missing required key '{missing}'", "", True
        return
    if error.validator in ("anyOf", "oneOf") and error.context and not custom:
        deepest = best_match(error.context)
        yield from _explain(deepest)
        return
    if error.validator == "enum":
        options = ", ".join(str(v) for v in error.validator_value)
        value = error.instance
        close = difflib.get_close_matches(str(value), [str(v) for v in error.validator_value], n=1)
        hint = f"did you mean '{close[0]}'?" if close else ""
        yield path, custom or f"{value!r} is not one of: {options}", hint, False
        return
    if error.validator == "const":
        yield path, custom or f"must be {error.validator_value!r}, not {error.instance!r}", "", False
        return
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        yield path, custom or f"expected {expected}, got {_kind(error.instance)} {_short(error.instance)}", "", False
        return
    yield path, custom or _plain(error), hint, False


def _unexpected(error: ValidationError) -> list[str]:
    props = error.schema.get("properties") or {}
    return [k for k in error.instance if k not in props]


def _plain(error: ValidationError) -> str:
    message = error.message
    return message if len(message) < 200 else message[:200] + "..."


def _kind(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping",
            type(None): "null"}.get(type(value), type(value).__name__)


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
