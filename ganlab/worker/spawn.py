"""Starting a worker's child process with its two pipe ends, leaking no descriptor either way."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO

from ganlab.worker.lifeline import lifeline_env


def start_child(
    module: str, env: dict[str, str], report: tuple[int, int], life: tuple[int, int], log: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Run ``python -m module`` holding the write end of ``report`` and the read end of ``life``.

    Its output goes to ``log`` (discarded without one). The parent's copies of the ends the child
    holds are closed once it has them; if it cannot start, the parent's own ends are closed too.
    It starts in its own session: signals reach it only through the worker, which decides how
    children stop.
    """
    read_fd, write_fd = report
    life_read, life_write = life
    out = log if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            pass_fds=[write_fd, life_read], env={**env, **lifeline_env(life_read)}, start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        os.close(life_write)
        raise
    finally:
        os.close(write_fd)
        os.close(life_read)
