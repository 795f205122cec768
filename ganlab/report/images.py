"""The runs' sample grids for the report: chosen at matched steps, shrunk and inlined as data URLs.

Two grids per run: the *latest* at the step every run reached (so runs are
compared after the same amount of training), and the *best* at the step of
the run's best evaluation. Runs that lack a grid at exactly that step show
their nearest earlier one, and the caption says which step it is.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence

from PIL import Image

from ganlab.report.collect import ReportRun

#: Longest side of an inlined grid, in pixels: a thumbnail a reader can still judge.
MAX_SIDE = 192


def matched_step(runs: Iterable[ReportRun]) -> int | None:
    """The latest step at which every run with grids logged one; else the smallest of their latest steps."""
    sets = [set(r.grids) for r in runs if r.grids]
    if not sets:
        return None
    common = set.intersection(*sets)
    return max(common) if common else min(max(s) for s in sets)


def nearest_at_or_before(steps: Iterable[int], step: int | None) -> int | None:
    """The greatest of ``steps`` not after ``step`` (the earliest one when all are after; None when empty)."""
    steps = sorted(steps)
    if not steps:
        return None
    if step is None:
        return steps[-1]
    before = [s for s in steps if s <= step]
    return before[-1] if before else steps[0]


def thumbnail(png: bytes, max_side: int = MAX_SIDE) -> str:
    """A ``data:`` URL of the image, scaled down to ``max_side`` (never up), as lossless WebP.

    Grids of tiny images are small; nearest-neighbour scaling keeps their pixels sharp,
    and lossless WebP is about a third smaller than PNG for them.
    """
    with Image.open(io.BytesIO(png)) as img:
        img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
        if max(img.size) > max_side:
            scale = max_side / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="WEBP", lossless=True, method=0)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def caption(run: ReportRun, keys: Sequence[str]) -> str:
    """The run's key hyperparameters (those that differ across the report), ``key=value`` joined."""
    parts = [f"{k.removeprefix('train.')}={_short(run.row.hparams[k])}" for k in keys if k in run.row.hparams]
    return " ".join(parts)


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def gallery(runs: Sequence[ReportRun], keys: Sequence[str]) -> tuple[int | None, list[dict]]:
    """The matched step and, per run with grids, ``{id, name, caption, latest, latest_step, best, best_step}``.

    ``latest`` and ``best`` are data URLs (``best`` None when the run has no
    best evaluation or its best grid is the latest one).
    """
    step = matched_step(runs)
    out: list[dict] = []
    for run in runs:
        if not run.grids:
            continue
        latest = nearest_at_or_before(run.grids, step)
        best = nearest_at_or_before(run.grids, run.best_step) if run.best_step is not None else None
        item = {"id": run.row.id, "name": run.row.name, "caption": caption(run, keys),
                "latest": thumbnail(run.grids[latest]), "latest_step": latest, "best": None, "best_step": best}
        if best is not None and best != latest:
            item["best"] = thumbnail(run.grids[best])
        out.append(item)
    return step, out
