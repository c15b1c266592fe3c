"""Run every benchmark and print one table: ``python benchmarks/run_all.py [--quick]``.

Each ``bench_*.py`` module beside this file exposes ``run(quick: bool) -> list[dict]`` whose rows
are ``{"benchmark", "metric", "value"}`` (plus optional ``"unit"`` and ``"note"``). Figures that
compare are ratios measured in the same run, so a noisy machine moves both sides together.
The rows are also written to ``benchmarks/results.json`` for ``plots.py`` and the docs.
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
#: In the order of the issue's list; each is a module ``bench_<name>.py``.
SUITES = (
    "client",
    "sdk",
    "rate",
    "pagination",
    "batch",
    "emulator",
    "load",
    "shared_limit",
    "sync",
)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--only", nargs="*", choices=SUITES, help="run only these suites")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for name in args.only or SUITES:
        module = importlib.import_module(f"bench_{name}")
        started = time.perf_counter()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        suite_rows = module.run(quick=args.quick)
        timings[name] = round(time.perf_counter() - started, 1)
        rows.extend(suite_rows)
        print(format_table(suite_rows), file=sys.stderr, flush=True)
    print(format_table(rows))
    args.out.write_text(
        json.dumps(
            {"machine": machine(), "quick": args.quick, "seconds": timings, "rows": rows},
            indent=2,
        )
    )
    print(f"\nwrote {args.out} ({sum(timings.values()):.0f} s in all)", file=sys.stderr)
    try:
        import plots
    except ImportError:  # matplotlib is a dev dependency; the table stands without the plots
        return 0
    return plots.main(args.out)


if __name__ == "__main__":
    sys.exit(main())
