"""The benchmarks run: ``benchmarks/run_all.py --quick`` end to end, so a change that breaks a
suite fails here instead of rotting unseen. Only that rows come out is checked: speed is measured
by the benchmarks themselves, as ratios, never asserted in a timed test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_every_suite_runs_quick(tmp_path: Path) -> None:
    """Every bench_*.py suite, found as run_all finds them, runs quick and produces rows."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run_all.py"),
            "--quick",
            "--out",
            str(out),
            "--images",
            str(tmp_path / "img"),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    suites = {path.stem.removeprefix("bench_") for path in BENCHMARKS.glob("bench_*.py")}
    assert set(results["rows_per_suite"]) == suites
    assert {name for name, count in results["rows_per_suite"].items() if count == 0} == set()
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "latency_distribution.png",
        "rate_learning.png",
        "throughput_vs_concurrency.png",
    ]
