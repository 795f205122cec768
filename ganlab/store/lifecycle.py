"""The experiment lifecycle: its statuses and the moves between them.

The table's CHECK constraint (``models.py``) and every state change in
``storage.py`` and ``queue.py`` read these; a move not listed here is refused.
"""

from __future__ import annotations

from ganlab.errors import IllegalTransition

STATUSES = ("queued", "running", "succeeded", "failed", "diverged", "cancelled")

# ``running -> queued`` is a release or a reclaimed lease;
# ``failed/diverged/cancelled -> queued`` is a retry. Succeeded is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "diverged", "cancelled", "queued"}),
    "succeeded": frozenset(),
    "failed": frozenset({"queued"}),
    "diverged": frozenset({"queued"}),
    "cancelled": frozenset({"queued"}),
}
FINAL_STATUSES = ("succeeded", "failed", "diverged", "cancelled")
RETRYABLE = ("failed", "diverged", "cancelled")
# A config in one of these states makes an identical new one a duplicate.
DUPLICATE_STATUSES = ("queued", "running", "succeeded")


def check_transition(source: str, target: str) -> None:
    """Raise IllegalTransition unless the lifecycle allows ``source -> target``."""
    if target not in TRANSITIONS.get(source, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(source, ()))) or "nothing (it is final)"
        raise IllegalTransition(f"an experiment cannot go from {source} to {target}; from {source} it can go to {allowed}")
