"""How a training child ended: the status to store and whether to retry.

The child's ``result`` event (:mod:`ganlab.training.report_pipe`) says it;
the exit status only stands in for a child that died without sending one (a
signal, the out-of-memory killer, a crash of the interpreter). The log is
never parsed: its tail only goes along as the detail a user reads.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.logfilter import without_noise
from ganlab.training.report import EXIT_CODES


@dataclass(frozen=True)
class Outcome:
    """``status`` is a queue status or ``"released"`` (back to the queue, resume later).

    ``stop_reason``: why a GAN-aware stop ended a ``stopped`` run.
    """

    status: str
    reason: str
    retryable: bool = False
    error: str | None = None
    metrics: dict[str, Any] | None = None
    stop_reason: str | None = None


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


def _with_tail(reason: str, log_tail: str) -> str:
    return f"{reason}\n{log_tail}".strip()


def classify(
    returncode: int, result: dict[str, Any] | None, log_tail: str, *, retry_command: str | None = None
) -> Outcome:
    """Decide what a child's end means for its experiment.

    ``retry_command``: how a user requeues this experiment, appended to a refusal.
    """
    if result is not None:
        return _from_result(result, log_tail, retry_command)
    return _from_exit_status(returncode, log_tail, retry_command)


def _from_result(result: dict[str, Any], log_tail: str, retry_command: str | None) -> Outcome:
    status = result.get("status")
    metrics = result.get("metrics") if isinstance(result.get("metrics"), dict) else {}
    error = str(result.get("error") or "").strip()
    if status == "succeeded":
        return Outcome("succeeded", "finished", metrics=metrics)
    if status == "diverged":
        return Outcome("diverged", "diverged", error=error or f"loss became NaN/Inf at step {result.get('step')}",
                       metrics=metrics)
    if status == "stopped":
        why = str(result.get("stop_reason") or "").strip() or "a GAN-aware stop fired"
        return Outcome("stopped", why, metrics=metrics, stop_reason=why)
    if status == "released":
        return Outcome("released", "stopped on request", metrics=metrics)
    if status == "refused":
        # Retrying would be refused the same way until someone looks: failed, not requeued.
        reason = error or "refused to run the experiment's local plugin files"
        fix = f"; to run it again: {retry_command}" if retry_command else ""
        return Outcome("failed", reason, error=reason + fix)
    if status == "busy":
        # Another trainer (say, one whose worker died) still held the run dir: worth another attempt later.
        reason = (error or "run dir in use by another trainer")[:300]
        return Outcome("failed", reason, retryable=True, error=_with_tail(reason, log_tail))
    kind = result.get("kind")
    if kind == "out_of_memory":
        reason = f"out of memory: {error[:200]}"
        return Outcome("failed", reason, retryable=True, error=_with_tail(reason, log_tail))
    if kind == "error":
        # A ganlab error before training (a dataset missing here, a config out of date): its message says it all.
        return Outcome("failed", error[:300] or "could not start", error=_with_tail(error, log_tail))
    # The trainer (or the child, before training) caught an exception: a bug, not retried.
    reason = f"Python exception: {(error or 'unknown error')[:200]}"
    return Outcome("failed", reason, error=_with_tail(reason, log_tail))


def _from_exit_status(returncode: int, log_tail: str, retry_command: str | None) -> Outcome:
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = " (often the out-of-memory killer)" if sig == signal.SIGKILL else ""
        reason = f"killed by signal {sig} ({name}){hint}"
        return Outcome("failed", reason, retryable=True, error=_with_tail(reason, log_tail))
    if returncode == EXIT_CODES["refused"]:
        return _from_result({"status": "refused"}, log_tail, retry_command)
    if returncode == EXIT_CODES["busy"]:
        return _from_result({"status": "busy"}, log_tail, retry_command)
    reason = f"exited with code {returncode} without a result"
    return Outcome("failed", reason, error=_with_tail(reason, log_tail))
