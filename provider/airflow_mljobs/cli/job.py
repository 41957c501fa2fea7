"""`mljobs job ...`: validate, create, stream, show, list, download, cancel (in the shape of `az ml job`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from ..spec import MlJobsError, SpecError
from ._options import emit, fail_spec, file_option, output_option, print_problems, set_option
from ._validate import validate_file

EXIT_CODES = {"Completed": 0, "Failed": 1, "Canceled": 2}
INTERRUPTED = 130  # `job stream` stopped by Ctrl-C while the job goes on (the shell's code for SIGINT)
name_option = click.option("-n", "--name", required=True, help="The job's name.")


@click.group()
def job() -> None:
    """Command and sweep jobs."""


@job.command()
@file_option
@set_option
@output_option
def validate(path: str, overrides: tuple[str, ...], fmt: str) -> None:
    """Validate a job YAML of any era and print its normalised form; warnings go to stderr.

    Exit 0 when valid, 2 with every problem (file:line:column, YAML path, message, hint) when not.
    """
    validate_file(path, overrides, fmt, {"command", "sweep"}, check=lambda document: _engine().check(document))


@job.command()
@file_option
@set_option
@click.option("-n", "--name", default=None, help="The job's name (unique); generated when omitted.")
@click.option("-e", "--experiment-name", default=None, help="Experiment to record the job in.")
@click.option("--stream", is_flag=True, help="Follow the log until the job ends; exit 0 Completed, 1 Failed, "
              "2 Canceled or timed out.")
@click.option("--dry-run", is_flag=True, help="Print the execution plan and start nothing.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "yaml", "json"]), default="text")
def create(path, overrides, name, experiment_name, stream, dry_run, fmt) -> None:
    """Create (submit) a job from a YAML file and print its name."""
    from ..engine import Engine

    engine = _engine()
    with _user_errors():
        document = engine.load(path, list(overrides))
        print_problems(document.warnings)
        if document.kind == "sweep":
            _create_sweep(Engine(), document, path, overrides, name, experiment_name, stream, dry_run)
            return
        if dry_run:
            engine.check(document)
            plan = engine.plan(document, name=name)
            emit(plan.to_dict(), "json" if fmt == "json" else "yaml")
            return
        try:
            submission = engine.submit(document, name=name, experiment_name=experiment_name,
                                       log=sys.stdout.write if stream else None)
        except KeyboardInterrupt:  # the engine recorded the job as Canceled and started nothing
            click.echo("\ninterrupted: the job was canceled before it started", err=True)
            sys.exit(EXIT_CODES["Canceled"])
    for note in submission.notes:
        click.echo(f"note: {note}", err=True)
    if not stream:
        _start_watcher(submission.name)
        _print_started(submission, fmt)
        return
    sys.exit(_stream(engine, submission))


@job.command(name="stream")
@name_option
def stream_(name: str) -> None:
    """Follow a job's log until it ends, then print its Execution Summary. Ctrl-C stops following; the job goes on."""
    engine = _engine()
    with _user_errors():
        if _is_sweep(engine, name):
            sys.exit(_stream_sweep(engine, name))
        submission = engine.attach(name)
    sys.exit(_stream(engine, submission, cancel_on_interrupt=False))


@job.command()
@name_option
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
def show(name: str, fmt: str) -> None:
    """Show a job's status, metrics, parameters and tags."""
    with _user_errors():
        info = _engine().show(name)
    if fmt == "table":
        rows = [(key, info[key]) for key in ("name", "type", "status", "compute", "experiment_id", "run_id",
                                             "start_time", "end_time", "exit_code", "failure_reason")
                if info.get(key) is not None]
        rows += [(f"{group[:-1]}.{key}", value) for group in ("metrics", "params", "tags")
                 for key, value in sorted(info[group].items())]
        width = max(len(key) for key, _ in rows)
        for key, value in rows:
            click.echo(f"{key:<{width}}  {value}")
    else:
        emit(info, fmt)


