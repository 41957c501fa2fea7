"""MLflow's REST API, spoken directly for the calls a job's record makes.

A task instance or a CLI command is a process of its own, and importing MLflow's client (pandas, alembic and
fastapi come with it) costs it more than the job's record itself. Against a tracking server (the
workspace's own, or one the user names) the record is a handful of calls of MLflow's documented REST API,
made here over one kept-alive connection per thread. Anything else asked of this client (figures,
downloads, listings of artifacts) goes to MLflow's own client, imported when first needed.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import http.client
import json
import os
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from ..loading import collector_paused

API = "/api/2.0/mlflow"
RETRIED_STATUSES = {429, 500, 502, 503, 504}
RETRIES = 5  # attempts in all, ~3 s of back-off: a server restarting or busy, as MLflow's own client retries
PAGE = 1000
# MLflow settings this client cannot honour; with any of them set, MLflow's own client is used
MLFLOW_ONLY_SETTINGS = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4", "MLFLOW_TRACKING_CLIENT_CERT_PATH")

_bound = threading.local()  # the deadline (monotonic) of the write this thread makes, if one is set


@contextlib.contextmanager
def deadline(at: float):
    """Calls made in the block neither wait past `at` (a second's grace) nor are asked again after it: a write
    asked again by `pending.attempt` is bounded by its budget, not by five tries of the request timeout."""
    _bound.at = at
    try:
        yield
    finally:
        _bound.at = None


def speaks(uri: str) -> bool:
    """Whether this client can stand in for MLflow's at `uri`."""
    return uri.startswith(("http://", "https://")) and not any(os.environ.get(k) for k in MLFLOW_ONLY_SETTINGS)


class RestError(Exception):
    def __init__(self, message: str, error_code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


# -- what the server returns, in the shape of MLflow's own entities (the attributes this project reads) ----------
@dataclass(frozen=True)
class KeyValue:  # a parameter or a tag
    key: str
    value: str


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str | None
    lifecycle_stage: str


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


class RestClient:
    """The subset of `mlflow.tracking.MlflowClient` a job's record uses, with the same names and shapes."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        parts = urllib.parse.urlsplit(self.uri)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._prefix = parts.path
        self._timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120"))
        self._headers = _auth_headers()
        self._local = threading.local()
        self._mlflow_client = None

    def __getattr__(self, name: str):
        """What this client does not speak, MLflow's client does (imported on first use)."""
        if name.startswith("_"):
            raise AttributeError(name)
        if self._mlflow_client is None:
            with collector_paused():
                from mlflow.tracking import MlflowClient

                self._mlflow_client = MlflowClient(tracking_uri=self.uri)
        return getattr(self._mlflow_client, name)

    # -- experiments --------------------------------------------------------------------------------------------
    def search_experiments(self, max_results: int | None = None) -> list[Experiment]:
        found, token = [], None
        while True:
            body = {"max_results": min(max_results or PAGE, PAGE), **({"page_token": token} if token else {})}
            page = self._call("POST", "/experiments/search", body)
            found += [_experiment(e) for e in page.get("experiments", [])]
            token = page.get("next_page_token")
            if not token or (max_results and len(found) >= max_results):
                return found[:max_results] if max_results else found

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            return _experiment(self._call("GET", "/experiments/get-by-name", query={"experiment_name": name})["experiment"])
        except RestError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def create_experiment(self, name: str, artifact_location: str | None = None) -> str:
        body = {"name": name, **({"artifact_location": artifact_location} if artifact_location else {})}
        return self._call("POST", "/experiments/create", body)["experiment_id"]

    # -- runs -------------------------------------------------------------------------------------------------------
    def create_run(self, experiment_id: str, tags: dict[str, str] | None = None, run_name: str | None = None) -> Run:
        body = {"experiment_id": experiment_id, "start_time": _now(), "user_id": _user(),
                "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]}
        if run_name:
            body["run_name"] = run_name
        return _run(self._call("POST", "/runs/create", body)["run"])

    def get_run(self, run_id: str) -> Run:
        return _run(self._call("GET", "/runs/get", query={"run_id": run_id})["run"])

    def search_runs(self, experiment_ids: list[str], filter_string: str = "", max_results: int = 1000,
                    order_by: list[str] | None = None) -> list[Run]:
        found, token = [], None
        while len(found) < max_results:
            body = {"experiment_ids": list(experiment_ids), "filter": filter_string, "run_view_type": "ACTIVE_ONLY",
                    "max_results": min(max_results - len(found), PAGE), "order_by": list(order_by or [])}
            if token:
                body["page_token"] = token
            page = self._call("POST", "/runs/search", body)
            found += [_run(r) for r in page.get("runs", [])]
            token = page.get("next_page_token")
            if not token:
                break
        return found

    def log_batch(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        body = {"run_id": run_id,
                "metrics": [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step} for m in metrics],
                "params": [{"key": p.key, "value": str(p.value)} for p in params],
                "tags": [{"key": t.key, "value": str(t.value)} for t in tags]}
        self._call("POST", "/runs/log-batch", body)

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None) -> None:
        self._call("POST", "/runs/log-metric", {"run_id": run_id, "key": key, "value": value,
                                                "timestamp": timestamp or _now(), "step": step or 0})

    def set_terminated(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        self._call("POST", "/runs/update", {"run_id": run_id, "status": status, "end_time": end_time or _now()})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        found, token = [], None
        while True:
            query = {"run_id": run_id, "metric_key": key, "max_results": 25000, **({"page_token": token} if token else {})}
            page = self._call("GET", "/metrics/get-history", query=query)
            found += [_metric(m) for m in page.get("metrics", [])]
            token = page.get("next_page_token")
            if not token:
                return found

    # -- the wire -----------------------------------------------------------------------------------------------
    def put_file(self, path: str, local_file: str, content_type: str) -> None:
        """Upload a file to `path` on the server (proxied artifacts), streamed from disk."""
        size = os.path.getsize(local_file)
        with open(local_file, "rb") as body:
            self._request("PUT", path, body, {"Content-Type": content_type, "Content-Length": str(size)})

    def _call(self, method: str, endpoint: str, body: dict | None = None, query: dict | None = None) -> dict:
        path = API + endpoint + ("?" + urllib.parse.urlencode(query) if query else "")
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        return self._request(method, path, payload, headers)

    def _request(self, method: str, path: str, payload, headers: dict) -> dict:
        """One call, asked again (with a new connection if need be) while the server is unreachable or busy."""
        bound = getattr(_bound, "at", None)
        for attempt in range(RETRIES):
            if hasattr(payload, "seek"):
                payload.seek(0)
            last = attempt == RETRIES - 1 or (bound is not None and time.monotonic() + 0.1 * 2 ** attempt > bound)
            try:
                connection = self._connection()
                timeout = self._timeout if bound is None else max(1.0, min(self._timeout, bound - time.monotonic() + 1))
                if connection.timeout != timeout:  # a bounded write's, or the one after it on this connection
                    connection.timeout = timeout
                    if connection.sock is not None:
                        connection.sock.settimeout(timeout)
                connection.request(method, self._prefix + path, body=payload, headers={**self._headers, **headers})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, or a kept-alive socket gone stale
                self._local.connection = None
                if last:
                    raise RestError(f"cannot reach the MLflow tracking server {self.uri}: {exc}") from None
            else:
                if response.status < 300:
                    return json.loads(data) if data.strip() else {}
                if response.status not in RETRIED_STATUSES or last:
                    raise _error(response.status, data, method, path)
            time.sleep(0.1 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(self._netloc, timeout=self._timeout, context=_tls_context())
            else:
                connection = http.client.HTTPConnection(self._netloc, timeout=self._timeout)
            self._local.connection = connection
        return connection


def _auth_headers() -> dict[str, str]:
    """MLflow's own settings for a server behind authentication: a bearer token, or a user and password."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _error(status: int, data: bytes, method: str, path: str) -> RestError:
    try:
        answer = json.loads(data)
        return RestError(f"{answer.get('error_code', status)}: {answer.get('message', '')}",
                         answer.get("error_code", ""), status)
    except ValueError:
        text = data.decode(errors="replace").strip()[:300]
        return RestError(f"the MLflow tracking server answered {status} to {method} {path.split('?')[0]}: {text}",
                         "", status)


def _now() -> int:
    return int(time.time() * 1000)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _experiment(e: dict) -> Experiment:
    return Experiment(e["experiment_id"], e["name"], e.get("artifact_location"), e.get("lifecycle_stage", "active"))


def _run(r: dict) -> Run:
    info, data = r["info"], r.get("data", {})
    metrics: dict[str, float] = {}
    for m in data.get("metrics", []):  # the server sends each metric's latest value
        metrics[m["key"]] = float(m["value"])
    return Run(
        RunInfo(info.get("run_id") or info["run_uuid"], info["experiment_id"], info.get("run_name"),
                info.get("status", "RUNNING"), _int(info.get("start_time")), _int(info.get("end_time")),
                info.get("artifact_uri"), info.get("lifecycle_stage", "active")),
        RunData(metrics, {p["key"]: p.get("value", "") for p in data.get("params", [])},
                {t["key"]: t.get("value", "") for t in data.get("tags", [])}),
    )


def _metric(m: dict) -> Metric:
    return Metric(m["key"], float(m["value"]), _int(m.get("timestamp")) or 0, _int(m.get("step")) or 0)


def _int(value) -> int | None:
    return int(value) if value is not None else None
