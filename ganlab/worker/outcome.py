"""Classifying how a training child ended: the status to store and whether to retry."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.errors import PluginRefused, RunDirBusy
from ganlab.logfilter import without_noise
from ganlab.worker.channel import EXIT_DIVERGED, EXIT_STOPPED, EXIT_SUCCEEDED

_FRAME = re.compile(r'^  File ".*", line \d+', re.M)  # a traceback whose header scrolled out of the tail
_OOM = re.compile(r"(out of memory|ResourceExhausted|RESOURCE_EXHAUSTED|MemoryError|OOM when allocating)", re.I)


@dataclass(frozen=True)
class Outcome:
    """``status`` is a queue status or ``"stopped"`` (back to the queue, resume later)."""

    status: str
    reason: str
    retryable: bool = False
    error: str | None = None
    metrics: dict[str, Any] | None = None


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file (what a user needs to see first), less TensorFlow's start-up noise."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(without_noise(text.splitlines())[-lines:])


def classify(
    returncode: int, result: dict[str, Any] | None, log_tail: str, *, retry_command: str | None = None
) -> Outcome:
    """Decide what a child's end means for its experiment.

    ``retry_command``: how a user requeues this experiment, appended to a refusal.
    """
    if returncode == PluginRefused.exit_code and result is None:
        # Retrying would be refused the same way until someone looks: failed, not requeued.
        said = [ln.removeprefix("Error: ").strip() for ln in log_tail.splitlines() if ln.startswith("Error: ")]
        reason = said[-1] if said else "refused to run the experiment's local plugin files"
        fix = f"; to run it again: {retry_command}" if retry_command else ""
        return Outcome("failed", reason, error=reason + fix)
    if result is not None and returncode in (EXIT_SUCCEEDED, EXIT_DIVERGED, EXIT_STOPPED):
        status = result.get("status", "failed")
        metrics = result.get("metrics") or {}
        if status == "succeeded":
            return Outcome("succeeded", "finished", metrics=metrics)
        if status == "diverged":
            error = result.get("error") or f"loss became NaN/Inf at step {result.get('step')}"
            return Outcome("diverged", "diverged", error=error, metrics=metrics)
        if status == "stopped":
            return Outcome("stopped", "stopped on request", metrics=metrics)
    if result is not None and result.get("status") == "failed":
        # The trainer caught the exception itself and said what it was.
        reason = f"Python exception: {str(result.get('error') or 'unknown error').strip()[:200]}"
        return Outcome("failed", reason, error=f"{reason}\n{log_tail}".strip())
    if returncode == RunDirBusy.exit_code and result is None:
        # Another trainer (say, one whose worker died) still held the run dir: worth another attempt later.
        last = next((ln for ln in reversed(log_tail.splitlines()) if ln.strip()), "run dir in use by another trainer")
        reason = last.strip().removeprefix("Error: ")[:300]
        return Outcome("failed", reason, retryable=True, error=f"{reason}\n{log_tail}".strip())
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = " (often the out-of-memory killer)" if sig == signal.SIGKILL else ""
        reason = f"killed by signal {sig} ({name}){hint}"
        return Outcome("failed", reason, retryable=True, error=f"{reason}\n{log_tail}".strip())
    oom = _OOM.search(log_tail)
    if oom:
        line = next((ln for ln in reversed(log_tail.splitlines()) if _OOM.search(ln)), oom.group(0))
        reason = f"out of memory: {line.strip()[:200]}"
        return Outcome("failed", reason, retryable=True, error=f"{reason}\n{log_tail}".strip())
    if "Traceback (most recent call last)" in log_tail or _FRAME.search(log_tail):
        last = next((ln for ln in reversed(log_tail.splitlines()) if ln.strip()), "")
        reason = f"Python exception: {last.strip()[:200]}"
        # The reason first, as for every other ending: the tail may start mid-traceback.
        return Outcome("failed", reason, error=f"{reason}\n{log_tail}")
    last = next((ln for ln in reversed(log_tail.splitlines()) if ln.strip()), "")
    reason = f"exited with code {returncode}" + (f": {last.strip()[:200]}" if last else "")
    return Outcome("failed", reason, error=log_tail or reason)
