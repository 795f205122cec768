"""TensorFlow's, XLA's and absl's C++ start-up messages, told apart from what a user needs to read.

Every training child prints a few lines from C++ before its first Python
line: absl's note that logging is not initialised, oneDNN and CPU-feature
notices, "could not find cuda drivers" and a failed ``cuInit`` on a machine
without a GPU, grappler's and the remapper's optimisation notes. They say
nothing about the run, yet they are the first lines of every log and used to
fill the error field of a failed experiment.

ganlab keeps them in the raw ``train.log``; what it *shows* (``ganlab logs``,
the error stored and printed by ``ganlab queue show``, the worker's one-line
reason) leaves them out. A line is dropped only when it matches one of
:data:`NOISE`; a line that mentions running out of memory is always kept,
whatever its source, and so is any C++ error or fatal line not listed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _prefix(severities: str) -> str:
    """The C++ log prefix of these severities: glog's as absl, TensorFlow and XLA write it (before
    absl is initialised its date is 0000 and its time counts seconds since 1970), or TensorFlow's
    older one (before 2.16): a timestamp, the severity, then the source file and line."""
    return (rf"(?:[{severities}]\d{{4}} \d\d:\d\d:\d+\.\d+\s+\d+ "
            rf"|\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [{severities}] )\S+:\d+\] ")


#: What counts as noise, each with why. Matched against a whole line (``re.match``, from its start).
NOISE: tuple[tuple[str, re.Pattern[str]], ...] = tuple((why, re.compile(pattern)) for why, pattern in (
    ("absl's note before its logging is set up",
     r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    ("C++ information and warnings (oneDNN, CPU features, cuda drivers, grappler, remapper, XLA service)",
     _prefix("IW")),
    ("the second line of the CPU-feature notice",
     r"To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\."),
    ("cuInit failing where there is no GPU (the CPU is used)",
     _prefix("E") + r".*failed call to cuInit"),
    ("CUDA libraries registered twice by TensorFlow and JAX",
     _prefix("E") + r"(?:Unable to register cu(?:DNN|FFT|BLAS) factory|computation placer already registered)"),
    ("TensorRT not installed", r"(?:.*TF-TRT Warning: )?Could not find TensorRT$"),
))

#: Never dropped, whatever else matches: the first sign of an out-of-memory failure.
_KEEP = re.compile(r"out of memory|\bOOM\b|RESOURCE_EXHAUSTED|ResourceExhausted", re.I)


def is_noise(line: str) -> bool:
    """True for a C++ start-up or optimisation message that says nothing about the run."""
    text = line.rstrip("\r\n")
    if _KEEP.search(text):
        return False
    return any(pattern.match(text) for _, pattern in NOISE)


def without_noise(lines: Iterable[str]) -> list[str]:
    """``lines`` less the noise, in order."""
    return [line for line in lines if not is_noise(line)]


def clean_text(text: str) -> str:
    """``text`` less its noise lines."""
    return "\n".join(without_noise(text.splitlines()))
