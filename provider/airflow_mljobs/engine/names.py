"""Which job a submitter's try runs: the naming, retry and ownership rules, the same from every front door.

A submitter (an Airflow task instance, say) has a base name and tries. Try 1 runs the job `<base>`, try n a job
`<base>-try<n>`, so a retry after a job failed starts afresh, while a retry after a crash finds the earlier
try's job still running and attaches to it instead of starting a second. A name whose job another submitter
started is never attached to nor collected: it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import JobLost, NotRunnable, SubmitError
from ..tracking import tags as T

OWNER_PREFIX = T.AIRFLOW_PREFIX  # the tags that say who submitted a job
TRY_TAG = f"{OWNER_PREFIX}try_number"


@dataclass(frozen=True)
class Tries:
    """A submitter's tries: `owner` holds its tags (the try's own number among them, which ownership ignores)."""

    base: str
    try_number: int = 1
    owner: dict[str, str] = field(default_factory=dict)

    @property
    def this_try(self) -> str:
        return self.base if self.try_number <= 1 else f"{self.base}-try{self.try_number}"

    @property
    def earlier(self) -> list[str]:
        return [self.base] + [f"{self.base}-try{n}" for n in range(2, self.try_number)]

    @property
    def names(self) -> list[str]:
        """Every name a try of this submitter may have run, each once, this try's last."""
        return list(dict.fromkeys([*self.earlier, self.this_try]))

    @classmethod
    def of_task(cls, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int, owner: dict,
                name: str | None = None) -> "Tries":
        """A scheduled task's tries: named `name`, or after its dag, run, task and map index (stable across tries,
        so a retry finds the job of the try before)."""
        from ..naming import safe_name

        base = name or safe_name(dag_id, run_id, task_id, str(map_index) if map_index >= 0 else "")
        return cls(base, try_number, owner)

    def owns(self, run) -> bool:
        """Whether the job `run` was started by this submitter (any of its tries)."""
        return _identity(run.data.tags) == _identity(self.owner)

    def owner_of(self, run) -> str:
        tags = run.data.tags
        if f"{OWNER_PREFIX}dag_id" not in tags:
            return "the command line or another tool"
        return "/".join(tags.get(f"{OWNER_PREFIX}{k}", "?") for k in ("dag_id", "run_id", "task_id"))


def _identity(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if k.startswith(OWNER_PREFIX) and k != TRY_TAG}


def all_free(engine, tries: Tries) -> bool:
    """Whether no job of the submitter's names exists, seen without opening the store (`Engine.free_here`): then
    there is nothing to resume."""
    return all(engine.free_here(name) for name in tries.names)


def name_to_run(engine, tries: Tries, *, resume: bool = True, warn=lambda text: None) -> str:
    """The name of an earlier try's job that still runs (to attach to, when `resume`), or this try's. Raises
    NotRunnable for a name another submitter's job holds; `warn` hears of a job found lost."""
    for name in tries.names:
        run = engine.find(name)
        if run is None:
            continue
        if not tries.owns(run):
            raise NotRunnable(f"the job name '{name}' is taken by a job of {tries.owner_of(run)}; job names are "
                              f"unique: give this task another name, or none (one is derived from the task)")
        if resume and run.data.tags.get(T.STATUS) not in T.TERMINAL and not _lost(engine, name, warn):
            return name
    return tries.this_try


def completed_earlier(engine, tries: Tries) -> str | None:
    """The name of an earlier try's job of this submitter that completed, so that a retry never runs it twice."""
    for name in tries.earlier[: max(0, tries.try_number - 1)]:
        run = engine.tracker.find_job(name)
        if run is not None and run.data.tags.get(T.STATUS) == "Completed" and tries.owns(run):
            return name
    return None


def _lost(engine, name: str, warn) -> bool:
    """Whether the job called `name` was lost (its submitter died before it started): attaching records that,
    and the try goes on under a name of its own."""
    try:
        engine.attach(name)
    except JobLost as lost:
        warn(str(lost))
        return True
    except SubmitError:  # still starting, say: submitting under that name says so
        pass
    return False