@job.command(name="list")
@click.option("--experiment", "experiment", default=None, help="Only jobs of this experiment.")
@click.option("--status", default=None, help="Only jobs with this status (Running, Completed, Failed, ...).")
@click.option("--max-results", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--include-children", is_flag=True, help="Also list sweep trials (child jobs).")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
def list_(experiment, status, max_results, include_children, fmt) -> None:
    """List jobs, newest first."""
    with _user_errors():
        jobs = _engine().list(experiment, status, max_results, include_children)
    if fmt != "table":
        emit(jobs, fmt)
        return
    width = max([len(item["name"]) for item in jobs] + [4])
    click.echo(f"{'NAME':<{width}}  {'TYPE':<7} {'STATUS':<10} {'COMPUTE':<12} STARTED")
    for item in jobs:
        click.echo(f"{item['name']:<{width}}  {item['type']:<7} {item['status']:<10} {item['compute'] or '':<12} "
                   f"{item['start_time'] or ''}")


@job.command()
@name_option
@click.option("--all", "everything", is_flag=True, help="Default artifacts and every named output.")
@click.option("--output-name", default=None, help="Only this named output.")
@click.option("--download-path", default=".", show_default=True, type=click.Path(file_okay=False))
def download(name, everything, output_name, download_path) -> None:
    """Download a finished job's artifacts (artifacts/) and named outputs (named-outputs/<name>/)."""
    if everything and output_name:
        raise click.UsageError("--all and --output-name exclude each other")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the paths printed below say what came
    with _user_errors():
        written = _engine().download(name, Path(download_path), everything=everything, output_name=output_name)
    for path in written:
        click.echo(str(path))


@job.command()
@name_option
def cancel(name: str) -> None:
    """Cancel a job or a sweep: stop everything it started, then record it Canceled."""
    engine = _engine()
    with _user_errors():
        if _is_sweep(engine, name):
            from ..sweeps import cancel_sweep

            click.echo(f"{name}: {cancel_sweep(engine, name)['status']}")
            return
        result = engine.cancel(name)
    click.echo(f"{result.name}: {result.status}")


@job.command(name="_watch", hidden=True)
@name_option
def watch(name: str) -> None:
    """Follow a job without printing and finalize it (started in the background by `create`)."""
    engine = _engine()
    submission = engine.attach(name)
    engine.finalize(submission, engine.follow(submission))


@job.command(name="_sweep", hidden=True)
@file_option
@set_option
@name_option
@click.option("-e", "--experiment-name", default=None)
def run_sweep(path, overrides, name, experiment_name) -> None:
    """Run a sweep to its end without printing (started in the background by `create`)."""
    import signal

    from ..engine import Engine
    from ..sweeps import SweepRunner

    from ..sweeps import SweepCanceled

    def canceled(*_):  # `mljobs job cancel -n`: the runner stops the trials and records the sweep Canceled
        raise SweepCanceled("canceled by user")

    signal.signal(signal.SIGTERM, canceled)
    engine = Engine()
    runner = SweepRunner(engine, engine.load(path, list(overrides)), name=name, experiment_name=experiment_name)
    try:
        runner.run(parent=runner.parent())
    except SweepCanceled:
        sys.exit(EXIT_CODES["Canceled"])


def _create_sweep(engine, document, path, overrides, name, experiment_name, stream, dry_run) -> None:
    from ..naming import generate_name
    from ..sweeps import SweepRunner

    runner = SweepRunner(engine, document, name=name or document.model.name or generate_name(),
                         experiment_name=experiment_name)
    if dry_run:
        engine.check(document)
        history = ()
        trials = [runner.sampler.suggest(document.model.search_space, history, i) for i in range(min(runner.total, 10))]
        emit({"name": runner.name, "total_trials": runner.total, "concurrency": runner.concurrency,
              "first_trials": trials}, "yaml")
        return
    parent = runner.open_parent()  # here, so that a name taken or a trial that cannot start is said here
    if not stream:
        command = [sys.executable, "-m", "airflow_mljobs.cli", "job", "_sweep", "-f", path, "-n", runner.name]
        command += [arg for pair in overrides for arg in ("--set", pair)]
        command += ["-e", experiment_name] if experiment_name else []
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        click.echo(runner.name)
        return
    click.echo(f"RunId: {runner.name}")
    from ..sweeps import SweepCanceled

    try:
        result = runner.run(write=sys.stdout.write, progress=_progress_line(), parent=parent)
    except KeyboardInterrupt:  # the runner canceled the running trials and recorded the sweep as Canceled
        click.echo("\ninterrupted: the sweep and its running trials were canceled", err=True)
        sys.exit(EXIT_CODES["Canceled"])
    except SweepCanceled as canceled:  # `mljobs job cancel -n` from elsewhere
        click.echo(f"\nthe sweep and its running trials were canceled: {canceled}", err=True)
        sys.exit(EXIT_CODES["Canceled"])
    click.echo("\nExecution Summary\n=================")
    click.echo(f"RunId: {result.name}\nStatus: {result.status}")
    if result.reason:
        click.echo(f"Reason: {result.reason}")
    if result.best:
        click.echo(f"Best trial: {result.best['name']} ({json.dumps(result.best['params'], default=str)}) "
                   f"value {result.best['value']}")
    sys.exit(EXIT_CODES.get(result.status, 1))


# -- helpers ------------------------------------------------------------------------------------------------
def _is_sweep(engine, name: str) -> bool:
    from ..tracking import tags as T

    run = engine.tracker.find_job(name)
    return run is not None and run.data.tags.get(T.JOB_TYPE) == "sweep"


def _progress_line():
    """A sweep's progress line on stderr, printed when it changes."""
    last = [""]

    def progress(line: str) -> None:
        if line != last[0]:
            click.echo(f"progress: {line}", err=True)
            last[0] = line

    return progress


def _stream_sweep(engine, name: str) -> int:
    """Follow a sweep (started here, elsewhere, or by Airflow) until it ends; Ctrl-C stops following only."""
    from ..sweeps import follow_sweep

    click.echo(f"RunId: {name}")
    try:
        sweep = follow_sweep(engine, name, sys.stdout.write, _progress_line())
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: stopped following; sweep '{name}' goes on (mljobs job cancel -n {name} stops it)",
                   err=True)
        return INTERRUPTED
    click.echo("\nExecution Summary\n=================")
    click.echo(f"RunId: {name}\nStatus: {sweep['status']}")
    if sweep["failure_reason"]:
        click.echo(f"Reason: {sweep['failure_reason']}")
    best = {k: v for k, v in sweep["params"].items() if k.startswith("best.")}
    if best:
        click.echo(f"Best params: {json.dumps({k[len('best.'):]: v for k, v in best.items()})}")
    if sweep["metrics"]:
        click.echo("Metrics: " + json.dumps(sweep["metrics"], sort_keys=True))
    return EXIT_CODES.get(sweep["status"], 1)


