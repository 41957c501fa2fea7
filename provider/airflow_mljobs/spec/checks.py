"""Checks the schemas cannot express: binding names, numeric ranges, sizes the kernel would refuse at start, and
keys that mean nothing here."""

from __future__ import annotations

import difflib
import math
import posixpath

from .bindings import MAX_COMMAND_BYTES, contexts, references, unclosed
from .context import Context

MAX_RANKS = 1000  # processes (or containers) of one job, every instance's together; the schema caps each count
NOT_APPLICABLE = {
    "services": "interactive services (jupyter, ssh, tensorboard, vs code) are not started by mljobs",
    "identity": "mljobs runs with the credentials of the machine it runs on",
    "queue_settings": "mljobs has no job tiers or priorities",
}


def check_job(doc: dict, ctx: Context) -> None:
    """Runs after the schema, also on a document the schema rejected, so it trusts no shape."""
    sweep = doc.get("type") == "sweep"
    body, body_path = (doc.get("trial"), ("trial",)) if sweep else (doc, ())
    if not isinstance(body, dict):
        return
    names = {
        "inputs": set(_mapping(doc.get("inputs"))),
        "outputs": set(_mapping(doc.get("outputs"))),
        "search_space": set(_mapping(doc.get("search_space"))) if sweep else set(),
    }
    if isinstance(body.get("command"), str):
        _check_command(body["command"], body_path + ("command",), names, _mapping(doc.get("inputs")), sweep, ctx)
    _check_ranks(body, body_path, ctx)
    _check_variable_sizes(body, body_path, _mapping(doc.get("inputs")), ctx)
    for key, why in NOT_APPLICABLE.items():
        for holder, path in {id(doc): (doc, ()), id(body): (body, body_path)}.values():
            if key in holder:
                ctx.warn(path + (key,), f"'{key}' is accepted and not applicable", why, key=True)
    _check_environment(body.get("environment"), body_path + ("environment",), ctx)
    if sweep:
        _check_sweep(doc, ctx)


def check_environment(env: dict, ctx: Context, path: tuple = ()) -> None:
    _check_environment(env, path, ctx)


def _check_command(command: str, path: tuple, names: dict, inputs: dict, sweep: bool, ctx: Context) -> None:
    size = _size(command)
    if size > MAX_COMMAND_BYTES:
        ctx.error(path, f"the command is {size} bytes, over the limit of {MAX_COMMAND_BYTES}",
                  "Linux runs no single argument over 128 KiB (MAX_ARG_STRLEN), and the command is one: put a long "
                  "script in a file under code: and run that file")
        return
    _, left_open = contexts(command)
    quote = next((f[0] for f in left_open if f[0] in ("'", '"', "$'")), None)
    if quote:
        ctx.warn(path, f"the command ends inside a {quote}...{quote[-1]} string", "bash refuses a command whose quotes "
                 "do not close, and bindings after the open quote are quoted as inside it")
    for start in unclosed(command):
        closer = "}}" if start.startswith("${{") else "]]"
        ctx.error(path, f"'{start}' is not closed", f"a {'binding' if closer == '}}' else 'group'} ends with {closer}",
                  needle=start)
    for ref in references(command):
        if ref.kind is None:
            ctx.error(path, f"unknown binding {ref.text}",
                      "bindings are ${{inputs.<name>}}, ${{outputs.<name>}}"
                      + (" and ${{search_space.<name>}}" if sweep else ""), needle=ref.text)
            continue
        if ref.kind == "search_space" and not sweep:
            ctx.error(path, f"{ref.text} is only meaningful in a sweep job's trial.command", needle=ref.text)
            continue
        if ref.name not in names[ref.kind]:
            known = sorted(names[ref.kind])
            close = difflib.get_close_matches(ref.name, known, n=1)
            hint = (f"did you mean ${{{{{ref.kind}.{close[0]}}}}}?" if close
                    else f"declared {ref.kind}: {', '.join(known)}" if known else f"this job declares no {ref.kind}")
            if ref.optional:
                ctx.warn(path, f"{ref.text} names no declared {ref.kind[:-1] if ref.kind != 'search_space' else 'hyperparameter'}; its optional group is dropped", hint, needle=ref.text)
            else:
                ctx.error(path, f"{ref.text} names no declared {'hyperparameter' if ref.kind == 'search_space' else ref.kind[:-1]} '{ref.name}'", hint, needle=ref.text)
            continue
        if ref.kind == "inputs" and not ref.optional:
            spec = inputs.get(ref.name)
            if isinstance(spec, dict) and "value" not in spec and "path" not in spec:
                ctx.error(path, f"{ref.text} has no value outside an optional group",
                          f"give inputs.{ref.name} a value, or write $[[--flag {ref.text}]]", needle=ref.text)


