"""Run every benchmark and print one table: ``python benchmarks/run_all.py [--quick]``.

Each ``bench_<name>.py`` module beside this file is a suite: it exposes
``run(quick: bool) -> list[dict]`` whose rows are ``{"benchmark", "metric", "value"}`` (plus
optional ``"unit"`` and ``"note"``). A new module is found without being listed here; ``ORDER``
only places the known ones first. ``--quick`` must keep every suite short (the test suite runs
them all in under a minute) while still producing every row. Figures that compare are ratios
measured in the same run, so a noisy machine moves both sides together. The rows are also
written to ``benchmarks/results.json`` for ``plots.py`` and the docs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Where the table puts the suites it knows; any other ``bench_<name>.py`` follows, by name.
ORDER = (
    "client",
    "sdk",
    "rate",
    "pagination",
    "batch",
    "faults",
    "sync",
    "emulator",
    "load",
    "shared_limit",
)


def suites(folder: Path = HERE) -> tuple[str, ...]:
    """Every ``bench_<name>.py`` in ``folder``, as names: those in ``ORDER`` first."""
    found = {path.stem.removeprefix("bench_") for path in folder.glob("bench_*.py")}
    return (*(name for name in ORDER if name in found), *sorted(found.difference(ORDER)))


SUITES = suites()


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned text; rows marked ``plot_only`` (a plot's points) are left out."""
    rows = [r for r in rows if not r.get("plot_only")]
    widths = [max(len(str(r.get(k, ""))) for r in rows) for k in ("benchmark", "metric")]
    lines = [f"{'benchmark':<{widths[0]}}  {'metric':<{widths[1]}}  value"]
    for row in rows:
        value = row["value"]
        text = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        unit = row.get("unit", "")
        name, metric = row["benchmark"], row["metric"]
        lines.append(f"{name:<{widths[0]}}  {metric:<{widths[1]}}  {text} {unit}")
    return "\n".join(lines)


def format_markdown(results: dict[str, Any]) -> str:
    """A results file as the Markdown table of docs/benchmarks.md, machine and date first."""
    about = results["machine"]
    lines = [
        f"Run finished {results.get('date', 'at an unknown date')}: Python {about['python']},"
        f" {about['platform']}, {about['cpus']} CPUs ({about['processor']});"
        f" {sum(results['seconds'].values()):.0f} s in all.",
        "",
        "| suite | metric | value |",
        "|---|---|---|",
    ]
    for row in results["rows"]:
        if row.get("plot_only"):
            continue
        value = row["value"]
        text = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        lines.append(f"| {row['benchmark']} | {row['metric']} | {text} {row.get('unit', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--only", nargs="*", choices=SUITES, help="run only these suites")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument(
        "--images", type=Path, default=None, help="where the plots go (default: docs/img)"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="RESULTS",
        help="print the table of a results file as Markdown (for docs/benchmarks.md), run nothing",
    )
    args = parser.parse_args(argv)
    if args.markdown is not None:
        print(format_markdown(json.loads(args.markdown.read_text())))
        return 0

    sys.path.insert(0, str(HERE))
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name in args.only or SUITES:
        module = importlib.import_module(f"bench_{name}")
        started = time.perf_counter()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        suite_rows = module.run(quick=args.quick)
        timings[name] = round(time.perf_counter() - started, 1)
        counts[name] = len(suite_rows)
        rows.extend(suite_rows)
        print(format_table(suite_rows), file=sys.stderr, flush=True)
    print(format_table(rows))
    args.out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "quick": args.quick,
                "seconds": timings,
                "rows_per_suite": counts,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out} ({sum(timings.values()):.0f} s in all)", file=sys.stderr)
    try:
        import plots
    except ImportError:  # matplotlib is a dev dependency; the table stands without the plots
        return 0
    return plots.main(args.out, args.images or plots.IMAGES)


if __name__ == "__main__":
    sys.exit(main())
