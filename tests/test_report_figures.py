"""The report's parts without a browser: the fast event reader on resumed and half-written files, thinning,
figures, sample choice and thumbnails, the page's table and its escaping."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganlab.compare.table import RunRow
from ganlab.report.collect import Curve, ReportRun, load_run
from ganlab.report.figures import curve_figure, curve_tags, objective, parallel_figure, points_per_run, thin
from ganlab.report.images import caption, gallery, matched_step, nearest_at_or_before, thumbnail
from ganlab.report.page import columns_and_rows
from ganlab.report.write import build
from ganlab.tblog.events import read_events
from ganlab.tblog.read import load_run as tb_load_run
from ganlab.tblog.read import read_scalars
from ganlab.tblog.writer import RunWriter


def _grid(value: int, size: int = 40) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def _run(i: int, *, loss: str = "hinge", lr: float = 1e-3, fd: float | None = 5.0, status: str = "succeeded",
         grids: dict[int, bytes] | None = None, name: str | None = None) -> ReportRun:
    metrics = {"fd": fd, "fd_floor": 1.0, "best_step": 20} if fd is not None else {}
    row = RunRow(id=i, name=name or f"run-{i}", status=status, step=30, total=30,
                 hparams={"loss": loss, "train.lr_g": lr, "train.seed": 0}, metrics=metrics, wall_s=12.0)
    steps = list(range(0, 31, 10))
    run = ReportRun(row=row, run_dir=None, best_step=20 if fd is not None else None,
                    curves={"metrics/fd": Curve(steps, [s / 10 for s in steps], [fd or 1.0] * 4),
                            "metrics/fd_floor": Curve(steps, steps, [1.0] * 4)})
    run.grids = grids or {}
    return run


def _png(value: int, size: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_grid(value, size)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ the event reader


def test_reader_drops_the_tail_a_resume_replaced(tmp_path: Path) -> None:
    with RunWriter(tmp_path) as w:
        for step in range(0, 12, 2):
            w.scalar("loss/g", float(step), step)
        w.image("samples", _grid(10), 10)
    with RunWriter(tmp_path, resume_step=6) as w:  # the checkpoint was at 6: 6..10 are logged again
        for step in range(6, 14, 2):
            w.scalar("loss/g", step + 0.5, step)
    ours = read_events(tmp_path)
    assert [(s, v) for s, _, v in ours.scalars["loss/g"]] == [(0, 0.0), (2, 2.0), (4, 4.0), (6, 6.5), (8, 8.5),
                                                              (10, 10.5), (12, 12.5)]
    assert ours.images == {"samples": []}  # its step-10 grid came from the replaced tail
    assert [(s, v) for s, _, v in ours.scalars["loss/g"]] == read_scalars(tb_load_run(tmp_path))["loss/g"]


def test_reader_stops_quietly_at_a_record_being_written(tmp_path: Path) -> None:
    with RunWriter(tmp_path) as w:
        for step in range(5):
            w.scalar("metrics/fd", 10.0 - step, step)
    path = next(p for p in tmp_path.iterdir() if "tfevents" in p.name)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the last record cut in the middle
    assert [s for s, _, _ in read_events(tmp_path).scalars["metrics/fd"]] == [0, 1, 2, 3]
    with pytest.raises(FileNotFoundError, match="no run directory"):
        read_events(tmp_path / "nosuch")


def test_load_run_keeps_curves_and_grids_and_notes_empty_runs(tmp_path: Path) -> None:
    with RunWriter(tmp_path / "a") as w:
        w.scalars({"metrics/fd": 3.0, "loss/g": 1.0, "lr/generator": 1e-3}, 5)
        w.image("samples", _grid(200), 5)
    run = _run(1)
    run.curves = {}
    load_run(run, tmp_path / "a")
    assert sorted(run.curves) == ["loss/g", "metrics/fd"]  # learning rates are not worth a curve
    assert run.curves["metrics/fd"].steps == [5] and run.curves["metrics/fd"].seconds[0] >= 0
    assert list(run.grids) == [5] and Image.open(io.BytesIO(run.grids[5])).size == (40, 40)
    (tmp_path / "b").mkdir()
    empty = _run(2)
    load_run(empty, tmp_path / "b")
    assert empty.note == "no events logged yet"


# ------------------------------------------------------------------ figures


def test_thin_keeps_ends_and_budget() -> None:
    assert thin(5, 10) == [0, 1, 2, 3, 4]
    kept = thin(1000, 50)
    assert kept[0] == 0 and kept[-1] == 999 and len(kept) == 50
    assert points_per_run(10) == 400 and points_per_run(10_000) == 12


def test_curves_name_each_run_on_hover() -> None:
    few = [_run(i, name=f"<b>run-{i}</b>") for i in range(3)]
    fig = curve_figure(few, "metrics/fd", "seconds")
    assert len(fig.data) == 3
    assert "#0 &lt;b&gt;run-0&lt;/b&gt;" in fig.data[0].hovertemplate  # a name is text, not markup
    assert list(fig.data[1].x) == [0.0, 1.0, 2.0, 3.0]
    many = [_run(i, status="failed" if i % 10 == 0 else "succeeded") for i in range(100)]
    fig = curve_figure(many, "metrics/fd", "step")
    assert sorted(t.name for t in fig.data) == ["failed", "succeeded"]
    failed = next(t for t in fig.data if t.name == "failed")
    # Each point names its run by row number (the page turns it into the name); -1 marks the gap between runs.
    assert list(failed.customdata)[:5] == [0, 0, 0, 0, -1] and list(failed.x).count(None) == 10
    assert list(failed.customdata)[5] == 10 and "%{text}" in failed.hovertemplate
    assert curve_tags(many) == ["metrics/fd"]  # the floor is in the table, not a curve


def test_parallel_coordinates_code_categories_and_skip_unscored() -> None:
    runs = [_run(1, loss="hinge", lr=1e-3, fd=4.0), _run(2, loss="wgan", lr=2e-4, fd=6.0), _run(3, fd=None)]
    assert objective(runs) == "fd" and objective(runs, "nosuch") is None
    fig = parallel_figure(runs, ["loss", "train.lr_g"], "fd")
    dims = fig.data[0].dimensions
    assert [d.label for d in dims] == ["loss", "lr_g", "fd"]
    assert list(dims[0].ticktext) == ["hinge", "wgan"] and list(dims[0].values) == [0, 1]
    assert list(dims[2].values) == [4.0, 6.0]
    assert "2 of 3 runs" in fig.layout.title.text
    assert parallel_figure(runs[:1], ["loss"], "fd") is None


# ------------------------------------------------------------------ samples


def test_samples_at_the_step_every_run_reached() -> None:
    a = _run(1, grids={10: _png(1), 20: _png(2), 30: _png(3)})
    b = _run(2, grids={10: _png(4), 20: _png(5)}, status="diverged")
    assert matched_step([a, b]) == 20
    assert nearest_at_or_before([10, 20, 30], 25) == 20 and nearest_at_or_before([10], 5) == 10
    assert nearest_at_or_before([], 5) is None
    step, cards = gallery([a, b, _run(3)], ["loss", "train.lr_g"])
    assert step == 20 and [c["id"] for c in cards] == [1, 2]  # run 3 logged no grid
    assert cards[0]["latest_step"] == 20 and cards[0]["best"] is None  # its best (20) is the grid shown
    assert cards[0]["caption"] == "loss=hinge lr_g=0.001"
    assert caption(a, ["nosuch"]) == ""


def test_thumbnails_are_small_webp_data_urls() -> None:
    url = thumbnail(_png(128, size=600))
    assert url.startswith("data:image/webp;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.format == "WEBP" and img.size == (192, 192)
    small = Image.open(io.BytesIO(base64.b64decode(thumbnail(_png(7, size=40)).split(",", 1)[1])))
    assert small.size == (40, 40)  # never scaled up


# ------------------------------------------------------------------ the page


def test_table_has_scores_then_floors_and_marks_the_best() -> None:
    runs = [_run(1, fd=4.0), _run(2, fd=6.0, loss="wgan")]
    cols, rows = columns_and_rows(runs, ["loss"], ["best_step", "fd", "fd_floor"])
    assert [c["key"] for c in cols] == ["id", "name", "loss", "status", "steps", "fd", "fd_floor", "wall_s"]
    fd = next(c for c in cols if c["key"] == "fd")
    assert fd["best"] == 4.0 and fd["lower"] is True
    assert rows[1][:5] == [2, "run-2", "wgan", "succeeded", "30/30"]


def test_page_data_cannot_end_its_script() -> None:
    hostile = "</script><script>alert(1)</script><!--"
    runs = [_run(1, name=hostile), _run(2, loss="wgan", fd=float("nan"))]
    page = build(runs)
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in blob
    data = json.loads(blob)
    assert data["rows"][0][1] == hostile if data["rows"][0][0] == 1 else data["rows"][1][1] == hostile
    assert any(r[0] == 2 and "nan" in r for r in data["rows"])  # NaN is shown as text; JSON has no NaN
    figures = re.search(r'<script type="application/json" id="figure-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in figures and hostile in json.loads(figures)["names"][0]
    assert page.count("<script") == 5  # table, gallery and figure data, plotly.js (as text), the glue: no more
    fd = next(c for c in data["columns"] if c["key"] == "fd")
    assert fd["best"] == 5.0  # a NaN is never the best


# ------------------------------------------------------------------ selection


def test_collect_keeps_rows_whose_run_dir_is_missing_or_elsewhere(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ganlab.cli import cli
    from ganlab.report.collect import collect
    from ganlab.store import Queue, Store

    url = f"sqlite:///{tmp_path / 'q.db'}"
    added = CliRunner().invoke(cli, ["queue", "add", "--db", url, "-q", "--steps", "5", "--seeds", "0,1,2"])
    assert added.exit_code == 0, added.output
    with RunWriter(tmp_path / "here") as w:
        w.scalar("metrics/fd", 2.0, 5)
    with Queue.open(url) as queue:
        for path, host in ((tmp_path / "here", None), (tmp_path / "gone", None), ("/elsewhere/run", "other-host")):
            claim = queue.claim("w", host="h", pid=1)
            queue.set_run_dir(claim.id, claim.token, str(path), host=host)
            queue.finish(claim.id, claim.token, "succeeded", metrics={"fd": 2.0}, step=5)
    with Store.open(url) as store:
        runs = collect(store)
        assert [r.note for r in runs] == [None, "run dir missing (moved or deleted)", "run dir on other-host"]
        assert runs[0].curves["metrics/fd"].values == [2.0]
        assert [r.row.id for r in collect(store, ids=[2, 3])] == [2, 3]
        assert collect(store, statuses=["queued"]) == []
