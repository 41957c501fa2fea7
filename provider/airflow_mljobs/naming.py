"""Names: job names generated when none is given, derived from Airflow's identity when run from a DAG; and the one
way a name that is data (an experiment's, a compute's, a file name read from a store) becomes a path.

A name becomes a path only as a single folder or file name that this module made or checked: `check_name` (job
names, which are folders), `check_segment` (a registered compute's file), `path_segment` (any text, such as an
experiment name, turned into a folder name that cannot leave its parent).
"""

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

    if not VALID.fullmatch(name):
        raise NotRunnable(f"'{name}' is not a job name: a job name holds letters, digits, - and _ (at most 255), "
                          f"starting with a letter or digit")
    return name


def check_segment(name, what: str = "name") -> str:
    """`name`, when it is a name that can be a file of its own in a folder: letters, digits, `-` and `_` (at most
    255, starting with a letter or digit), as a job name. Anything else (`..`, `/`, `%2e%2e`, a NUL, a newline, an
    absolute path) is refused with a NotRunnable that says what `what` may hold."""
    from .spec import NotRunnable

    if not isinstance(name, str) or not VALID.fullmatch(name) or name != name.strip():
        raise NotRunnable(f"{what} {name!r} is not valid here: it holds letters, digits, - and _ (at most 255), "
                          f"starting with a letter or digit")
    return name


_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def path_segment(text: str) -> str:
    """A folder name for `text` (an experiment name, say), which is data and never a path: the text itself when it
    is a plain name (letters, digits, `.`, `-`, `_`, not starting with a dot, at most 100), else its plain
    characters and a digest of the whole (`../../x` -> `x-3f1c9a2b`), so that distinct texts get distinct
    folders and none of them is `.`, `..`, absolute, encoded (`%2e`) or holds a separator. Stable: the same text
    gives the same folder on every machine. Its characters are all unreserved in a URI, so it can join a `file:`
    URI as it is."""
    import hashlib

    if _SEGMENT.fullmatch(text) and not text.endswith("."):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[:80]
    return f"{cleaned}-{digest}" if cleaned else f"x-{digest}"


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
