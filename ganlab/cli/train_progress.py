"""What ``ganlab train`` shows while it runs: a rich progress bar on a terminal, plain lines in a log."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ganlab.training.progress_format import LineReporter, format_losses, format_rate
from ganlab.training.report import BaseReporter


class ProgressReporter(BaseReporter):
    """A rich bar on stderr: step, steps/s, images/s, ETA and the last losses."""

    def __init__(self, label: str) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            TextColumn("{task.fields[note]}"),
            console=self.console,
            transient=False,
        )
        self.label = label
        self.task: int | None = None

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            self.label, total=total_steps, completed=start_step, rate="compiling", losses="", note=""
        )

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        if self.task is not None:
            self.progress.update(
                self.task, completed=step, rate=format_rate(steps_per_s, images_per_s), losses=format_losses(losses)
            )

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.task is not None and "fd" in metrics:
            self.progress.update(self.task, note=f"FD {metrics['fd']:.3g} (floor {metrics.get('fd_floor', math.nan):.3g})")

    def on_end(self) -> None:
        self.progress.stop()


def make_display(label: str, quiet: bool) -> ProgressReporter | LineReporter | None:
    """A bar on a terminal, lines otherwise, nothing with ``quiet``."""
    if quiet:
        return None
    return ProgressReporter(label) if sys.stderr.isatty() else LineReporter()
