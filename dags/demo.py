"""`make demo`: validate every example job, show warnings, and print the normalised form of two of them."""

from __future__ import annotations

import sys
from pathlib import Path

from airflow_mljobs.spec import SpecError, load
from airflow_mljobs.spec.dump import dump_yaml

JOBS = Path(__file__).resolve().parent / "jobs"


def main() -> int:
    failures = 0
    for path in sorted(JOBS.rglob("*.yml")):
        if path.parent.name == "environment" or path.name == "environment.yml":
            continue  # conda files, read through the jobs that name them
        try:
            document = load(path)
        except SpecError as error:
            failures += 1
            print(f"INVALID {path.relative_to(JOBS)}\n{error}")
            continue
        print(f"ok  {document.kind:<11} {path.relative_to(JOBS)}  ({len(document.warnings)} warnings)")
    for name in ("seed-2021-05/job.yml", "iris/job-sweep.yml"):
        document = load(JOBS / name)
        print(f"\n--- {name}, normalised ---")
        for warning in document.warnings:
            print(warning)
        print(dump_yaml(document.data), end="")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
