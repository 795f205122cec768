"""What the worker shows on its terminal: one live line per running experiment, a line per event."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from ganlab.names import printable
from ganlab.training.progress_format import format_losses
from ganlab.worker.child import Child


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def describe(child: Child) -> str:
    return (f"#{child.id} {printable(child.name)}  {child.step}/{child.total}  {child.steps_per_s:.1f} steps/s  "
            f"ETA {_fmt_eta(child.eta_s())}  {format_losses(child.losses)}").rstrip()


class WorkerDisplay:
    """Live progress bars on a terminal; a plain line every ``every_s`` seconds in a log."""

    def __init__(self, *, quiet: bool = False, every_s: float = 10.0, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stdout)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.every_s = every_s
        self._last_plain = 0.0
        self._tasks: dict[int, TaskID] = {}
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                # The name is stored data: shown as text, never read as rich markup.
                TextColumn("[bold]#{task.fields[id]}[/]"), TextColumn("{task.fields[name]}", markup=False),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[rate]}"),
                TextColumn("ETA {task.fields[eta]}"), TextColumn("{task.fields[losses]}", markup=False),
                console=self.console, refresh_per_second=4,
            )
            self._progress.start()

    def event(self, message: str) -> None:
        """A line that stays: claims, finishes, retries, reclaims.

        Messages carry stored names and errors: printed as plain text (no rich
        markup, no emoji codes) with control characters shown escaped.
        """
        if self.quiet:
            return
        self._print(printable(message, keep="\n\t"))

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)

    def update(self, children: Iterable[Child]) -> None:
        children = list(children)
        if self._progress is not None:
            alive = {c.id for c in children}
            for exp_id in [i for i in self._tasks if i not in alive]:
                self._progress.remove_task(self._tasks.pop(exp_id))
            for c in children:
                fields = {
                    "id": c.id, "name": printable(c.name), "rate": f"{c.steps_per_s:.1f} steps/s",
                    "eta": _fmt_eta(c.eta_s()),
                    "losses": format_losses(c.losses),
                }
                if c.id not in self._tasks:
                    self._tasks[c.id] = self._progress.add_task("", total=c.total or None, completed=c.step, **fields)
                else:
                    self._progress.update(self._tasks[c.id], total=c.total or None, completed=c.step, **fields)
        elif not self.quiet and children and time.monotonic() - self._last_plain >= self.every_s:
            self._last_plain = time.monotonic()
            for c in children:
                self._print(describe(c))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
