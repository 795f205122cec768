"""How training progress reads as text: ``ganlab train``'s lines, the worker's run logs and its status line."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from ganlab.training.report import BaseReporter

#: Losses shown, with short labels; the rest are in TensorBoard.
SHOWN_LOSSES = {"loss/discriminator": "D", "loss/generator": "G", "loss/penalty": "pen"}


def format_losses(losses: Mapping[str, float]) -> str:
    """``D 1.386 G 0.693``: the discriminator's and generator's losses (and a penalty that is on)."""
    # A regulariser switched off (e.g. r1_gamma=0) reports exactly 0: not worth the room.
    return " ".join(
        f"{label} {losses[key]:.3f}" for key, label in SHOWN_LOSSES.items()
        if key in losses and not (label == "pen" and losses[key] == 0)
    )


def format_rate(steps_per_s: float, images_per_s: float) -> str:
    """``12.3 steps/s  394 img/s``, or ``compiling`` before the first timed interval."""
    if not math.isfinite(steps_per_s):
        return "compiling"
    return f"{steps_per_s:.1f} steps/s  {images_per_s:,.0f} img/s"


class LineReporter(BaseReporter):
    """One line per log interval (at most every ``min_interval`` seconds) on stderr.

    ``ganlab train`` prints these when stderr is not a terminal; a worker's
    child prints them into the run's ``train.log``, which ``ganlab logs`` shows.
    """

    def __init__(self, min_interval: float = 5.0, stream: TextIO | None = None) -> None:
        self.min_interval = min_interval
        self.stream = stream  # None: stderr (a pack member writes to its own train.log)
        self.total = 0
        self._last = -math.inf

    def _say(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.total = total_steps
        self._say(f"training from step {start_step} to {total_steps}")

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval and step < self.total:
            return
        self._last = now
        self._say(f"step {step}/{self.total}  {format_rate(steps_per_s, images_per_s)}  {format_losses(losses)}")

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        self._say(f"eval at step {step}: {shown}")

    def on_checkpoint(self, step: int) -> None:
        self._say(f"checkpoint at step {step}")
