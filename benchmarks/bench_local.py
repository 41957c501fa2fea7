"""Local backend costs, each as a ratio against a named baseline, in one run.

1. A no-op job through the engine vs. the same command through plain `subprocess` (the MLflow writes are
   timed separately and reported beside the ratio).
2. `mljobs job create -f hello-world.yml --stream`, wall time of the whole command (a fresh process): on the
   embedded store with no server (the command opens the SQLite store, importing MLflow), with the workspace's
   tracking server alive, and against an `mlflow server` (the command records over MLflow's REST API).
3. A job printing 1 GB to stdout, followed by the engine: throughput (MB/s) and memory growth of the follower.

Run: .venv/bin/python benchmarks/bench_local.py [--gigabytes 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bytecode import compile_package
from offline import stay_offline

ROOT = Path(__file__).resolve().parents[1]
NOOP = f"{sys.executable} -c pass"


def noop_job(home: Path, repeats: int) -> None:
    from airflow_mljobs.engine import Engine
    from airflow_mljobs.spec import load_text
    from airflow_mljobs.tracking.record import JobRecord, Tracker

    engine = Engine(home=home)
    engine.tracker  # open the store outside the timings (it is opened once per process)
    spent = {"mlflow": 0.0, "depth": 0, "since": 0.0}
    busy = threading.Lock()

    def timed(function):
        """Count the time during which any MLflow call runs: nested calls once, calls overlapping in two
        threads (the engine reads the run while it writes the end) as the span they cover together."""
        def wrapper(*args, **kwargs):
            with busy:
                if spent["depth"] == 0:
                    spent["since"] = time.perf_counter()
                spent["depth"] += 1
            try:
                return function(*args, **kwargs)
            finally:
                with busy:
                    spent["depth"] -= 1
                    if spent["depth"] == 0:
                        spent["mlflow"] += time.perf_counter() - spent["since"]
        return wrapper

    for cls, names in ((Tracker, ("create_job_run", "find_job", "experiment_id", "record", "run")),
                       (JobRecord, ("set_status", "log_text", "log_dir", "metrics", "set_tags",
                                    "status", "tags"))):
        for name in names:
            setattr(cls, name, timed(getattr(cls, name)))
    document = load_text(f"command: {NOOP}\n", "noop.yml", base_dir=home)
    engine_times, mlflow_times, plain_times = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["bash", "-c", NOOP], check=True)
        plain_times.append(time.perf_counter() - start)
        spent["mlflow"] = 0.0
        start = time.perf_counter()
        result = engine.wait(engine.submit(document))
        engine_times.append(time.perf_counter() - start)
        mlflow_times.append(spent["mlflow"])
        assert result.status == "Completed"
    plain, total, mlflow = (statistics.median(x) for x in (plain_times, engine_times, mlflow_times))
    print(f"no-op job       plain subprocess {plain * 1000:7.1f} ms | engine {total * 1000:7.1f} ms, of which MLflow "
          f"{mlflow * 1000:6.1f} ms | ratio without MLflow {(total - mlflow) / plain:5.2f}x (target <= 1.1x)")


def hello_world(home: Path, repeats: int, tracking_uri: str | None, label: str) -> None:
    env = {**os.environ, "MLJOBS_HOME": str(home)}
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    cli = [sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(ROOT / "dags/jobs/hello-world.yml"),
           "--stream"]
    subprocess.run(cli, env=env, check=True, capture_output=True)  # the store exists from here on
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cli, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    subprocess.run(["bash", "-c", 'echo "hello world"'], check=True, capture_output=True)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlflow"], check=True)
    mlflow_import = time.perf_counter() - start
    print(f"hello-world     `mljobs job create --stream`, {label}: {statistics.median(times):5.2f} s (target < 2 s) | "
          f"plain `bash -c echo` {plain * 1000:.1f} ms | `python -c 'import mlflow'` alone {mlflow_import:.2f} s")


def mlflow_server(folder: Path):
    """Start `mlflow server` on loopback; returns (url, process)."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no runner for MLflow's GenAI jobs
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).close()
            return url, process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("mlflow server did not start")


def big_stdout(home: Path, gigabytes: float) -> None:
    from airflow_mljobs.engine import Engine
    from airflow_mljobs.spec import load_text

    blocks = int(gigabytes * 1000)
    command = (f"python -c \"import sys; line = b'x' * 99 + b'\\n'; block = line * 10000; "
               f"[sys.stdout.buffer.write(block) for _ in range({blocks})]\"")
    engine = Engine(home=home)
    document = load_text(f"command: >-\n  {command}\n", "big.yml", base_dir=home)
    received = [0]

    def sink(text: str) -> None:
        received[0] += len(text)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    submission = engine.submit(document)
    start = time.perf_counter()
    result = engine.finalize(submission, engine.follow(submission, sink))
    elapsed = time.perf_counter() - start
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert result.status == "Completed" and received[0] == blocks * 1_000_000, received
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], check=True, stdout=subprocess.DEVNULL)
    plain = time.perf_counter() - start
    print(f"1 GB of stdout  engine follows {received[0] / 1e6 / elapsed:6.0f} MB/s (target >= 50), peak memory growth "
          f"{growth_mb:5.1f} MB (target <= 100) | writer alone to /dev/null {received[0] / 1e6 / plain:6.0f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    args = parser.parse_args()
    compile_package()
    stay_offline()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        noop_job(home, args.repeats)
        hello_world(home, args.repeats, None, "embedded SQLite store")
        from airflow_mljobs.tracking.server import server_url, stop_server
        from airflow_mljobs.tracking.store import resolve_tracking

        server_url(resolve_tracking(home))  # as a container job leaves it: the workspace's server, alive
        try:
            hello_world(home, args.repeats, None, "embedded store, its tracking server alive")
        finally:
            stop_server(home)
        url, server = mlflow_server(home)
        try:
            hello_world(home / "served", args.repeats, url, "mlflow server on loopback")
        finally:
            os.killpg(server.pid, 15)
            server.wait()
        big_stdout(home, args.gigabytes)


if __name__ == "__main__":
    main()
