"""What ``ganlab train`` shows while it runs: a rich progress bar on a terminal, plain lines in a log."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ganlab.training.report import BaseReporter

# Losses shown in the bar, with short labels; the rest are in TensorBoard.
_SHOWN = {"loss/discriminator": "D", "loss/generator": "G", "loss/penalty": "pen"}


def format_losses(losses: Mapping[str, float]) -> str:
    # A regulariser switched off (e.g. r1_gamma=0) reports exactly 0: not worth the room.
    return " ".join(
        f"{label} {losses[key]:.3f}" for key, label in _SHOWN.items() if key in losses and not (label == "pen" and losses[key] == 0)
    )


def format_rate(steps_per_s: float, images_per_s: float) -> str:
    if not math.isfinite(steps_per_s):
        return "compiling"
    return f"{steps_per_s:.1f} steps/s  {images_per_s:,.0f} img/s"


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


class LineReporter(BaseReporter):
    """One line per log interval (at most every ``min_interval`` seconds): for logs and pipes."""

    def __init__(self, min_interval: float = 5.0) -> None:
        self.min_interval = min_interval
        self.total = 0
        self._last = -math.inf

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.total = total_steps
        click.echo(f"training from step {start_step} to {total_steps}", err=True)

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval and step < self.total:
            return
        self._last = now
        click.echo(f"step {step}/{self.total}  {format_rate(steps_per_s, images_per_s)}  {format_losses(losses)}", err=True)

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        click.echo(f"eval at step {step}: {shown}", err=True)

    def on_checkpoint(self, step: int) -> None:
        click.echo(f"checkpoint at step {step}", err=True)

    def on_end(self) -> None:
        sys.stderr.flush()


def make_display(label: str, quiet: bool) -> ProgressReporter | LineReporter | None:
    """A bar on a terminal, lines otherwise, nothing with ``quiet``."""
    if quiet:
        return None
    return ProgressReporter(label) if sys.stderr.isatty() else LineReporter()
