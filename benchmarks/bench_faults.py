"""What exactly once costs under faults: the job's time beside a fault-free run of the same job.

Each scenario runs ``masking-async create pairs.csv`` through the real command line, with its
default options, against an emulator in its own process that enforces the account's limit
(300 requests / 5 s) and answers in 100 ms ± 50 ms. Times are ratios of the job's *floor*, the
rows divided by the account's 60 requests a second, and the fault-free run is measured in the same
run as the baseline:

1. **fault-free** — every create answered.
2. **5 % lost after apply** — 3 % of creates answered 500 and 2 % cut off, both after the session
   was made: each such row is found by a lookup ``settle`` after it left and adopted.
3. **5 % dropped before apply** — the connection is cut before anything is made: a lookup finds
   nothing early, and the row is sent again once its request can no longer land. Reported: when
   90 % of the pairs existed (from the sessions' ``created_time``) and when the job ended.
4. **resume after kill -9** — the same command with ``--journal``, killed a few seconds in, then
   run again; the resume's time beside ``rows left / 60 s``, median and worst of three trials (a
   kill between a send's journal commit and its bytes leaving makes that row wait out
   ``timeout + settle``: nothing can tell it from one the server is still working on).

A row whose create is dropped again when it is sent again waits ``timeout + settle`` once more:
at 5 % drops, about one or two rows of 600 do, and they set the end of scenario 3.

After each run every pair must have exactly one session at the server; a run that breaks that
stops the benchmark.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from _support import AUTH, emulator_process, row

from masking_async.phones import party_pairs

#: The account's documented limit, and the answers' latency, as the issue tried them.
SERVER: Final = ("--rate-limit", "300/5s", "--latency", "100ms", "--jitter", "50ms")
PER_SECOND: Final = 60.0
LOST_AFTER: Final = (
    "--fault",
    "kind=error,operation=create,phase=after,probability=0.03",
    "--fault",
    "kind=drop,operation=create,phase=after,probability=0.02",
)
DROPPED_BEFORE: Final = ("--fault", "kind=drop,operation=create,phase=before,probability=0.05")


def _pairs(path: Path, count: int, seed: int) -> list[tuple[str, str]]:
    pairs = list(party_pairs(count, countries=("US", "IN"), start=count * seed))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_party", "second_party"])
        writer.writerows(pairs)
    return pairs


def _environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PLIVO_AUTH_ID": AUTH["auth_id"],
        "PLIVO_AUTH_TOKEN": AUTH["auth_token"],
        "MASKING_ASYNC_BASE_URL": url,
    }


def _command(path: Path, extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "masking_async", "create", str(path), "--no-progress", *extra]


def _sessions(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/emulator/state", timeout=30) as answer:
        state = json.load(answer)
    return list(state["accounts"][AUTH["auth_id"]]["sessions"])


def _check_once(sessions: list[dict[str, Any]], pairs: list[tuple[str, str]], label: str) -> None:
    """Every pair exactly one session: a benchmark of a broken run measures nothing."""
    made: dict[tuple[str, str], int] = {}
    for session in sessions:
        key = (session["first_party"], session["second_party"])
        made[key] = made.get(key, 0) + 1
    wrong = [pair for pair in pairs if made.get(pair) != 1]
    if wrong:
        raise RuntimeError(f"{label}: {len(wrong)} pairs do not have exactly one session")


def _made_by(sessions: list[dict[str, Any]], started: float, share: float) -> float:
    """Seconds from ``started`` (epoch) until ``share`` of the sessions existed."""
    times = sorted(datetime.fromisoformat(s["created_time"]).timestamp() for s in sessions)
    return times[max(0, round(share * len(times)) - 1)] - started


def _timed(command: list[str], env: dict[str, str], label: str) -> tuple[float, float]:
    """Run ``command``; its wall seconds (process start to exit) and its epoch start."""
    began, started = time.time(), time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr[-800:]}")
    return seconds, began


def scenario(
    label: str, faults: tuple[str, ...], folder: Path, count: int, extra: tuple[str, ...]
) -> dict[str, float]:
    pairs = _pairs(folder / f"{label}.csv", count, seed=len(label))
    with emulator_process(*SERVER, "--seed", "7", *faults) as url:
        seconds, began = _timed(_command(folder / f"{label}.csv", extra), _environment(url), label)
        sessions = _sessions(url)
    _check_once(sessions, pairs, label)
    return {
        "seconds": seconds,
        "made_90": _made_by(sessions, began, 0.9),
        "made_99": _made_by(sessions, began, 0.99),
    }


def resume_after_kill(
    folder: Path, count: int, kill_after: float, extra: tuple[str, ...], trial: int
) -> tuple[int, float]:
    """Kill -9 the command ``kill_after`` seconds in, then run it again: rows left, seconds."""
    path, journal = folder / f"killed{trial}.csv", folder / f"killed{trial}.journal"
    pairs = _pairs(path, count, seed=3 + trial)
    command = _command(path, (*extra, "--journal", str(journal)))
    with emulator_process(*SERVER, "--seed", "7") as url:
        env = _environment(url)
        first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        time.sleep(kill_after)
        first.send_signal(signal.SIGKILL)
        first.wait()
        left = count - len(_sessions(url))
        seconds, _ = _timed(command, env, "resume")
        _check_once(_sessions(url), pairs, "resume after kill -9")
    return left, seconds


def _mean(kills: list[tuple[int, float]]) -> float:
    return sum(left for left, _ in kills) / len(kills)


def run(quick: bool = False) -> list[dict[str, Any]]:
    # Quick: a smoke test of every scenario, with a short timeout and settle to keep it short.
    count = 60 if quick else 600
    settle, timeout = (0.5, 1.5) if quick else (5.0, 30.0)  # the second: the CLI's defaults
    extra = ("--timeout", f"{timeout:g}", "--settle", f"{settle:g}") if quick else ()
    floor = count / PER_SECOND
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        base = scenario("fault-free", (), folder, count, extra)
        lost = scenario("lost-after", LOST_AFTER, folder, count, extra)
        dropped = scenario("dropped-before", DROPPED_BEFORE, folder, count, extra)
        kills = [
            resume_after_kill(folder, count, 0.8 if quick else 4.0, extra, trial)
            for trial in range(1 if quick else 3)
        ]
    resumes = sorted(seconds / (left / PER_SECOND + 10) for left, seconds in kills)
    name = f"faults, {count} creates at 300/5s, 100 ms ± 50 ms answers"
    return [
        row(name, "fault-free job / floor (rows / 60 per s)", base["seconds"] / floor, "x"),
        row(name, "5% lost after apply: job / floor", lost["seconds"] / floor, "x"),
        row(
            name,
            "5% lost after apply: job / (floor + settle + 10%)",
            lost["seconds"] / (floor * 1.1 + settle),
            "x",
            note="at most 1.0: the last lost rows are adopted settle after they left",
        ),
        row(
            name,
            "5% lost after apply: (job - fault-free job) / settle",
            (lost["seconds"] - base["seconds"]) / settle,
            "x",
            note="what the faults cost: the last lost rows wait settle for their lookup",
        ),
        row(
            name,
            "5% dropped before apply: 90% made / floor",
            dropped["made_90"] / floor,
            "x",
            note="at most 1.2",
        ),
        row(
            name,
            "5% dropped before apply: 99% made / (floor + timeout + settle)",
            dropped["made_99"] / (floor + timeout + settle),
            "x",
        ),
        row(name, "5% dropped before apply: job / floor", dropped["seconds"] / floor, "x"),
        row(name, "resume after kill -9: rows left (mean of trials)", _mean(kills), "rows"),
        row(
            name,
            "resume after kill -9: resume / (rows left / 60 s + 10 s), median",
            resumes[len(resumes) // 2],
            "x",
            note="at most 1.0",
        ),
        row(
            name,
            "resume after kill -9: resume / (rows left / 60 s + 10 s), worst",
            resumes[-1],
            "x",
        ),
    ]


if __name__ == "__main__":
    from run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