def _engine():
    """An engine for a command that makes a few tracking calls and exits (a sweep makes many: `Engine()`)."""
    from ..engine import Engine

    return Engine(prefer_server=True)


class _user_errors:
    """Spec errors exit 2 with their places; other project errors print one line and exit 1."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _tb):
        if isinstance(error, SpecError):
            fail_spec(error)
        if isinstance(error, MlJobsError):
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        return False


def _start_watcher(name: str) -> None:
    subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", "job", "_watch", "-n", name],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def _print_started(submission, fmt: str) -> None:
    if fmt == "text":
        click.echo(submission.name)
    else:
        emit({"name": submission.name, "run_id": submission.run_id, "status": "Running"}, fmt)


def _stream(engine, submission, cancel_on_interrupt: bool = True) -> int:
    """Follow the job to its end. Ctrl-C cancels the job this command started; one it attached to goes on (as
    `az ml job stream` leaves it), and the process that started it records its end."""
    click.echo(f"RunId: {submission.name}")
    click.echo(f"MLflow run: {submission.run_id} (experiment {submission.experiment_id})")
    click.echo(f"Web View: {_web_view(engine, submission)}\n")
    out = sys.stdout
    try:
        outcome = engine.follow(submission, out.write)
    except KeyboardInterrupt:
        if not cancel_on_interrupt:
            click.echo(f"\ninterrupted: stopped following; job '{submission.name}' goes on "
                       f"(mljobs job cancel -n {submission.name} stops it)", err=True)
            return INTERRUPTED
        click.echo("\ninterrupted: canceling the job", err=True)
        outcome = submission.handle.cancel("canceled from the terminal (Ctrl-C)")
    out.flush()
    try:
        result = engine.finalize(submission, outcome)
    except KeyboardInterrupt:  # its end half-recorded: the next finalizer takes it over
        click.echo(f"\ninterrupted while the end of job '{submission.name}' was recorded; "
                   f"`mljobs job stream -n {submission.name}` completes it", err=True)
        return INTERRUPTED
    click.echo("\nExecution Summary\n=================")
    click.echo(f"RunId: {result.name}")
    click.echo(f"Status: {result.status}")
    if result.exit_code is not None:
        click.echo(f"Exit code: {result.exit_code}")
    if result.reason:
        click.echo(f"Reason: {result.reason}")
    if result.metrics:
        click.echo("Metrics: " + json.dumps(result.metrics, sort_keys=True))
    return EXIT_CODES.get(result.status, 1)


def _web_view(engine, submission) -> str:
    """The run's page in the MLflow UI; for the embedded store with no server, the command that shows it."""
    from ..tracking.web import run_page

    page = run_page(engine.config, submission.experiment_id, submission.run_id)
    return page or f"mlflow ui --backend-store-uri {engine.config.tracking_uri}"
