"""The job language: load YAML of every era, normalise, validate, bind `${{...}}`, apply `--set`.

Pure except for reading YAML files; no Airflow, MLflow or container imports.
"""

from .bindings import RenderError, references, render
from .errors import JobFailed, JobLost, Mark, MlJobsError, NotRunnable, Problem, Severity, SpecError, SubmitError
from .loader import Document, load, load_job_dict, load_text
from .model import CommandJob, Compute, Environment, Input, Output, SweepJob, Trial

__all__ = [
    "CommandJob", "Compute", "Document", "Environment", "Input", "JobFailed", "JobLost", "Mark", "MlJobsError", "NotRunnable", "Output",
    "Problem", "RenderError", "Severity", "SpecError", "SubmitError", "SweepJob", "Trial", "load",
    "load_job_dict", "load_text", "references", "render",
]
