"""Rewrite the 2021 syntaxes of Azure ML job YAML into today's, warning at each legacy spelling.

2021-05 (the CLI 2.0 preview): `code.local_path`, `{inputs.x}`, `inputs.x.data.path` + `mode: mount`,
`environment.docker.image`, `conda_file: file:...`, `compute.target` / `compute.instance_count`,
`distribution.process_count` (a total), `type: sweep_job`, `algorithm`, top-level `max_total_trials`,
`max_concurrent_trials`, `timeout_minutes`, `trial.inputs`, `trial.compute`.
2021-11: `build.local_path`, inputs `{file: ...}`, `{folder: ...}`, `{dataset: ...}` (a name, or
`{local_path: <folder>}`).

Only shapes that are unmistakably legacy are touched; anything else is left for the schema to judge.
"""

from __future__ import annotations

import re

from .context import Context

_SINGLE_BRACE = re.compile(r"(?<![{$])\{(inputs|outputs|search_space)\.([A-Za-z0-9_.\-]+)\}(?!\})")
_LEGACY_MODES = {"mount": "ro_mount"}
_LEGACY_OUTPUT_MODES = {"mount": "rw_mount"}


def rewrite_legacy(doc: dict, ctx: Context) -> None:
    """Rewrite a job document (command or sweep) in place."""
    if doc.get("type") == "sweep_job":
        ctx.deprecated(("type",), "type: sweep_job", "type: sweep", needle="sweep_job")
        doc["type"] = "sweep"
    if doc.get("type") == "sweep":
        _rewrite_sweep(doc, ctx)
        if isinstance(doc.get("trial"), dict):
            _rewrite_command_body(doc["trial"], ("trial",), ctx, resources_at=("trial",))
        _rewrite_io(doc, (), ctx)
    else:
        _rewrite_compute(doc, ctx, resources_at=())
        _rewrite_command_body(doc, (), ctx, resources_at=())
        _rewrite_io(doc, (), ctx)


def rewrite_legacy_environment(env: dict, path: tuple, ctx: Context) -> None:
    """Rewrite an environment mapping (inline in a job, or an environment file)."""
    docker = env.get("docker")
    if isinstance(docker, dict) and "image" not in env and "build" not in env:
        if "image" in docker:
            ctx.deprecated(path + ("docker", "image"), "environment.docker.image", "environment.image")
            env["image"] = docker.pop("image")
            ctx.moved(path + ("docker", "image"), path + ("image",))
        build = docker.get("build")
        if isinstance(build, dict) and isinstance(build.get("dockerfile"), str):
            if not build["dockerfile"].startswith("file:"):  # the Dockerfile's text itself
                ctx.error(path + ("docker", "build", "dockerfile"), "an inline Dockerfile is not supported",
                          "write it to a file next to the YAML and give dockerfile: file:<that file>")
                return
            folder, _, name = _strip_file(build["dockerfile"]).rpartition("/")  # the context: its folder
            ctx.deprecated(path + ("docker", "build"), "environment.docker.build.dockerfile",
                           f"environment.build: {{path: {folder or '.'}, dockerfile_path: {name}}}")
            env["build"] = {"path": folder or ".", "dockerfile_path": name}
            ctx.moved(path + ("docker", "build", "dockerfile"), path + ("build",))
            docker.pop("build")
        if not docker:
            env.pop("docker")
    conda = env.get("conda_file")
    if isinstance(conda, str) and conda.startswith("file:"):
        ctx.deprecated(path + ("conda_file",), "conda_file: file:...", "a plain relative path",
                       needle="file:")
        env["conda_file"] = _strip_file(conda)
    build = env.get("build")
    if isinstance(build, dict) and "local_path" in build and "path" not in build:
        ctx.deprecated(path + ("build", "local_path"), "build.local_path", "build.path")
        build["path"] = build.pop("local_path")
        ctx.moved(path + ("build", "local_path"), path + ("build", "path"))


