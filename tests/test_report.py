"""``ganlab report`` end to end: real runs from a real worker, the page opened by headless Chromium offline.

Three tiny experiments run in a worker subprocess (two succeed, one whose
discriminator turns NaN after its first evaluation, so it diverges). The
report is written as a user would write it and loaded from a file:// URL by
Chromium with every host name unresolvable; the DOM it dumps must hold the
table's rows, the sample grids and the drawn figures. Skipped, loudly, where
Chromium is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_tensorboard_e2e import EXPERIMENTS, PLUGINS, ROOT, TINY  # its three runs: two good, one diverging

from ganlab.cli import cli
from ganlab.store.queue import Queue
from ganlab.tblog.events import read_events
from ganlab.tblog.read import load_run, read_images, read_scalars


def _browser():
    spec = importlib.util.spec_from_file_location("report_browser", ROOT / "docs" / "report_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


browser = _browser()
needs_chromium = pytest.mark.skipif(browser.find_chromium() is None,
                                    reason="SKIPPED: Chromium is not installed (apt-get install chromium); "
                                           "the report is not tested in a browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict]:
    base = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{base / 'experiments.db'}"
    env = {**os.environ, "GANLAB_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for key, args in EXPERIMENTS.items():
        added = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "--db", url, "add", "-q",
                                         *TINY, "--name", f"run-{key}", *args])
        assert added.exit_code == 0, added.output
    done = subprocess.run([sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "worker", "--db", url,
                           "--runs-dir", str(base / "runs"), "--gpus", "none", "--poll", "0.3", "--until-empty", "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with Queue.open(url) as queue:
        records = {r.name: r for r in queue.get_many([s.id for s in queue.list_experiments()])}
    assert {n: r.status for n, r in records.items()} == \
        {"run-ns": "succeeded", "run-hinge": "succeeded", "run-nan": "diverged"}
    return url, base, records


def _report(url: str, out: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["report", "--db", url, "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    return result.output


def test_fast_reader_matches_tensorboard(runs) -> None:
    """The TF-free reader returns what TensorBoard's own EventAccumulator does, on real runs."""
    _, _, records = runs
    for rec in records.values():
        ours = read_events(rec.run_dir)
        acc = load_run(rec.run_dir)
        theirs = read_scalars(acc)
        assert sorted(ours.scalars) == sorted(theirs)
        for tag, points in theirs.items():
            mine = [(s, v) for s, _, v in ours.scalars[tag]]
            assert [s for s, _ in mine] == [s for s, _ in points], tag
            assert all(a == b or (math.isnan(a) and math.isnan(b)) for (_, a), (_, b) in zip(mine, points)), tag
        assert {t: [p[0] for p in v] for t, v in ours.images.items()} == read_images(acc)


@needs_chromium
def test_report_opens_offline_in_chromium(runs, tmp_path: Path) -> None:
    url, _, records = runs
    page = tmp_path / "report.html"
    said = _report(url, page)
    assert "3 run(s)" in said
    source = page.read_text(encoding="utf-8")
    # Self-contained: nothing is loaded from anywhere (the page's policy forbids it too).
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:|//)""", source)
    assert "default-src 'none'" in source
    # "#draw-all": every figure, not only those in the window (see test_report_draws_figures_as_they_scroll_in).
    dom, _ = browser.dump_dom(page, budget_ms=5000, fragment="draw-all")
    assert 'data-ready="1"' in dom, "the figures were not all drawn"
    body = dom[dom.index('<tbody id="rows">'):]
    body = body[:body.index("</tbody>")]
    names = re.findall(r'<td class="name" title="([^"]*)"', body)
    assert sorted(names) == ["run-hinge", "run-nan", "run-ns"]
    assert body.count(">diverged</td>") == 1 and body.count(">succeeded</td>") == 2
    # The loss sweep is the column that differs; its optimiser defaults are folded into it.
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", dom[dom.index('<tr id="heads">'):dom.index('<tr id="filters">')])
    assert "loss" in heads and "fd" in heads and "fd_floor" in heads and "lr_g" not in heads
    # Every run's grid at the matched step (6: the diverged run stopped at 8), the two others' best too.
    imgs = re.findall(r'<img src="data:image/webp;base64,[^"]+" alt="samples of #(\d+) at ([^"]+)"', dom)
    by_run = {}
    for rid, label in imgs:
        by_run.setdefault(int(rid), []).append(label)
    ids = {name: rec.id for name, rec in records.items()}
    assert by_run[ids["run-nan"]] == ["step 6"]
    assert by_run[ids["run-ns"]][0] == "step 6" and by_run[ids["run-hinge"]][0] == "step 6"
    # Curves and the parallel-coordinates plot, drawn by plotly into their divs.
    drawn = _drawn(dom)
    assert {"curve-0-0", "curve-0-1"} <= drawn  # metrics/fd against step and wall time
    assert len([p for p in drawn if p.startswith("curve-")]) >= 4  # fd, kid, and the losses


def _drawn(dom: str) -> set[str]:
    return {pid for pid, inner in re.findall(r'<div class="plot[^"]*" id="([\w-]+)"[^>]*>(.{0,400})', dom)
            if "plot-container" in inner}


@needs_chromium
def test_report_draws_figures_as_they_scroll_in(runs, tmp_path: Path) -> None:
    """In a 1400x900 window the last figure, far below the table, is drawn only once scrolled to."""
    url, _, _ = runs
    page = tmp_path / "report.html"
    _report(url, page)
    ids = re.findall(r'<div class="plot" id="([\w-]+)"', page.read_text(encoding="utf-8"))
    last = ids[-1]
    dom, _ = browser.dump_dom(page, budget_ms=5000)
    assert 'data-shown="1"' in dom and 'data-ready="1"' not in dom
    assert last not in _drawn(dom), "a figure out of view was drawn at load"
    # The URL's fragment scrolls the window to the last figure, as a reader scrolling down would.
    dom, _ = browser.dump_dom(page, budget_ms=5000, fragment=last)
    drawn = _drawn(dom)
    assert last in drawn, "the figure scrolled into view was not drawn"
    assert ids[0] not in drawn, "a figure scrolled out of view was drawn"


@needs_chromium
def test_report_selection_and_sorting(runs, tmp_path: Path) -> None:
    url, _, records = runs
    page = tmp_path / "good.html"
    _report(url, page, "--tag", "good", "--sort", "fd")
    dom, _ = browser.dump_dom(page)
    names = re.findall(r'<td class="name" title="([^"]*)"', dom)
    best_first = sorted(["run-ns", "run-hinge"], key=lambda n: records[n].metrics["fd"])
    assert names == best_first
    page = tmp_path / "bad.html"
    _report(url, page, "--status", "diverged", "--columns", "all")
    dom, _ = browser.dump_dom(page)
    assert re.findall(r'<td class="name" title="([^"]*)"', dom) == ["run-nan"]
    assert ">lr_g<" in dom  # every setting with --columns all
