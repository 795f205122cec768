"""The experiment lifecycle: its statuses and the moves between them.

The table's CHECK constraint (``models.py``) and every state change in
``storage.py`` and ``queue.py`` read these; a move not listed here is refused.
"""

from __future__ import annotations

from ganlab.errors import IllegalTransition

# ``pruned``: a search's pruner stopped the run early; ``stopped``: a GAN-aware stop
# (no improvement, the discriminator winning outright, collapse) ended it. Both keep
# their checkpoints and run directory, so ``queue extend`` can continue them.
STATUSES = ("queued", "running", "succeeded", "failed", "diverged", "cancelled", "pruned", "stopped")

# ``running -> queued`` is a release or a reclaimed lease;
# ``failed/diverged/cancelled -> queued`` is a retry;
# ``succeeded/pruned/stopped -> queued`` is ``queue extend`` (a larger step budget, same run).
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "diverged", "cancelled", "pruned", "stopped", "queued"}),
    "succeeded": frozenset({"queued"}),
    "failed": frozenset({"queued"}),
    "diverged": frozenset({"queued"}),
    "cancelled": frozenset({"queued"}),
    "pruned": frozenset({"queued"}),
    "stopped": frozenset({"queued"}),
}
FINAL_STATUSES = ("succeeded", "failed", "diverged", "cancelled", "pruned", "stopped")
RETRYABLE = ("failed", "diverged", "cancelled")
# Runs that ended with a usable model: ``queue extend`` gives them more steps.
EXTENDABLE = ("succeeded", "pruned", "stopped")
# A config in one of these states makes an identical new one a duplicate (one that ran and was
# pruned or stopped is extended, not queued again).
DUPLICATE_STATUSES = ("queued", "running", "succeeded", "pruned", "stopped")


def check_transition(source: str, target: str) -> None:
    """Raise IllegalTransition unless the lifecycle allows ``source -> target``."""
    if target not in TRANSITIONS.get(source, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(source, ()))) or "nothing (it is final)"
        raise IllegalTransition(f"an experiment cannot go from {source} to {target}; from {source} it can go to {allowed}")
