"""Overrides as the front doors give them (`--set`, an operator's `set=` and `inputs=`), made into one set."""

from __future__ import annotations

import json

from ..spec import Document


def input_overrides(document: Document, inputs: dict) -> dict:
    """Overrides for `inputs` given by name (an operator's `inputs=`); a name the job does not declare is an
    error, not a new input (a typo would otherwise run the job on the YAML's own value)."""
    from ..spec import Mark, Problem, SpecError
    from ..spec.errors import did_you_mean

    declared = document.model.inputs
    unknown = [name for name in inputs if name not in declared]
    if unknown:
        raise SpecError([Problem(Mark(f"inputs['{name}']", 0, 0), f"inputs.{name}",
                                 f"the job declares no input '{name}' (it declares: {', '.join(declared) or 'none'})",
                                 did_you_mean(name, declared)) for name in unknown])
    result = {}
    for name, value in inputs.items():
        spec = declared.get(name)
        if spec is not None and isinstance(value, str):
            if not spec.is_literal:
                result[f"{name}.path"] = value
                continue
            if spec.type in ("integer", "number", "boolean"):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
        result[name] = value
    return result


def merge_overrides(overrides, inputs: dict | None, compute: str | None) -> list[str] | dict | None:
    """One set of overrides. A list of `KEY=VALUE` stays text, read as `--set` reads it. A mapping keeps its
    values, except that a string written exactly as JSON writes a number, a boolean or null is that value (a
    rendered template "4" is the number 4; "1.10" stays a string)."""
    extra = {f"inputs.{k}": v for k, v in (inputs or {}).items()}
    if compute:
        extra["compute"] = compute
    if isinstance(overrides, (list, tuple)):
        return [*overrides, *(f"{k}={json.dumps(v)}" for k, v in extra.items())] or None
    merged = {k: _scalar(v) for k, v in (overrides or {}).items()}
    merged.update(extra)
    return merged or None


def _scalar(value):
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if not isinstance(parsed, (dict, list, str)) and json.dumps(parsed) == value.strip() else value