# -- sweep ----------------------------------------------------------------------------------------------
def _rewrite_sweep(doc: dict, ctx: Context) -> None:
    if "algorithm" in doc and "sampling_algorithm" not in doc:
        ctx.deprecated(("algorithm",), "algorithm", "sampling_algorithm")
        doc["sampling_algorithm"] = doc.pop("algorithm")
        ctx.moved(("algorithm",), ("sampling_algorithm",))
    limits_keys = [k for k in ("max_total_trials", "max_concurrent_trials", "timeout_minutes") if k in doc]
    if limits_keys and (not isinstance(doc.get("limits"), dict) and "limits" in doc):
        return  # a malformed `limits` is the schema's to report
    for key in limits_keys:
        limits = doc.setdefault("limits", {})
        value = doc.pop(key)
        if key == "timeout_minutes":
            ctx.deprecated((key,), "timeout_minutes", "limits.timeout (in seconds)")
            limits["timeout"] = value * 60 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            ctx.moved((key,), ("limits", "timeout"))
        else:
            ctx.deprecated((key,), key, f"limits.{key}")
            limits[key] = value
            ctx.moved((key,), ("limits", key))
    trial = doc.get("trial")
    if not isinstance(trial, dict):
        return
    if "inputs" in trial:
        ctx.deprecated(("trial", "inputs"), "trial.inputs", "inputs at the top of the sweep job")
        if isinstance(doc.get("inputs"), dict) and isinstance(trial["inputs"], dict):
            for name, value in trial.pop("inputs").items():
                if name in doc["inputs"]:
                    ctx.error(("trial", "inputs", name), f"input '{name}' is also set at the top level",
                              "keep one of them")
                else:
                    doc["inputs"][name] = value
                    ctx.moved(("trial", "inputs", name), ("inputs", name))
        elif "inputs" not in doc:
            doc["inputs"] = trial.pop("inputs")
            ctx.moved(("trial", "inputs"), ("inputs",))
    if "compute" in trial:
        ctx.deprecated(("trial", "compute"), "trial.compute", "compute at the top of the sweep job")
        if "compute" not in doc:
            doc["compute"] = trial.pop("compute")
            ctx.moved(("trial", "compute"), ("compute",))
    _rewrite_compute(doc, ctx, resources_at=("trial",))


# -- command body (a command job, or a sweep's trial) ---------------------------------------------------
def _rewrite_command_body(body: dict, path: tuple, ctx: Context, *, resources_at: tuple) -> None:
    code = body.get("code")
    if isinstance(code, dict) and set(code) == {"local_path"}:
        ctx.deprecated(path + ("code", "local_path"), "code.local_path", "code: <folder>")
        body["code"] = code["local_path"]
        ctx.moved(path + ("code", "local_path"), path + ("code",))
    command = body.get("command")
    if isinstance(command, str):
        for match in _SINGLE_BRACE.finditer(command):
            ctx.deprecated(path + ("command",), match.group(0), f"${{{{{match.group(1)}.{match.group(2)}}}}}",
                           needle=match.group(0))
        body["command"] = _SINGLE_BRACE.sub(lambda m: f"${{{{{m.group(1)}.{m.group(2)}}}}}", command)
    env = body.get("environment")
    if isinstance(env, dict):
        rewrite_legacy_environment(env, path + ("environment",), ctx)
    dist = body.get("distribution")
    if isinstance(dist, dict) and "process_count" in dist and "process_count_per_instance" not in dist:
        total = dist.pop("process_count")
        resources = _dig(ctx, resources_at + ("resources",))
        nodes = resources.get("instance_count", 1) if isinstance(resources, dict) else 1
        nodes = nodes if isinstance(nodes, int) and nodes > 0 else 1
        ctx.moved(path + ("distribution", "process_count"), path + ("distribution", "process_count_per_instance"))
        if isinstance(total, int) and not isinstance(total, bool) and total % nodes == 0:
            ctx.deprecated(path + ("distribution", "process_count"), "distribution.process_count (a total)",
                           f"distribution.process_count_per_instance: {total // nodes} (per node, "
                           f"with resources.instance_count: {nodes})")
            dist["process_count_per_instance"] = total // nodes
        else:
            ctx.error(path + ("distribution", "process_count_per_instance"),
                      f"process_count {total!r} cannot be split evenly over {nodes} node(s)",
                      "write distribution.process_count_per_instance instead")
            dist["process_count_per_instance"] = total


def _rewrite_compute(doc: dict, ctx: Context, *, resources_at: tuple) -> None:
    path = ()
    compute = doc.get("compute")
    if not isinstance(compute, dict) or not set(compute) <= {"target", "instance_count"}:
        return
    if "target" in compute:
        ctx.deprecated(path + ("compute", "target"), "compute.target", "compute: <name>")
        doc["compute"] = compute["target"]
        ctx.moved(path + ("compute", "target"), path + ("compute",))
    else:
        doc.pop("compute")
    if "instance_count" in compute:
        where = resources_at + ("resources",)
        holder = _dig(ctx, resources_at, create=True)
        if holder is None:
            return
        ctx.deprecated(path + ("compute", "instance_count"), "compute.instance_count",
                       "resources.instance_count" if not resources_at else "trial.resources.instance_count")
        resources = holder.setdefault("resources", {})
        if isinstance(resources, dict) and "instance_count" not in resources:
            resources["instance_count"] = compute["instance_count"]
            ctx.moved(path + ("compute", "instance_count"), where + ("instance_count",))


