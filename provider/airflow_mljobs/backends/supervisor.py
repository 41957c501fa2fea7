"""The supervisor every rank runs under: a few lines of POSIX shell around the job's command.

A job must keep its limits and leave its exit status whether or not anybody follows it (a killed `--stream`,
a worker that died). So the rank's own shell, not the follower, enforces `limits.timeout`: a watchdog writes the
reason where a cancel writes it (the job folder's `canceled`, the first reason stays), asks every process of the
rank to stop, and kills what is left after the grace period. The exit status stays where the backend keeps it
(a file beside the rank's pid for local processes, the container for Docker), for any later command to read.

Each backend says which processes are the rank's: a process group (`-- -$$`) for a local rank, every process of
its container but the container's first (`-1`) for Docker.
"""

from __future__ import annotations

TIMEOUT_REASON = "timed out after limits.timeout of {seconds} s"


def watchdog(victims: str, command: str) -> str:
    """Shell that starts the watchdog in the background when `$mljobs_timeout` is above 0, its pid in
    `$mljobs_watchdog`. It reads `$mljobs_canceled` (the marker's path) and `$mljobs_grace` (seconds), signals
    `victims` (the arguments of `kill` after the signal), and waits for the process `command` (a pid) to end, up
    to the grace period, before it kills what is left. A TERM ends it quietly (the rank ended first)."""
    reason = TIMEOUT_REASON.format(seconds="$mljobs_timeout")
    return (
        'mljobs_watchdog=; if [ "${mljobs_timeout:-0}" -gt 0 ]; then ('
        " trap 'kill $mljobs_sleep 2>/dev/null; exit 0' TERM;"
        ' sleep "$mljobs_timeout" & mljobs_sleep=$!; wait $mljobs_sleep;'
        " trap '' TERM;"
        f' [ -e "$mljobs_canceled" ] || printf %s "{reason}" > "$mljobs_canceled";'
        f' kill -TERM {victims} 2>/dev/null; mljobs_left=$((mljobs_grace * 10));'
        f' while [ $mljobs_left -gt 0 ] && kill -0 {command} 2>/dev/null; do'
        ' sleep 0.1; mljobs_left=$((mljobs_left - 1)); done;'
        f' kill -KILL {victims} 2>/dev/null'
        ' ) & mljobs_watchdog=$!; fi; '
    )


def stop_watchdog() -> str:
    return '[ -z "$mljobs_watchdog" ] || kill $mljobs_watchdog 2>/dev/null; '
