"""Job names: generated when none is given, derived from Airflow's identity when run from a DAG."""

from __future__ import annotations

import re
import secrets

_ADJECTIVES = ("amber", "brave", "calm", "eager", "frosty", "gentle", "happy", "keen", "lively", "mellow", "nimble",
               "quiet", "rapid", "shy", "tidy", "witty")
_NOUNS = ("anchor", "basket", "candle", "comet", "garden", "harbor", "island", "lantern", "meadow", "orchard",
          "pebble", "river", "saddle", "tulip", "violin", "willow")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")  # the schemas' jobName: a name is also a folder's


def check_name(name: str) -> str:
    """`name`, when it is a job name; a name given on the command line or to an operator is checked as the
    YAML's `name:` is, so that it never leaves the workspace's job folders."""
    from .spec import NotRunnable

    if not VALID.match(name):
        raise NotRunnable(f"'{name}' is not a job name: a job name holds letters, digits, - and _ (at most 255), "
                          f"starting with a letter or digit")
    return name


def generate_name() -> str:
    """An adjective, a noun and eight random characters, as Azure ML names jobs: `keen_river_k3f9x2ma`."""
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{suffix}"


def safe_name(*parts: str, limit: int = 200) -> str:
    """A valid job name made of `parts` (letters, digits, - and _), stable for the same parts."""
    import hashlib

    text = "-".join(p for p in parts if p)
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_") or "job"
    if len(cleaned) > limit or cleaned != text:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: limit - 9]}-{digest}"
    return cleaned if cleaned[0].isalnum() else f"j{cleaned}"