# -- inputs and outputs -------------------------------------------------------------------------------
def _rewrite_io(doc: dict, path: tuple, ctx: Context) -> None:
    inputs = doc.get("inputs")
    if isinstance(inputs, dict):
        for name, value in list(inputs.items()):
            if isinstance(value, dict):
                inputs[name] = _rewrite_input(value, path + ("inputs", name), ctx)
    outputs = doc.get("outputs")
    if isinstance(outputs, dict):
        for name, value in outputs.items():
            if isinstance(value, dict) and isinstance(value.get("mode"), str) and value["mode"] in _LEGACY_OUTPUT_MODES:
                ctx.deprecated(path + ("outputs", name, "mode"), f"mode: {value['mode']}",
                               f"mode: {_LEGACY_OUTPUT_MODES[value['mode']]}", needle=str(value["mode"]))
                value["mode"] = _LEGACY_OUTPUT_MODES[value["mode"]]


def _rewrite_input(value: dict, path: tuple, ctx: Context) -> dict:
    if "type" not in value and "path" not in value:
        for legacy, kind in (("file", "uri_file"), ("folder", "uri_folder"), ("dataset", "uri_folder")):
            found = _legacy_location(value.get(legacy), path + (legacy,))
            if found:
                written, where = found
                ctx.deprecated(written, f"{'.'.join(written[len(path):])}: ...", f"type: {kind} with path: ...")
                rest = {k: v for k, v in value.items() if k != legacy}
                ctx.moved(written, path + ("path",))
                value = {"type": kind, "path": where, **rest}
                break
        else:
            data = value.get("data")
            if isinstance(data, dict) and ("path" in data or "local_path" in data):
                key = "path" if "path" in data else "local_path"
                where = data[key]
                kind = _guess_kind(where)
                ctx.deprecated(path + ("data",), f"data.{key}", f"type: {kind} with path: ...")
                rest = {k: v for k, v in value.items() if k != "data"}
                ctx.moved(path + ("data", key), path + ("path",))
                value = {"type": kind, "path": _strip_file(where) if isinstance(where, str) else where, **rest}
            elif isinstance(data, str):
                ctx.deprecated(path + ("data",), "data: <asset>", "type: uri_folder with path: <asset>")
                rest = {k: v for k, v in value.items() if k != "data"}
                ctx.moved(path + ("data",), path + ("path",))
                value = {"type": "uri_folder", "path": data, **rest}
    mode = value.get("mode")
    if isinstance(mode, str) and mode.lower() in _LEGACY_MODES:
        ctx.deprecated(path + ("mode",), f"mode: {mode}", f"mode: {_LEGACY_MODES[mode.lower()]}", needle=mode)
        value["mode"] = _LEGACY_MODES[mode.lower()]
    return value


def _legacy_location(node, at: tuple) -> tuple[tuple, str] | None:
    """Where a 2021-11 input is and the path it is written at: `file: <url>`, `dataset: azureml:x:1`, or
    `dataset: {local_path: data}` (a local folder that Azure uploaded as a dataset)."""
    if isinstance(node, str):
        return at, node
    if isinstance(node, dict) and len(node) == 1:
        key, where = next(iter(node.items()))
        if key in ("local_path", "path") and isinstance(where, str):
            return at + (key,), where
    return None


def _guess_kind(where) -> str:
    """A 2021 `data` input named a file or a folder without saying which; a dotted last segment is a file."""
    if isinstance(where, str):
        last = where.rstrip("/").rsplit("/", 1)[-1]
        if "." in last.strip(".") and not where.endswith("/"):
            return "uri_file"
    return "uri_folder"


def _strip_file(value: str) -> str:
    return value[len("file:"):] if value.startswith("file:") else value


def _dig(ctx: Context, path: tuple, *, create: bool = False):
    node = ctx.source.data
    for part in path:
        if not isinstance(node, dict):
            return None
        if part not in node and create:
            node[part] = {}
        node = node.get(part)
    return node
