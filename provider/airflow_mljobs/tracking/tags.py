"""Tag names and the status vocabulary of the job record (Azure ML's words, mapped onto MLflow's)."""

JOB_NAME = "mljobs.job_name"
JOB_TYPE = "mljobs.job_type"
STATUS = "mljobs.status"
REASON = "mljobs.failure_reason"
EXIT_CODE = "mljobs.exit_code"
COMPUTE = "mljobs.compute"
BACKEND = "mljobs.backend"
JOB_DIR = "mljobs.job_dir"
HANDLE = "mljobs.handle"
SKIPPED = "mljobs.not_uploaded"  # what a job left that was not uploaded, and why
GIT_DIRTY = "mljobs.git.dirty"
AIRFLOW_PREFIX = "mljobs.airflow."
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
GIT_REPO = "mlflow.source.git.repoURL"

TERMINAL = ("Completed", "Failed", "Canceled")
ACTIVE = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing")
MLFLOW_STATUS = {
    "NotStarted": "SCHEDULED", "Queued": "SCHEDULED", "Preparing": "RUNNING", "Running": "RUNNING",
    "Finalizing": "RUNNING", "Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED",
}
