"""How training progress reads as text: shared by ``ganlab train``'s display and the worker's status line."""

from __future__ import annotations

import math
from collections.abc import Mapping

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
