"""`resources.docker_args` read into docker-py container settings, refusing what would weaken isolation.

Accepted: --ipc, --shm-size, --ulimit, --cpus, --memory/-m, --memory-swap, -e/--env, --gpus, --cap-add of a
harmless capability. Refused: --privileged, host pid/uts/userns namespaces, --network, volumes and devices,
security options, dangerous capabilities; and anything unknown, so that nothing is silently ignored.
"""

from __future__ import annotations

import re

from ..spec import SubmitError

REFUSED = {"--privileged", "--pid", "--uts", "--userns", "--network", "--net", "--volume", "-v", "--mount",
           "--device", "--security-opt", "--cgroupns", "--volumes-from", "--user", "-u", "--workdir", "-w"}
SAFE_CAPABILITIES = {"IPC_LOCK", "SYS_NICE", "SYS_PTRACE", "SYS_RESOURCE"}
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
TAKES_VALUE = {"--ipc", "--shm-size", "--ulimit", "--cpus", "--memory", "-m", "--memory-swap", "-e", "--env",
               "--gpus", "--cap-add"}


def parse_docker_args(args: tuple[str, ...] | list[str]) -> dict:
    """docker-py `containers.create` keyword arguments for `args`; SubmitError names a refused flag."""
    settings: dict = {}
    tokens = list(args)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        flag, _, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if flag in REFUSED:
            raise SubmitError(f"resources.docker_args: {flag} is refused: it would weaken the container's isolation")
        if flag not in TAKES_VALUE:
            raise SubmitError(f"resources.docker_args: {token} is not supported (supported: {', '.join(sorted(TAKES_VALUE))})")
        if not value:
            if i + 1 >= len(tokens):
                raise SubmitError(f"resources.docker_args: {flag} needs a value")
            i += 1
            value = tokens[i]
        _apply(settings, flag, value)
        i += 1
    return settings


def _apply(settings: dict, flag: str, value: str) -> None:
    from docker.types import Ulimit

    if flag == "--ipc":
        if value not in ("host", "private", "shareable", "none"):
            raise SubmitError(f"resources.docker_args: --ipc={value} is not supported")
        settings["ipc_mode"] = value
    elif flag == "--shm-size":
        settings["shm_size"] = size_in_bytes(value)
    elif flag == "--ulimit":
        name, _, limits = value.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            settings.setdefault("ulimits", []).append(Ulimit(name=name, soft=int(soft), hard=int(hard or soft)))
        except ValueError:
            raise SubmitError(f"resources.docker_args: --ulimit {value} is not name=soft[:hard]") from None
    elif flag == "--cpus":
        settings["nano_cpus"] = int(float(value) * 1e9)
    elif flag in ("--memory", "-m"):
        settings["mem_limit"] = size_in_bytes(value)
    elif flag == "--memory-swap":
        settings["memswap_limit"] = -1 if value == "-1" else size_in_bytes(value)
    elif flag in ("-e", "--env"):
        key, sep, val = value.partition("=")
        settings.setdefault("environment", {})[key] = val if sep else ""
    elif flag == "--gpus":
        settings["device_requests"] = [gpu_request(value)]
    elif flag == "--cap-add":
        if value.upper() not in SAFE_CAPABILITIES:
            raise SubmitError(f"resources.docker_args: --cap-add {value} is refused (allowed: {', '.join(sorted(SAFE_CAPABILITIES))})")
        settings.setdefault("cap_add", []).append(value.upper())


def gpu_request(value: str = "all"):
    from docker.types import DeviceRequest

    if value == "all":
        return DeviceRequest(count=-1, capabilities=[["gpu"]])
    if value.isdigit():
        return DeviceRequest(count=int(value), capabilities=[["gpu"]])
    if value.startswith("device="):
        return DeviceRequest(device_ids=value[len("device="):].split(","), capabilities=[["gpu"]])
    raise SubmitError(f"resources.docker_args: --gpus {value} is not all, a count or device=<ids>")


def size_in_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)b?", text.strip().lower())
    if not match:
        raise SubmitError(f"{text!r} is not a size such as 512m or 2g")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "b"])
