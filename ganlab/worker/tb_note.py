"""Telling a run's TensorBoard that its pruner stopped it early.

The child only knows it was asked to stop (the same SIGTERM as a worker
shutting down), so the worker, which knows why, adds the note once the child
has exited: a Text entry with the reason and an ``search/pruned_at_step``
scalar, which the HParams dashboard lists beside the run's metrics (its
session status stays "unknown", what a stopped run leaves).
"""

from __future__ import annotations

from pathlib import Path


def note_pruned(run_dir: Path, step: int, reason: str) -> str | None:
    """Append the note to the run's event files; returns why it could not, or None."""
    from ganlab.tblog.writer import RunWriter

    try:
        with RunWriter(run_dir, filename_suffix=".pruned") as writer:
            writer.text("stop_reason", reason, step)
            writer.scalar("search/pruned_at_step", float(step), step)
    except OSError as exc:
        return f"could not note the pruning in TensorBoard ({exc.strerror or exc})"
    return None


__all__ = ["note_pruned"]
