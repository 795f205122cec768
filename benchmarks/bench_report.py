"""`ganlab report` benchmark (run on demand, not a test): write and open reports of 1,000 and 10,000 runs.

    python benchmarks/bench_report.py                 # 1,000 and 10,000 runs; updates docs/performance.md
    python benchmarks/bench_report.py --runs 1000 --no-write

Synthetic runs, each a row in a SQLite queue (succeeded, with metrics) and a
run directory whose event files are written by ganlab's own RunWriter: the
trainer's scalars every 100 of 5,000 steps, an evaluation every 500, and a
grid of 64 8x8 samples every 1,000. `ganlab report` is timed as a user runs
it (a new process, imports included), and the page is opened by headless
Chromium offline in a 1400x900 window: once to its load event (the page's own
clock notes when the table was drawn), once until the table and the figures in
the first screen are drawn (figures below it are drawn as they scroll in), and
once with ``#draw-all`` until every figure is drawn. References measured in the same run: Chromium opening an
empty page, and TensorBoard's EventAccumulator reading the same runs.

Goals: 1,000 runs written < 10 s and opened < 3 s; 10,000 still open.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "docs"))

from perfdoc import machine_description, replace_section  # noqa: E402
from report_browser import dump_dom  # noqa: E402

from ganlab.report.figures import POINT_BUDGET  # noqa: E402

LOSSES = ("non-saturating", "hinge", "wgan-gp")
STEPS, LOG_EVERY, EVAL_EVERY, SAMPLE_EVERY = 5000, 100, 500, 1000
READER_SAMPLE = 100  # runs read by both readers for the reference ratio


def make_runs(root: Path, n: int) -> str:
    """``n`` finished runs in ``root``: the queue's rows and their run directories. Returns the database URL."""
    from ganlab.config import ExperimentConfig
    from ganlab.store import NewExperiment, Store
    from ganlab.tblog import image_grid
    from ganlab.tblog.writer import RunWriter

    db = root / "experiments.db"
    rng = np.random.default_rng(0)
    items, configs = [], []
    for i in range(n):
        loss, lr = LOSSES[i % 3], float(f"{1e-4 * (1 + (i // 3) % 10):.3g}")
        configs.append((loss, lr))
        cfg = ExperimentConfig("dcgan", "digits", loss, train={"lr_g": lr, "seed": i // 30, "steps": STEPS})
        items.append(NewExperiment(cfg, f"sweep-{loss}-lr_g={lr}-seed={i // 30}-{i}", tags=("bench",)))
    with Store.open(f"sqlite:///{db}", create=True) as store:
        store.enqueue(items, allow_duplicates=True)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    updates = []
    for i, (loss, lr) in enumerate(configs):
        run_dir = root / "runs" / f"{i + 1:05d}"
        quality = 20 + 40 * abs(np.log10(lr) + 3.4) + 5 * LOSSES.index(loss) + rng.normal(0, 2)
        with RunWriter(run_dir) as w:
            for step in range(LOG_EVERY, STEPS + 1, LOG_EVERY):
                w.scalars({"loss/generator": 1 + rng.random(), "loss/discriminator": 1 + rng.random()}, step)
                if step % EVAL_EVERY == 0:
                    fd = quality * (1 + 3 * np.exp(-step / 1500))
                    w.scalars({"metrics/fd": fd, "metrics/kid": fd / 40, "metrics/fd_floor": 4.0}, step)
                if step % SAMPLE_EVERY == 0:
                    w.image("samples", image_grid(rng.integers(0, 255, (64, 8, 8, 1), dtype=np.uint8), ncols=8), step)
        metrics = {"fd": quality, "kid": quality / 40, "fd_floor": 4.0, "kid_floor": 0.01,
                   "best_fd": quality, "best_step": STEPS}
        began = start + timedelta(minutes=i)
        updates.append(("succeeded", str(began), str(began + timedelta(seconds=300 + i % 60)), STEPS, STEPS,
                        json.dumps(metrics), str(run_dir), i + 1))
    with sqlite3.connect(db) as con:  # finishing 10,000 claims one by one would take longer than the benchmark
        con.executemany("UPDATE experiments SET status=?, started_at=?, finished_at=?, step=?, total_steps=?, "
                        "metrics=?, run_dir=? WHERE id=?", updates)
    return f"sqlite:///{db}"


def bench_readers(root: Path) -> dict[str, float]:
    """Seconds per run: ganlab's event reader and TensorBoard's EventAccumulator, on the same runs."""
    from ganlab.tblog.events import read_events
    from ganlab.tblog.read import load_run

    dirs = sorted((root / "runs").iterdir())[:READER_SAMPLE]
    # Each reader once first: TensorBoard's imports TensorFlow on its first read, which is not reading time.
    read_events(dirs[0])
    load_run(dirs[0])
    t0 = time.perf_counter()
    for d in dirs:
        read_events(d)
    ours = (time.perf_counter() - t0) / len(dirs)
    t0 = time.perf_counter()
    for d in dirs:
        load_run(d)
    theirs = (time.perf_counter() - t0) / len(dirs)
    return {"ours_ms": ours * 1000, "tensorboard_ms": theirs * 1000}


def cpu_pressure() -> float | None:
    """The share of the last minute in which runnable tasks waited for a CPU (Linux PSI), in percent."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(first.split("avg60=")[1].split()[0])


def _child_cpu() -> float:
    """CPU seconds of every finished child process so far (Chromium's own children included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_report(root: Path, url: str) -> dict[str, float]:
    out = root / "report.html"
    t0, c0 = time.perf_counter(), _child_cpu()
    done = subprocess.run([sys.executable, "-m", "ganlab", "report", "--db", url, "-o", str(out)],
                          capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(ROOT)})
    write_s, write_cpu = time.perf_counter() - t0, _child_cpu() - c0
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    dom, _ = dump_dom(out)
    shown = re.search(r'data-table-ms="(\d+)"', dom)
    assert shown, "the table was not drawn at load"
    c0 = _child_cpu()
    dom, open_s = dump_dom(out, budget_ms=2000)
    open_cpu = _child_cpu() - c0
    assert 'data-shown="1"' in dom, "the figures in the first screen were not drawn"
    # Reference: the same bytes with the page's script left out (Chromium reads, parses and dumps 14 MB
    # of inline data either way); the difference is what the page's own work adds.
    source = out.read_text(encoding="utf-8")
    inert = root / "inert.html"
    inert.write_text(source[:source.rindex("<script>")] + "</body></html>", encoding="utf-8")
    inert_s = dump_dom(inert, budget_ms=2000)[1]
    dom, drawn_s = dump_dom(out, budget_ms=2000, fragment="draw-all")
    assert 'data-ready="1"' in dom, "the figures were not all drawn"
    return {"write_s": write_s, "write_cpu": write_cpu, "mb": out.stat().st_size / 1e6, "open_s": open_s,
            "open_cpu": open_cpu, "inert_s": inert_s, "table_s": int(shown[1]) / 1000, "drawn_s": drawn_s}


def _pressure_note(pressure: float | None) -> str:
    if pressure is None or pressure < 20:
        return ""
    return (f"Tasks waited for a CPU {pressure:.0f}% of the minute before the run (other work on the VM): wall "
            "times are several times the CPU times; the CPU seconds and the table's time are the figures to hold "
            "against the goals.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, action="append", help="runs per report (repeatable; default 1000 and 10000)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args(argv)
    sizes = args.runs or [1000, 10_000]
    pressure = cpu_pressure()
    with tempfile.TemporaryDirectory(prefix="ganlab-bench-report-") as tmp:
        empty = Path(tmp) / "empty.html"
        empty.write_text("<!DOCTYPE html><html><body>empty</body></html>")
        c0 = _child_cpu()
        baseline = min(dump_dom(empty, budget_ms=2000)[1] for _ in range(3))
        baseline_cpu = (_child_cpu() - c0) / 3
        print(f"Chromium opening an empty page: {baseline:.2f} s ({baseline_cpu:.2f} CPU s)")
        results = {}
        for n in sizes:
            root = Path(tmp) / str(n)
            root.mkdir()
            t0 = time.perf_counter()
            url = make_runs(root, n)
            print(f"{n} runs made in {time.perf_counter() - t0:.0f} s", flush=True)
            readers = bench_readers(root)
            r = bench_report(root, url)
            results[n] = {**r, **readers}
            print(f"{n:>6} runs: written in {r['write_s']:.1f} s ({r['write_cpu']:.1f} CPU s), {r['mb']:.1f} MB; "
                  f"opened in {r['open_s']:.2f} s ({r['open_cpu']:.1f} CPU s; the page without its script "
                  f"{r['inert_s']:.2f} s) "
                  f"(table shown {r['table_s']:.2f} s after the page opened), every figure drawn (#draw-all) in "
                  f"{r['drawn_s']:.2f} s; reading a run: "
                  f"{readers['ours_ms']:.1f} ms vs EventAccumulator {readers['tensorboard_ms']:.1f} ms "
                  f"({readers['tensorboard_ms'] / readers['ours_ms']:.1f}x)", flush=True)
    if not args.no_write:
        rows = "\n".join(
            f"| {n:,} | {r['write_s']:.1f} s ({r['write_cpu']:.1f}) | {r['mb']:.0f} MB | "
            f"{r['open_s']:.2f} s ({r['open_cpu']:.1f}) | {r['inert_s']:.2f} s | {r['table_s']:.2f} s | "
            f"{r['drawn_s']:.2f} s | "
            f"{r['ours_ms']:.1f} ms ({r['tensorboard_ms'] / r['ours_ms']:.1f}x faster) |" for n, r in results.items())
        section = f"""## Report: `benchmarks/bench_report.py`

`ganlab report` over synthetic finished runs (event files written by ganlab's
RunWriter: 50 logged steps, 10 evaluations and 5 sample grids per run), timed
as a user runs it, in a new process; the page opened by headless Chromium
from a file URL, offline, in a 1400x900 window. The report draws each figure
when it comes within 300 px of the window (report.js), so opening does not
wait for figures below the first screen. *Opened* is Chromium's start to its
DOM dump once the table, the gallery's first page and the figures in the first
screen are drawn (plotly.js started, `--virtual-time-budget`, so every task
the page queued has run; an empty page takes {baseline:.2f} s and {baseline_cpu:.2f} CPU s,
Chromium's own start-up). With 100 table rows a page the first screen holds
the table and no figure. *Without script* is the same run on a copy of the
page without report.js (the reference: Chromium reading, parsing and, for
the dump, writing back the inline data, 14 MB at 1,000 runs; writing the dump
is about 2 s of it, work a browser showing the page does not do). *Table* is
when the page's own clock saw the table drawn (a dump at the load event);
*every figure drawn* is the same run as
*opened* with `#draw-all` in the URL, which draws every figure at once (the
work of scrolling through the whole page). In brackets: CPU seconds (user +
system of the process and the children it waited for; for Chromium this can
leave out helper processes), which contention on a shared machine inflates
far less than wall time. *Reading a run* compares ganlab's event reader with
TensorBoard's EventAccumulator on {READER_SAMPLE} of the same runs.

| runs | written | size | opened (first screen drawn) | without script | table | every figure drawn | reading a run |
|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Goals: 1,000 runs written in under 10 s and opened in under 3 s; 10,000 runs
still open (the table shows 100 rows a page, the gallery 24 runs a page,
curves keep {POINT_BUDGET:,} points a figure). {machine_description()}.
{_pressure_note(pressure)}
"""
        print(f"updated {replace_section('Report: `benchmarks/bench_report.py`', section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
