"""Expand today's shorthands into the one canonical form that the schemas describe and the model reads.

A literal input `epochs: 3` becomes `{type: integer, value: 3}`; an empty output becomes
`{type: uri_folder, mode: rw_mount}`; `sampling_algorithm: random` becomes `{type: random}`; enum values
are lower-cased (`type: Pytorch` is `pytorch`, as Azure reads it); documented defaults are written out so
that the printed job says what will happen. Shapes this module does not recognise are left alone for the
schema to report.
"""

from __future__ import annotations

import json
import shlex

from .context import Context

LITERAL_TYPES = {"string", "integer", "number", "boolean"}
DATA_TYPES = {"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"}
DEFAULT_SWEEP_LIMITS = {"max_total_trials": 1000, "timeout": 5_184_000}  # Azure's documented defaults


def canonical_job(doc: dict, ctx: Context) -> None:
    doc.setdefault("type", "command")
    _lower(doc, "type")
    if doc["type"] == "sweep":
        _sweep(doc, ctx)
        if isinstance(doc.get("trial"), dict):
            _command_body(doc["trial"], ("trial",), ctx)
    else:
        _command_body(doc, (), ctx)
    _inputs(doc, ctx)
    _outputs(doc)
    for key in ("identity", "queue_settings"):
        if isinstance(doc.get(key), dict):
            _lower(doc[key], "type", "job_tier", "priority")
    if isinstance(doc.get("services"), dict):
        for service in doc["services"].values():
            if isinstance(service, dict):
                _lower(service, "type")
    if doc["type"] == "sweep" and isinstance(doc.get("resources"), dict):
        _resources(doc["resources"], ("resources",), ctx)


def canonical_environment(env: dict, ctx: Context, path: tuple = ()) -> None:
    _lower(env, "os_type")
    build = env.get("build")
    if isinstance(build, dict) and "path" in build:
        build.setdefault("dockerfile_path", "Dockerfile")


def canonical_compute(doc: dict, ctx: Context) -> None:
    _lower(doc, "type", "tier")
    if isinstance(doc.get("identity"), dict):
        _lower(doc["identity"], "type")


# -- parts -----------------------------------------------------------------------------------------------
def _command_body(body: dict, path: tuple, ctx: Context) -> None:
    if isinstance(body.get("command"), str):
        body["command"] = body["command"].strip()  # a folded `>` block ends in a newline that means nothing
    env = body.get("environment")
    if isinstance(env, dict):
        canonical_environment(env, ctx)
    variables = body.get("environment_variables")
    if isinstance(variables, dict):
        for name, value in variables.items():
            if isinstance(value, dict) and set(value) == {"value"}:
                value = value["value"]
            variables[name] = _env_text(value)
    if isinstance(body.get("resources"), dict):
        _resources(body["resources"], path + ("resources",), ctx)
    dist = body.get("distribution")
    if isinstance(dist, dict):
        _lower(dist, "type")
        _whole(dist, "process_count_per_instance", "worker_count", "parameter_server_count")
        nodes = body.get("resources", {}).get("instance_count", 1) if isinstance(body.get("resources"), dict) else 1
        if dist.get("type") in ("pytorch", "mpi"):
            dist.setdefault("process_count_per_instance", 1)
        elif dist.get("type") == "tensorflow":
            dist.setdefault("worker_count", nodes if isinstance(nodes, int) else 1)
            dist.setdefault("parameter_server_count", 0)


def _resources(resources: dict, path: tuple, ctx: Context) -> None:
    resources.setdefault("instance_count", 1)
    _whole(resources, "instance_count")
    args = resources.get("docker_args")
    if isinstance(args, str):
        try:
            resources["docker_args"] = shlex.split(args)
        except ValueError as exc:
            ctx.error(path + ("docker_args",), f"cannot split docker_args: {exc}", "balance the quotes")


def _env_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _inputs(doc: dict, ctx: Context) -> None:
    inputs = doc.get("inputs")
    if not isinstance(inputs, dict):
        return
    for name, value in list(inputs.items()):
        inputs[name] = _input(value)


def _input(value):
    if value is None:
        return {"type": "string", "optional": True}
    if isinstance(value, (bool, int, float, str)):
        return {"type": _literal_type(value), "value": value}
    if not isinstance(value, dict):
        return value
    _lower(value, "type", "mode")
    kind = value.get("type")
    if "value" in value or (isinstance(kind, str) and kind in LITERAL_TYPES):
        if "value" not in value and "default" in value:
            value["value"] = value["default"]
        if kind is None:
            value["type"] = _literal_type(value.get("value"))
        if value.get("value") is None:
            value.pop("value", None)
            value.setdefault("optional", True)
        return value
    value.setdefault("type", "uri_folder")
    if isinstance(value.get("type"), str) and value["type"] in DATA_TYPES:
        value.setdefault("mode", "ro_mount")
    path = value.get("path")
    if isinstance(path, str) and path.startswith("file:") and not path.startswith("file://"):
        value["path"] = path[len("file:"):]
    return value


def _literal_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _outputs(doc: dict) -> None:
    outputs = doc.get("outputs")
    if not isinstance(outputs, dict):
        return
    for name, value in list(outputs.items()):
        if value is None:
            outputs[name] = value = {}
        if isinstance(value, dict):
            _lower(value, "type", "mode")
            value.setdefault("type", "uri_folder")
            value.setdefault("mode", "rw_mount")


def _sweep(doc: dict, ctx: Context) -> None:
    sampling = doc.get("sampling_algorithm")
    if isinstance(sampling, str):
        doc["sampling_algorithm"] = sampling = {"type": sampling}
    if isinstance(sampling, dict):
        _lower(sampling, "type", "rule")
        if sampling.get("type") == "random":
            sampling.setdefault("rule", "random")
    space = doc.get("search_space")
    if isinstance(space, dict):
        for dimension in space.values():
            _distribution(dimension)
    if isinstance(doc.get("objective"), dict):
        _lower(doc["objective"], "goal")
    limits = doc.get("limits")
    if limits is None:
        doc["limits"] = limits = {}
    if isinstance(limits, dict):
        for key, default in DEFAULT_SWEEP_LIMITS.items():
            limits.setdefault(key, default)
        total = limits.get("max_total_trials")
        if "max_concurrent_trials" not in limits and _is_int(total) and 1 <= total <= 1000:
            limits["max_concurrent_trials"] = limits["max_total_trials"]
    policy = doc.get("early_termination")
    if isinstance(policy, dict):
        _lower(policy, "type")
        policy.setdefault("evaluation_interval", 1)
        policy.setdefault("delay_evaluation", 0)


def _distribution(node) -> None:
    """Lower-case distribution types, down into the dictionaries of a conditional `choice`."""
    if not isinstance(node, dict):
        return
    _lower(node, "type")
    if node.get("type") == "choice" and isinstance(node.get("values"), list):
        for option in node["values"]:
            if isinstance(option, dict):
                for inner in option.values():
                    if isinstance(inner, dict) and "type" in inner:
                        _distribution(inner)


def _whole(node: dict, *keys: str) -> None:
    """A count written `2.0` (or `--set ...=2.0`) is 2: the schema takes it for an integer, and so must the model."""
    for key in keys:
        value = node.get(key)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            node[key] = int(value)


def _lower(node: dict, *keys: str) -> None:
    for key in keys:
        if isinstance(node.get(key), str):
            node[key] = node[key].lower()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def dumps_value(value) -> str:
    """A literal as it reaches a command line: JSON for booleans (`true`), plain text otherwise."""
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)
