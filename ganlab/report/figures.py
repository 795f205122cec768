"""The report's plots, built with plotly: curves per metric against step and wall time, parallel coordinates.

Figures are returned as plotly figure objects; :mod:`ganlab.report.page`
embeds their JSON and plotly.js draws them. Curves are thinned so a page of
10,000 runs stays a page a browser opens: every run keeps its first and last
point and an even spread between, within a per-figure point budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from ganlab.compare.table import is_reference, lower_is_better
from ganlab.report.collect import ReportRun

#: Points one figure may hold in all; each run gets an equal share, within the bounds below.
POINT_BUDGET = 20_000
MIN_POINTS, MAX_POINTS = 12, 400
#: Up to this many runs, each is its own trace (own colour, legend entry); beyond, one trace per status.
TRACE_PER_RUN = 30
X_AXES = {"step": "step", "seconds": "wall time (s)"}
_STATUS_COLORS = {"succeeded": "#1f77b4", "running": "#2ca02c", "failed": "#d62728", "diverged": "#ff7f0e",
                  "cancelled": "#7f7f7f"}


def curve_tags(runs: Sequence[ReportRun]) -> list[str]:
    """The tags worth a curve: scores and losses, not their floors and spreads (the table has those)."""
    tags = {t for r in runs for t in r.curves}
    return sorted((t for t in tags if not is_reference(t.rsplit("/", 1)[-1])),
                  key=lambda t: (not t.startswith("metrics/"), t))


def thin(n: int, keep: int) -> list[int]:
    """Indices of ``keep`` of ``n`` points spread evenly, first and last included (all when n <= keep)."""
    if n <= keep:
        return list(range(n))
    if keep < 2:
        return [n - 1]
    return sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)})


def points_per_run(n_runs: int) -> int:
    """Each run's share of :data:`POINT_BUDGET`."""
    return max(MIN_POINTS, min(MAX_POINTS, POINT_BUDGET // max(n_runs, 1)))


def _round(v: float) -> float | None:
    # Five significant digits are more than a plot shows and halve the page's numbers; NaN/inf break the line.
    return float(f"{v:.5g}") if math.isfinite(v) else None


def curve_figure(runs: Sequence[ReportRun], tag: str, x: str = "step") -> go.Figure:
    """``tag`` of every run against ``x`` ("step" or "seconds"); hovering a point names its run."""
    keep = points_per_run(len(runs))
    with_tag = [r for r in runs if tag in r.curves]
    fig = go.Figure()
    if len(with_tag) <= TRACE_PER_RUN:
        for r in with_tag:
            c = r.curves[tag]
            idx = thin(len(c.values), keep)
            fig.add_trace(go.Scatter(
                x=[_round((c.seconds if x == "seconds" else c.steps)[i]) for i in idx],
                y=[_round(c.values[i]) for i in idx], mode="lines" if len(idx) > 1 else "markers",
                name=f"#{r.row.id} {r.row.name}",
                hovertemplate=f"#{r.row.id} {_escape(r.row.name)}<br>{X_AXES[x]} %{{x}}<br>%{{y}}<extra></extra>"))
    else:
        # Thousands of traces are slow to draw (and WebGL is absent in many headless browsers): one SVG path per
        # status, runs separated by gaps. Each point carries its run's row number rather than its name, which
        # would be most of the page; the page's script puts the names in (see report.js, withNames).
        index = {r.row.id: i for i, r in enumerate(runs)}
        by_status: dict[str, tuple[list, list, list]] = {}
        for r in with_tag:
            c = r.curves[tag]
            xs, ys, rows = by_status.setdefault(r.row.status, ([], [], []))
            series = c.seconds if x == "seconds" else c.steps
            for i in thin(len(c.values), keep):
                xs.append(_round(series[i]))
                ys.append(_round(c.values[i]))
                rows.append(index[r.row.id])
            xs.append(None)
            ys.append(None)
            rows.append(-1)
        for status, (xs, ys, rows) in sorted(by_status.items()):
            fig.add_trace(go.Scatter(
                x=xs, y=ys, customdata=rows, mode="lines", name=status, opacity=0.6,
                line={"width": 1, "color": _STATUS_COLORS.get(status)},
                hovertemplate=f"%{{text}}<br>{X_AXES[x]} %{{x}}<br>%{{y}}<extra>{status}</extra>"))
    fig.update_layout(title={"text": f"{tag} vs {X_AXES[x]}", "font": {"size": 14}}, xaxis_title=X_AXES[x],
                      yaxis_title=tag, height=340, margin={"l": 50, "r": 10, "t": 40, "b": 40},
                      showlegend=len(with_tag) <= 10, template="plotly_white")
    return fig


def _escape(text: str) -> str:
    # Hover templates are rendered as plotly's HTML subset, and %{...} is a template field.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("%{", "%&#123;")


def objective(runs: Sequence[ReportRun], wanted: str | None = None) -> str | None:
    """The metric the runs are judged by: ``wanted``, else ``fd`` (or the first score) that some run has."""
    have = {m for r in runs for m, v in r.row.metrics.items() if isinstance(v, (int, float))}
    if wanted:
        return wanted if wanted in have else None
    for name in ("fd", "best_fd", "kid"):
        if name in have:
            return name
    scores = sorted(m for m in have if not is_reference(m))
    return scores[0] if scores else None


def parallel_figure(runs: Sequence[ReportRun], keys: Sequence[str], metric: str) -> go.Figure | None:
    """Each run as a line through its hyperparameters ``keys`` and ``metric``, coloured by ``metric``.

    Runs without a finite ``metric`` are left out; None when fewer than two
    runs remain or there is no hyperparameter to show.
    """
    scored = [r for r in runs if isinstance(r.row.metrics.get(metric), (int, float))
              and math.isfinite(r.row.metrics[metric])]
    if len(scored) < 2 or not keys:
        return None
    dims = []
    for key in keys:
        values = [r.row.hparams.get(key) for r in scored]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append({"label": key.removeprefix("train."), "values": [float(v) for v in values]})
        else:
            labels = sorted({str(v) for v in values})
            index = {v: i for i, v in enumerate(labels)}
            dims.append({"label": key.removeprefix("train."), "values": [index[str(v)] for v in values],
                         "tickvals": list(range(len(labels))), "ticktext": [t[:24] for t in labels]})
    scores = [float(r.row.metrics[metric]) for r in scored]
    lower = lower_is_better(metric, [r.row for r in scored])
    dims.append({"label": metric, "values": scores})
    fig = go.Figure(go.Parcoords(
        dimensions=dims,
        line={"color": scores, "colorscale": "Viridis", "reversescale": lower, "showscale": True,
              "colorbar": {"title": {"text": metric}}}))
    better = "lower" if lower else "higher"
    fig.update_layout(title={"text": f"hyperparameters against {metric} ({better} is better; "
                                     f"{len(scored)} of {len(runs)} runs have it)", "font": {"size": 14}},
                      height=420, margin={"l": 60, "r": 60, "t": 80, "b": 30}, template="plotly_white")
    return fig