def _check_ranks(body: dict, path: tuple, ctx: Context) -> None:
    """Each count is capped by the schema; their product is a job's number of ranks, capped here."""
    nodes = _mapping(body.get("resources")).get("instance_count", 1)
    dist = _mapping(body.get("distribution"))
    if dist.get("type") in ("pytorch", "mpi"):
        per = dist.get("process_count_per_instance", 1)
        counts, how, key = (nodes, per), f"{nodes} instances of {per} processes", "process_count_per_instance"
    elif dist.get("type") == "tensorflow":
        workers, servers = dist.get("worker_count", nodes), dist.get("parameter_server_count", 0)
        counts, how, key = (workers, servers), f"{workers} workers and {servers} parameter servers", "worker_count"
    else:
        return
    if not all(_is_count(c) and c <= MAX_RANKS for c in counts):
        return  # the schema said what is wrong with the count itself
    total = counts[0] * counts[1] if dist["type"] != "tensorflow" else sum(counts)
    if total > MAX_RANKS:
        ctx.error(path + ("distribution", key), f"{how} make {total} ranks, over the limit of {MAX_RANKS}",
                  "every rank of a job runs on this machine or its Docker engine")


def _check_variable_sizes(body: dict, path: tuple, inputs: dict, ctx: Context) -> None:
    """An environment variable over Linux's limit for one string fails the job's start; literal inputs become
    variables too (AZURE_ML_INPUT_<name>)."""
    found = [(path + ("environment_variables", name), value)
             for name, value in _mapping(body.get("environment_variables")).items()]
    found += [(("inputs", name), spec.get("value")) for name, spec in inputs.items() if isinstance(spec, dict)]
    for where, value in found:
        if isinstance(value, str) and _size(value) > MAX_COMMAND_BYTES:
            ctx.error(where, f"the value is {_size(value)} bytes, over the limit of {MAX_COMMAND_BYTES} for an "
                      "environment variable", "Linux starts no process with a longer one (MAX_ARG_STRLEN): pass it "
                      "in a file (a uri_file input)")


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_environment(env, path: tuple, ctx: Context) -> None:
    if isinstance(env, str) and not env.startswith(("azureml:", "file:", "http://", "https://")):
        ctx.warn(path, f"'{env}' is read as the name of a registered environment",
                 "write azureml:<name>:<version> for a registered one, or image: <image> for a Docker image",
                 needle=env)
    if not isinstance(env, dict):
        return
    build = env.get("build")
    if isinstance(build, dict) and isinstance(build.get("dockerfile_path"), str):
        if _escapes(build["dockerfile_path"]):
            ctx.error(path + ("build", "dockerfile_path"), "dockerfile_path must stay inside the build context",
                      "give a path relative to build.path without '..'")


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _check_sweep(doc: dict, ctx: Context) -> None:
    for name, dimension in _mapping(doc.get("search_space")).items():
        if isinstance(dimension, dict):
            _check_distribution(dimension, ("search_space", name), ctx)
    limits = _mapping(doc.get("limits"))
    total, concurrent = limits.get("max_total_trials"), limits.get("max_concurrent_trials")
    if isinstance(total, int) and isinstance(concurrent, int) and concurrent > total:
        ctx.warn(("limits", "max_concurrent_trials"),
                 f"max_concurrent_trials ({concurrent}) exceeds max_total_trials ({total})",
                 f"at most {total} trials will run at once")
    if _mapping(doc.get("sampling_algorithm")).get("type") == "grid":
        size = grid_size(_mapping(doc.get("search_space")))
        if isinstance(total, int) and size > total:
            ctx.warn(("limits", "max_total_trials"),
                     f"the grid has {size} points and max_total_trials is {total}: only {total} will run",
                     f"raise limits.max_total_trials to {min(size, 1000)}")


def grid_size(space: dict) -> int:
    """Number of points in a grid of choices (a choice of dicts counts each dict as one point)."""
    return math.prod(
        len(d["values"]) for d in space.values() if isinstance(d, dict) and isinstance(d.get("values"), list)
    )


def _check_distribution(dimension: dict, path: tuple, ctx: Context) -> None:
    kind = dimension.get("type")
    low, high = dimension.get("min_value"), dimension.get("max_value")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low >= high:
        ctx.error(path + ("max_value",), f"max_value ({high}) must be greater than min_value ({low})")
    if kind in ("loguniform", "qloguniform") and isinstance(high, (int, float)) and high > 700:
        ctx.error(path + ("max_value",), f"{kind} bounds are exponents: exp({high}) overflows",
                  f"did you mean max_value: {math.log(high):.4g} (the log of {high})?")
    elif (kind in ("loguniform", "qloguniform") and isinstance(low, (int, float)) and isinstance(high, (int, float))
          and 0 < low < high <= 1):  # values where exponents belong: a learning rate of 1.001 to 2.7, likely a slip
        ctx.warn(path, f"{kind} bounds are exponents: this draws from {math.exp(low):.4g} to {math.exp(high):.4g}",
                 f"for {low:g} to {high:g}, write min_value: {math.log(low):.4g}, max_value: {math.log(high):.4g}")
    if kind == "choice" and isinstance(dimension.get("values"), list):
        for i, option in enumerate(dimension["values"]):
            if isinstance(option, dict):
                for key, inner in option.items():
                    if isinstance(inner, dict) and "type" in inner:
                        _check_distribution(inner, path + ("values", i, key), ctx)


def _escapes(relative: str) -> bool:
    if relative.startswith("/"):
        return True
    return posixpath.normpath(relative).split("/")[0] == ".."
