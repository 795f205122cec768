"""The report as one HTML page: every script, style, figure and image inline, nothing fetched when opened.

The page holds its data as one JSON block; a small script (report.js, beside
this module) draws the table a page of rows at a time, so 10,000 runs stay
quick to open, and plotly.js (embedded once) draws the figures.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from ganlab.compare.cards import CardGroup
from ganlab.compare.table import best_values, follows_plugin, is_reference, lower_is_better, table_metrics
from ganlab.report.collect import ReportRun


def columns_and_rows(runs: Sequence[ReportRun], keys: Sequence[str], metrics: Sequence[str],
                     groups: Sequence[CardGroup] = ()) -> tuple[list, list]:
    """Table columns (``key, label, kind, best, lower``) and rows (one list of values per run).

    After id and name: the hyperparameters ``keys``, status, steps, each score
    followed by its real-vs-real floor, and wall time. With several metric
    card ``groups``, a ``card`` column names each run's group and ``best``
    is a list: the best of each group, never one best across groups.
    """
    scores = table_metrics(metrics)
    shown: list[str] = []
    for m in scores:
        shown.append(m)
        if f"{m}_floor" in metrics:
            shown.append(f"{m}_floor")
    rows_of = [r.row for r in runs]
    best: dict[str, Any] = best_values(rows_of, scores)
    label: dict[int, str] = {}
    if len(groups) > 1:
        per_group = [best_values(g.rows, scores) for g in groups]
        best = {m: [b[m] for b in per_group if m in b] for m in scores}
        label = {row.id: g.label for g in groups for row in g.rows}
    cols: list[dict[str, Any]] = [{"key": "id", "label": "id", "kind": "num"},
                                  {"key": "name", "label": "name", "kind": "text"}]
    if label:
        cols.append({"key": "card_group", "label": "card", "kind": "text"})
    for k in keys:
        values = [r.row.hparams.get(k) for r in runs]
        numeric = all(isinstance(v, (int, float, type(None))) and not isinstance(v, bool) for v in values)
        cols.append({"key": k, "label": k.removeprefix("train."), "kind": "num" if numeric else "text"})
    cols += [{"key": "status", "label": "status", "kind": "text"}, {"key": "steps", "label": "steps", "kind": "num"}]
    for m in shown:
        col = {"key": m, "label": m, "kind": "num"}
        if not is_reference(m):
            col.update(best=best.get(m), lower=lower_is_better(m, rows_of))
        cols.append(col)
    cols.append({"key": "wall_s", "label": "wall", "kind": "dur"})
    rows = []
    for r in runs:
        row = r.row
        rows.append([row.id, row.name, *([label.get(row.id, "")] if label else []),
                     *(_cell(row.hparams.get(k)) for k in keys), row.status,
                     f"{row.step}/{row.total}", *(_cell(row.metrics.get(m)) for m in shown), row.wall_s])
    return cols, rows


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)  # JSON has no NaN
    return str(value)


def default_keys(runs: Sequence[ReportRun], varying: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The varying settings less those a plugin's defaults explain (as ``ganlab compare`` shows them)."""
    folded = follows_plugin([r.row for r in runs], varying)
    return [k for k in varying if k not in folded], folded


def render(runs: Sequence[ReportRun], *, keys: Sequence[str], metrics: Sequence[str],
           curves: Sequence[tuple[str, go.Figure, go.Figure]], parallel: go.Figure | None,
           gallery: tuple[int | None, list[dict]], notes: Sequence[str], title: str,
           groups: Sequence[CardGroup] = ()) -> str:
    """The whole page as a string.

    ``curves``: per tag, its figures against step and against wall time;
    ``gallery``: :func:`ganlab.report.images.gallery`'s result; ``notes``:
    lines shown above the table.
    """
    cols, rows = columns_and_rows(runs, keys, metrics, groups)
    figures: list[dict[str, Any]] = []
    plot_divs: list[str] = []
    for i, (tag, by_step, by_time) in enumerate(curves):
        for j, fig in enumerate((by_step, by_time)):
            fid = f"curve-{i}-{j}"
            figures.append({"id": fid, "figure": fig.to_plotly_json()})
            plot_divs.append(f'<div class="plot" id="{fid}" data-tag="{html.escape(tag)}"{_height(fig)}></div>')
    if parallel is not None:
        figures.append({"id": "parallel", "figure": parallel.to_plotly_json()})
    step, cards = gallery
    data = {"columns": cols, "rows": rows}
    blob, figure_blob = _json(data), _json({"figures": figures, "names": [f"#{r.row.id} {r.row.name}" for r in runs]})
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        # No network: a policy that lets inline content run and forbids every fetch.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data:; font-src data:\">",
        f"<title>{esc(title)}</title><style>{_static('report.css')}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{len(runs)} run(s); written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by ganlab report</p>',
        *(f'<p class="note">{esc(n)}</p>' for n in notes),
        '<h2>Runs</h2><div class="bar"><button id="prev">◀</button><button id="next">▶</button>'
        '<span id="page"></span><span id="count" class="meta"></span></div>',
        '<div class="scroll"><table id="runs"><thead><tr id="heads"></tr><tr id="filters"></tr></thead>'
        '<tbody id="rows"></tbody></table></div>',
        '<p class="note">Click a header to sort; type in the boxes below it to filter '
        '(numbers: &lt;0.5, &gt;=3, 1..4). '
        'Best value per score in bold green; a score\'s _floor is its real-vs-real value.</p>',
    ]
    if cards:
        matched = f" at step {step}, the latest step all runs reached" if step is not None else ""
        parts += ['<h2>Samples</h2>', f'<p class="note">Each run\'s sample grid{esc(matched)}, and at its best '
                  'evaluation; captions are the hyperparameters that differ.</p>',
                  '<div class="bar"><button id="gprev">◀</button><button id="gnext">▶</button>'
                  '<span id="gcount" class="meta"></span></div><div class="gallery" id="gallery"></div>']
    if plot_divs:
        parts += ["<h2>Curves</h2>", '<p class="note">Hover a line to see its run.</p>',
                  f'<div class="plots">{"".join(plot_divs)}</div>']
    if parallel is not None:
        parts += ["<h2>Hyperparameters against the objective</h2>",
                  '<p class="note">Drag along an axis to select a range of it.</p>'
                  f'<div class="plot" id="parallel"{_height(parallel)}></div>']
    parts += [
        f'<script type="application/json" id="report-data">{blob}</script>',
        # Parsed only once the table is shown: most of the page's bytes are thumbnails and figures.
        f'<script type="application/json" id="gallery-data">{_json({c["id"]: c for c in cards})}</script>',
        f'<script type="application/json" id="figure-data">{figure_blob}</script>',
        # Run after the page has loaded (see report.js); "</" cannot occur in it, but must not end the element.
        f'<script type="text/plain" id="plotly-src">{_plotly_js()}</script>' if figures else "",
        f"<script>{_static('report.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _height(fig: go.Figure) -> str:
    # The figure's height reserved before it is drawn: figures are drawn as they scroll into view (report.js),
    # and empty divs would all be in view at once.
    return f' style="min-height:{int(fig.layout.height)}px"' if fig.layout.height else ""


def _json(data: Any) -> str:
    # "<" escaped: no run name can close the script element or open a comment in it.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _plotly_js() -> str:
    return plotly.offline.get_plotlyjs().replace("</script", "<\\/script")


def _static(name: str) -> str:
    return resources.files("ganlab.report").joinpath(name).read_text(encoding="utf-8")
