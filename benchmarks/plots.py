"""Plots for docs/benchmarks.md from benchmarks/results.json: ``python benchmarks/plots.py``."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "docs" / "img"


def _series(rows: list[dict[str, Any]], prefix: str) -> dict[str, list[tuple[float, float]]]:
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for entry in rows:
        if str(entry.get("series", "")).startswith(prefix):
            found[entry["series"]].append((float(entry["x"]), float(entry["value"])))
    return {name: sorted(points) for name, points in found.items()}


def throughput(rows: list[dict[str, Any]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for points in _series(rows, "throughput").values():
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("requests in flight")
    axes.set_ylabel("creates per second")
    axes.set_title("MaskingClient throughput against the emulator (no limit)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def latency(rows: list[dict[str, Any]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, points in _series(rows, "latency:").items():
        # HdrHistogram-style: the x axis is 1 / (1 - percentile), so the tail gets room.
        axes.plot(
            [1 / (1 - x / 100) for x, _ in points],
            [y for _, y in points],
            marker=".",
            label=name.split(":", 1)[1],
        )
    ticks = [50.0, 90.0, 99.0, 99.9, 99.99]
    axes.set_xscale("log")
    axes.set_xticks([1 / (1 - p / 100) for p in ticks], [f"p{p:g}" for p in ticks])
    axes.set_ylabel("latency from due time, ms")
    axes.set_title("masking-async load: 200/s, 5 ms + 0-10 ms jitter")
    axes.legend()
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def learning(rows: list[dict[str, Any]], path: Path) -> None:
    """The sending rate and the limiter's learned rate while it finds a lower real limit."""
    series = _series(rows, "rate:")
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, label, style in (
        ("rate:sent", "sent (per 0.5 s)", "-"),
        ("rate:learned", "learned rate", "--"),
    ):
        points = series.get(name, [])
        xs, ys = [x for x, _ in points], [y for _, y in points]
        axes.plot(xs, ys, style, label=label, drawstyle="steps-post")
    axes.axhline(100, color="grey", linewidth=0.8, label="server's limit (100/s)")
    axes.axhline(200, color="grey", linewidth=0.8, linestyle=":", label="client's ceiling (200/s)")
    axes.set_xlabel("seconds")
    axes.set_ylabel("requests per second")
    axes.set_title("Learning a real limit half the configured one")
    axes.set_ylim(0, 215)
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(results: Path = HERE / "results.json", images: Path = IMAGES) -> int:
    rows = json.loads(results.read_text())["rows"]
    images.mkdir(parents=True, exist_ok=True)
    throughput(rows, images / "throughput_vs_concurrency.png")
    latency(rows, images / "latency_distribution.png")
    learning(rows, images / "rate_learning.png")
    print(
        f"wrote {images}/throughput_vs_concurrency.png, latency_distribution.png and"
        " rate_learning.png",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
