"""The HTML report: one self-contained file, charts as inline SVG drawn by ``pygal``.

Built from the JSON report (:func:`masking_async.load.report.report_dict`) alone, so the page
can be rebuilt from a saved JSON. Nothing is fetched: pygal's tooltip script, which it would load
from the network, is turned off, and the styles are inline, so the page opens offline and from a
CI artefact as it is.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import pygal
from pygal.style import Style

# On import, pygal appends to ``sys.meta_path`` a finder for its map plugins (``pygal.maps.*``)
# that has only the legacy ``find_module``: every later import that earlier finders miss then
# raises an ImportWarning (an error under ``-W error``). We draw no maps: take the finder out.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

__all__ = ["render_html"]

_STYLE = Style(
    background="white",
    plot_background="white",
    font_family="sans-serif",
    colors=("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd"),
)
_CHART = {
    "js": [],  # no external script: the page must not fetch anything
    "disable_xml_declaration": True,
    "style": _STYLE,
    "width": 900,
    "height": 360,
    "truncate_label": -1,
    "legend_at_bottom": True,
}


#: At most this many labels along an x axis; the others are drawn as minor ticks.
_X_LABELS = 12


def _chart(kind: Any, title: str, labels: list[str]) -> Any:
    every = max(1, -(-len(labels) // _X_LABELS))
    chart = kind(title=title, x_labels_major_every=every, show_minor_x_labels=every == 1, **_CHART)
    chart.x_labels = labels
    return chart


def _svg(chart: Any) -> str:
    return str(chart.render(is_unicode=True))


def _labels(series: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{point['t']:g}s" for point in series]


def _percentiles_chart(data: dict[str, Any]) -> str:
    chart = _chart(pygal.Line, "Latency over time (ms, from due time)", _labels(data["series"]))
    for key in ("p50", "p90", "p99"):
        chart.add(key, [point[key] for point in data["series"]])
    return _svg(chart)


def _histogram_chart(data: dict[str, Any]) -> str:
    bins = data["distribution"]
    labels = [f"≤{item['up_to_ms']:g}" for item in bins]
    chart = _chart(pygal.Bar, "Latency histogram (requests per bin, ms)", labels)
    chart.add("requests", [item["count"] for item in bins])
    return _svg(chart)


def _throughput_chart(data: dict[str, Any]) -> str:
    chart = _chart(pygal.Line, "Throughput (requests per second)", _labels(data["series"]))
    per = data["series_interval_s"]
    chart.add("asked", [point["asked"] / per for point in data["series"]])
    chart.add("succeeded", [point["ok"] / per for point in data["series"]])
    return _svg(chart)


def _errors_chart(data: dict[str, Any]) -> str:
    chart = _chart(pygal.StackedBar, "Errors per second (429 apart)", _labels(data["series"]))
    per = data["series_interval_s"]
    chart.add("errors", [point["errors"] / per for point in data["series"]])
    chart.add("throttled (429)", [point["throttled"] / per for point in data["series"]])
    return _svg(chart)


def _table(caption: str, rows: Iterable[tuple[str, Any]], *, id_: str) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in rows
    )
    return f'<table id="{id_}"><caption>{html.escape(caption)}</caption>{body}</table>'


def _ms(figures: dict[str, float], key: str) -> str:
    return f"{figures[key]:.2f} ms" if key in figures else "-"


def _summary(data: dict[str, Any]) -> str:
    latency, server, queued = data["latency_ms"]["all"], data["server_ms"], data["queued_ms"]
    figures = [
        ("asked rate", f"{data['asked_rate']:.1f}/s"),
        ("achieved rate", f"{data['achieved_rate']:.1f}/s"),
        ("requests sent", data["sent"]),
        ("throttled (429)", f"{data['throttled_429']} ({data['refused_share']:.1%})"),
        ("failed (all kinds)", f"{data['failed']} ({data['failed_share']:.1%})"),
        ("cut at the end", data["interrupted"]),
        ("kept up", "yes" if data["kept_up"] else "no"),
    ]
    latency_rows = [
        (key, f"{_ms(latency, key)} (server {_ms(server, key)}, queued {_ms(queued, key)})")
        for key in ("p50", "p90", "p99", "p99.9", "max")
    ]
    cleanup = data["cleanup"]
    cleanup_rows = [
        ("sessions expired", f"{cleanup['expired']} of {cleanup['sessions']}"),
        ("left behind", " ".join(cleanup["left"]) or "none"),
        ("throttled during cleanup", cleanup["throttled_429"]),
    ]
    parts = [
        _table("Run", figures, id_="run"),
        _table("Latency from due time", latency_rows, id_="latency"),
        _table("Cleanup", cleanup_rows, id_="cleanup"),
        _table(
            "Time per phase", [(k, f"{v:.1f} s") for k, v in data["phases_s"].items()], id_="phases"
        ),
    ]
    if data["errors"]:
        parts.append(_table("Errors by operation:kind", data["errors"].items(), id_="errors"))
    if data["thresholds"]:
        parts.append(
            _table(
                "Thresholds",
                [
                    (item["threshold"], "passed" if item["passed"] else "CROSSED")
                    for item in data["thresholds"]
                ],
                id_="thresholds",
            )
        )
    return "\n".join(parts)


def render_html(data: dict[str, Any]) -> str:
    """The whole page for one report dict."""
    verdict = "passed" if data["exit_status"] == 0 else f"exit status {data['exit_status']}"
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in data["not_kept_up"])
    charts = (_percentiles_chart, _histogram_chart, _throughput_chart, _errors_chart)
    figures = "\n".join(f'<figure class="chart">{draw(data)}</figure>' for draw in charts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>masking-async load report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0 1.5em 1em 0; display: inline-table;
        vertical-align: top; }}
caption {{ font-weight: bold; text-align: left; padding-bottom: .3em; }}
th, td {{ border: 1px solid #ccc; padding: .2em .6em; text-align: left; }}
figure.chart {{ margin: 0 0 1em 0; max-width: 900px; }}
#verdict {{ font-size: 1.2em; }}
</style></head>
<body>
<h1>Load report</h1>
<p id="verdict">Verdict: <strong>{html.escape(verdict)}</strong></p>
<ul id="reasons">{reasons}</ul>
{_summary(data)}
{figures}
</body></html>
"""
