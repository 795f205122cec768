"""How progress reads as text, the same for ``ganlab train`` and the worker's status line."""

from __future__ import annotations

import math
import subprocess
import sys

from ganlab.training.progress_format import format_losses, format_rate

STEP = {"loss/generator": 0.6931, "loss/discriminator": 1.38629, "loss/penalty": 0.0, "disc/fake": -0.1,
        "disc/real": 0.2, "grad_norm/discriminator": 3.0, "grad_norm/generator": 2.0}


def test_losses_are_the_discriminators_and_the_generators() -> None:
    assert format_losses(STEP) == "D 1.386 G 0.693"  # a penalty switched off is left out
    assert format_losses({**STEP, "loss/penalty": 0.25}) == "D 1.386 G 0.693 pen 0.250"
    assert format_losses({"disc/real": 1.0}) == ""


def test_rate() -> None:
    assert format_rate(math.inf, math.inf) == "compiling"
    assert format_rate(12.34, 1579.5) == "12.3 steps/s  1,580 img/s"


def test_the_worker_never_imports_the_cli() -> None:
    code = ("import sys, ganlab.worker.loop, ganlab.worker.display, ganlab.worker.child\n"
            "print(sorted(m for m in sys.modules if m.startswith('ganlab.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
